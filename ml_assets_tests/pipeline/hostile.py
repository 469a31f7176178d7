"""A corpus of hostile landed files, made by code, each with the outcome we decided for it.

docs/reliability.md holds the same table for people.
"""

import gzip
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.simulate import simulate_batch
from ml_assets_tests.conftest import DIABETES

ARCHIVED, QUARANTINED = "archived", "quarantined"
COLUMNS = DIABETES.column_names


@dataclass(frozen=True)
class Case:
    name: str
    content: bytes
    outcome: str
    says: str = ""  # words the refusal (or the accepted file's notes) must contain


def good(rows: int = 20, seed: int = 0) -> pd.DataFrame:
    return simulate_batch(DIABETES, load_reference_table(DIABETES), rows=rows, seed=seed)


def csv(table: pd.DataFrame, **options) -> bytes:
    return table.to_csv(index=False, **options).encode("utf-8")


def with_value(column: str, row: int, value: str) -> bytes:
    table = good().astype(object)
    table.loc[row, column] = value
    return csv(table)


def parquet(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()


def corpus() -> list[Case]:
    base = csv(good())
    lines = base.decode().splitlines()
    return [
        Case(
            "unbalanced_quotes.csv",
            ("\n".join(lines[:3]) + '\n"59,2\n').encode(),
            QUARANTINED,
            "not a well-formed CSV",
        ),
        Case(
            "ragged_rows.csv",
            (base.decode() + "1,2,3,4,5,6,7,8,9,10,11,12\n").encode(),
            QUARANTINED,
            "Expected 11 fields",
        ),
        Case("semicolons.csv", csv(good(), sep=";"), QUARANTINED, "delimiter"),
        Case(
            "missing_column.csv",
            csv(good().drop(columns=["s6"])),
            QUARANTINED,
            "column 's6': column is missing",
        ),
        Case("extra_column.csv", csv(good().assign(comment="ok")), ARCHIVED),
        Case(
            "renamed_column.csv",
            csv(good().rename(columns={"bmi": "body_mass_index"})),
            QUARANTINED,
            "column 'bmi': column is missing",
        ),
        Case(
            "header_case.csv",
            csv(good().rename(columns={"bmi": "BMI", "age": " Age "})),
            ARCHIVED,
            "normalised header names",
        ),
        Case("reordered.csv", csv(good()[COLUMNS[::-1]]), ARCHIVED),
        Case(
            "text_in_bmi.csv",
            with_value("bmi", 4, "abc"),
            QUARANTINED,
            "column 'bmi': coerce_dtype('float64') at rows [5]",
        ),
        Case("nan.csv", with_value("bp", 2, "NaN"), QUARANTINED, "column 'bp': not_nullable"),
        Case("inf.csv", with_value("s5", 1, "inf"), QUARANTINED, "column 's5'"),
        Case("empty_string.csv", with_value("s1", 3, ""), QUARANTINED, "column 's1': not_nullable"),
        Case("huge_number.csv", with_value("s2", 0, "9" * 400), QUARANTINED, "column 's2'"),
        Case(
            "age_300.csv",
            with_value("age", 7, "300"),
            QUARANTINED,
            "column 'age': less_than_or_equal_to(120) at rows [8]",
        ),
        Case(
            "bmi_negative.csv",
            with_value("bmi", 0, "-5"),
            QUARANTINED,
            "column 'bmi': greater_than_or_equal_to(10) at rows [1]",
        ),
        Case("header_only.csv", (",".join(COLUMNS) + "\n").encode(), QUARANTINED, "no data rows"),
        Case("zero_bytes.csv", b"", QUARANTINED, "empty (0 bytes)"),
        Case("garbage.csv", np.random.default_rng(1).bytes(4096), QUARANTINED, ""),
        Case(
            "latin1.csv",
            good(5).assign(note="Müller").to_csv(index=False).encode("latin-1"),
            ARCHIVED,
            "decoded as latin-1",
        ),
        Case("bom.csv", b"\xef\xbb\xbf" + base, ARCHIVED, "byte-order mark"),
        Case("windows_lines.csv", base.replace(b"\n", b"\r\n"), ARCHIVED),
        Case("duplicate_rows.csv", csv(pd.concat([good(5)] * 3)), ARCHIVED),
        Case("same_content_a.csv", csv(good(8, seed=5)), ARCHIVED),
        Case("same_content_b.csv", csv(good(8, seed=5)), ARCHIVED),
        Case(
            "wrong_schema.parquet",
            parquet(pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})),
            QUARANTINED,
            "column is missing",
        ),
        Case("truncated.parquet", parquet(good())[:300], QUARANTINED, "not a readable Parquet"),
        Case("good.parquet", parquet(good(12, seed=2)), ARCHIVED),
        Case("gzipped.csv.gz", gzip.compress(base), ARCHIVED, "decompressed gzip"),
        Case("gzip_named_csv.csv", gzip.compress(base), ARCHIVED, "decompressed gzip"),
        Case("not_a_table.txt", b"hello", QUARANTINED, "unsupported file type"),
        Case("with spaces.csv", base, ARCHIVED),
        Case("ünïcödé-données.csv", base, ARCHIVED),
        Case(".leading_dot.csv", base, ARCHIVED),
        Case("x" * 251 + ".csv", base, ARCHIVED),  # 255 bytes: renamed to a shorter key
        Case("..\\..\\etc\\traversal.csv", base, ARCHIVED),  # a backslash is a plain character
        Case("comma,and[brackets].csv", base, ARCHIVED),
        Case("line\nbreak.csv", base, ARCHIVED),
    ]
