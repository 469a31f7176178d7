"""The data contract: one declaration of the columns, their units and plausible ranges, checked
with pandera.

Ingestion validation, the simulated-batch generator, the UI's column schema and the features
checks all read this module. A team that brings its own data changes this module and
`load_reference_table`, nothing else.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:  # pandas and pandera are imported when a table is checked, not at load
    import pandas as pd
    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

TARGET = "target"
RECORD = "One patient at baseline and their disease progression one year later (raw units)."


@dataclass(frozen=True)
class ColumnRule:
    """What the contract says about one column: a float in [low, high], never missing."""

    name: str
    description: str
    low: float
    high: float
    decimals: int
    allowed: tuple[float, ...] = ()  # when set, the only values the column may take


_RULES = (
    ColumnRule("age", "age in years", 0, 120, 0),
    ColumnRule("sex", "sex, coded 1 or 2", 1, 2, 0, allowed=(1.0, 2.0)),
    ColumnRule("bmi", "body mass index, kg/m²", 10, 80, 1),
    ColumnRule("bp", "average blood pressure, mm Hg", 30, 250, 2),
    ColumnRule("s1", "tc, total serum cholesterol, mg/dL", 50, 600, 0),
    ColumnRule("s2", "ldl, low-density lipoproteins, mg/dL", 10, 500, 1),
    ColumnRule("s3", "hdl, high-density lipoproteins, mg/dL", 5, 200, 0),
    ColumnRule("s4", "tch, total cholesterol / HDL", 0.5, 30, 2),
    ColumnRule("s5", "ltg, log of serum triglycerides", 2, 9, 4),
    ColumnRule("s6", "glu, blood sugar level, mg/dL", 20, 600, 0),
    ColumnRule(TARGET, "disease progression one year after baseline", 0, 1000, 0),
)
COLUMNS = [rule.name for rule in _RULES]
FEATURES = [name for name in COLUMNS if name != TARGET]


def column_rules() -> list[ColumnRule]:
    """The contract's columns in table order, for generators and reports."""
    return list(_RULES)


@functools.cache
def record_schema() -> pa.DataFrameSchema:
    """The contract as a pandera schema: coerced to float, extra columns dropped."""
    import pandera.pandas as pa

    def column(rule: ColumnRule) -> pa.Column:
        checks = [pa.Check.ge(rule.low), pa.Check.le(rule.high)]
        if rule.allowed:
            checks.append(pa.Check.isin(list(rule.allowed)))
        return pa.Column(
            float,
            checks=checks,
            nullable=False,
            description=rule.description,
            metadata={"decimals": rule.decimals},
        )

    return pa.DataFrameSchema(
        {rule.name: column(rule) for rule in _RULES},
        coerce=True,
        strict="filter",  # extra columns are dropped; missing ones are an error
        ordered=False,
        description=RECORD,
    )


class ContractViolation(ValueError):
    """A table broke the data contract; the message names the source, columns and rows."""

    def __init__(self, source: str, problems: list[dict]):
        self.source = source
        self.problems = problems
        lines = [f"{source} breaks the data contract:"]
        for problem in problems:
            where = f"column '{problem['column']}'" if problem["column"] else "table"
            line = f"  {where}: {problem['check']}"
            if problem["rows"]:
                line += f" at rows {problem['rows']}"
            if problem["examples"]:
                line += f", values {problem['examples']}"
            lines.append(line)
        super().__init__("\n".join(lines))


_MAX_ROWS_NAMED = 5


def _problems(errors: SchemaErrors) -> list[dict]:
    """Group pandera's failure cases by column and check; rows are 1-based record numbers.

    A value that cannot be coerced also fails pandera's dtype and range checks with no row
    number; only the coercion failure, which names the rows, is reported.
    """
    problems = []
    for (context, column, check), group in errors.failure_cases.groupby(
        ["schema_context", "column", "check"], sort=False, dropna=False
    ):
        check = str(check)
        rows = [int(i) + 1 for i in group["index"].dropna().unique()[:_MAX_ROWS_NAMED]]
        examples = [str(v) for v in group["failure_case"].head(3)]
        if check == "column_in_dataframe":
            problems.append(
                {"column": examples[0], "check": "column is missing", "rows": [], "examples": []}
            )
        elif context == "DataFrameSchema":
            problems.append({"column": None, "check": check, "rows": rows, "examples": examples})
        elif rows and not check.startswith("dtype("):
            problems.append({"column": column, "check": check, "rows": rows, "examples": examples})
    return problems


def _checked(table: pd.DataFrame, schema: pa.DataFrameSchema, source: str) -> pd.DataFrame:
    from pandera.errors import SchemaErrors

    try:
        valid = schema.validate(table.reset_index(drop=True), lazy=True)
    except SchemaErrors as errors:
        raise ContractViolation(source, _problems(errors)) from None
    if valid.empty:
        raise ContractViolation(
            source, [{"column": None, "check": "no data rows", "rows": [], "examples": []}]
        )
    return valid


def validate(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Return the table coerced to the contract (float64 columns in contract order) or raise."""
    return _checked(table, record_schema(), source)[COLUMNS].astype("float64")


def validate_features(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Return the contract's feature columns, coerced and checked, for scoring; or raise.

    The target and any other column may be present and are left out of the result.
    """
    schema = record_schema().remove_columns([TARGET])
    return _checked(table, schema, source)[FEATURES].astype("float64")


def load_reference_table() -> pd.DataFrame:
    """The diabetes table bundled with scikit-learn, in raw units, validated by the contract."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(scaled=False, as_frame=True).frame
    return validate(frame, source="scikit-learn diabetes table")


def table_schema(extra_columns: dict[str, tuple[str, str]] | None = None) -> dg.TableSchema:
    """The contract as a Dagster column schema, plus any (type, description) extra columns."""
    columns = [
        dg.TableColumn(
            name=rule.name,
            type="float64",
            description=f"{rule.description} (plausible range {rule.low:g} to {rule.high:g})",
            constraints=dg.TableColumnConstraints(nullable=False),
        )
        for rule in column_rules()
    ]
    for name, (kind, description) in (extra_columns or {}).items():
        columns.append(dg.TableColumn(name=name, type=kind, description=description))
    return dg.TableSchema(columns=columns)
