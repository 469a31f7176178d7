"""Reading a landed file as a table: CSV (plain or gzip'd) or Parquet, leniently where safe.

What is normalised (and said so in the notes returned): a UTF-8 byte-order mark, text in
Windows-1252 / latin-1 instead of UTF-8, a gzip'd CSV, Windows line endings, header names
with spaces around them or in another case than the contract's. Everything else that is wrong is an error that
says what: the contract then judges the values.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas and pyarrow are imported when a file is read, not at load
    import pandas as pd

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
GZIP_MAGIC = b"\x1f\x8b"


class UnreadableFile(ValueError):
    """A file that cannot be read as a table; the message says why."""


def kind_of(name: str) -> str | None:
    """'csv', 'parquet', or None for a name with another suffix."""
    lowered = name.lower()
    if lowered.endswith(CSV_SUFFIXES):
        return "csv"
    if lowered.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def read_table(
    path: Path, name: str | None = None, columns: list[str] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """The file's rows with normalised header names, and notes on what was normalised.

    A header that matches one of `columns` but for case and surrounding spaces is renamed to
    it; other headers only lose their surrounding spaces.
    """
    name = name or path.name
    if kind_of(name) is None:
        supported = ", ".join((*CSV_SUFFIXES, *PARQUET_SUFFIXES))
        raise UnreadableFile(f"{name}: unsupported file type; use {supported}")
    return parse_table(name, path.read_bytes(), columns)


def parse_table(
    name: str, data: bytes, columns: list[str] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """`read_table` of bytes already read; `name`'s suffix says CSV or Parquet."""
    kind = kind_of(name)
    if not data:
        raise UnreadableFile(f"{name}: the file is empty (0 bytes)")
    notes: list[str] = []
    table = _read_csv(name, data, notes) if kind == "csv" else _read_parquet(name, data)
    return _normalise_header(name, table, notes, columns or []), notes


def _read_csv(name: str, data: bytes, notes: list[str]) -> pd.DataFrame:
    import pandas as pd

    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise UnreadableFile(f"{name}: a broken gzip stream: {error}") from None
        notes.append("decompressed gzip")
    if data.startswith(b"\xef\xbb\xbf"):
        notes.append("removed the UTF-8 byte-order mark")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # every byte decodes: the contract judges the result
        notes.append("decoded as latin-1 (not valid UTF-8)")
    if "\x00" in text:
        raise UnreadableFile(f"{name}: contains NUL bytes: binary data, not CSV text")
    try:
        # Everything as text: the contract coerces, and can then name the bad values. The
        # header is read as a row so that pandas does not rename repeated names.
        rows = pd.read_csv(io.StringIO(text), dtype=str, header=None, skipinitialspace=True)
    except (ValueError, csv.Error) as error:  # parser errors: ragged rows, open quotes
        message = " ".join(str(error).split())
        raise UnreadableFile(f"{name}: not a well-formed CSV table: {message}") from None
    return rows.iloc[1:].set_axis(list(rows.iloc[0].fillna("")), axis=1).reset_index(drop=True)


def _read_parquet(name: str, data: bytes) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    try:
        return pd.read_parquet(io.BytesIO(data), engine="pyarrow")
    except (ValueError, pa.ArrowException) as error:
        raise UnreadableFile(f"{name}: not a readable Parquet file: {error}") from None


def _normalise_header(
    name: str, table: pd.DataFrame, notes: list[str], columns: list[str]
) -> pd.DataFrame:
    original = [str(column) for column in table.columns]
    expected = {column.casefold(): column for column in columns}
    cleaned = [expected.get(column.strip().casefold(), column.strip()) for column in original]
    folded = [column.casefold() for column in cleaned]
    if len(set(folded)) != len(folded):
        repeated = sorted({c for c, f in zip(cleaned, folded, strict=True) if folded.count(f) > 1})
        raise UnreadableFile(f"{name}: column names appear more than once: {repeated}")
    if len(cleaned) == 1 and len(columns) != 1 and any(sep in cleaned[0] for sep in ";\t|"):
        raise UnreadableFile(
            f"{name}: one column named {original[0]!r}: the delimiter must be a comma"
        )
    changed = [f"{a!r} → {b!r}" for a, b in zip(original, cleaned, strict=True) if a != b]
    if changed:
        notes.append("normalised header names: " + ", ".join(changed))
    return table.set_axis(cleaned, axis=1)
