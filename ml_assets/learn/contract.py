"""The data contract of a model, compiled from its YAML columns to a pandera schema.

Ingestion, `predict` and the reference table are all checked against it; a refusal names the
source, the column, the check and the rows. Nothing is imported from pandas or pandera until
a table is checked.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ml_assets.learn.spec import ColumnSpec, ModelSpec

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

DATETIME_DTYPE = "datetime64[ns]"  # times are kept in UTC, without an offset
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})
_MAX_ROWS_NAMED = 5


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


def allowed_values(spec: ModelSpec, column: ColumnSpec) -> tuple | None:
    """The values a column may take: its own `allowed`, or the classes for the target."""
    if column.name == spec.target and spec.classes:
        return spec.classes
    return column.allowed


def _column(spec: ModelSpec, column: ColumnSpec) -> pa.Column:
    import numpy as np
    import pandera.pandas as pa

    checks = []
    if column.numeric:
        # Integers are checked as floats ("4.0" is 4) and stored as nullable integers after.
        checks.append(pa.Check(lambda s: np.isfinite(s) | s.isna(), name="finite"))
        if column.type == "integer":
            checks.append(pa.Check(lambda s: (s % 1 == 0) | s.isna(), name="integer"))
        if column.min is not None:
            checks.append(pa.Check.ge(column.min))
        if column.max is not None:
            checks.append(pa.Check.le(column.max))
    elif column.type == "datetime":
        import pandas as pd

        if column.min is not None:
            checks.append(pa.Check.ge(pd.Timestamp(column.min)))
        if column.max is not None:
            checks.append(pa.Check.le(pd.Timestamp(column.max)))
    allowed = allowed_values(spec, column)
    if allowed is not None:
        checks.append(pa.Check.isin(list(allowed)))
    dtype = {
        "number": float,
        "integer": float,
        "category": str,
        "boolean": "boolean",
        "datetime": DATETIME_DTYPE,
    }
    return pa.Column(
        dtype[column.type],
        checks=checks,
        nullable=column.nullable,
        description=column.description,
    )


@functools.cache
def record_schema(spec: ModelSpec) -> pa.DataFrameSchema:
    """The contract as a pandera schema: coerced to each column's type, extra columns dropped."""
    import pandera.pandas as pa

    return pa.DataFrameSchema(
        {column.name: _column(spec, column) for column in spec.columns},
        coerce=True,
        strict="filter",  # extra columns are dropped; missing ones are an error
        ordered=False,
        description=spec.description,
    )


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


def boolean_word(value):
    """True or False for a word people write for them; anything else as it is, to refuse."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return value


def _booleans_parsed(spec: ModelSpec, table: pd.DataFrame) -> pd.DataFrame:
    """Words people write for true and false made booleans; anything else is left to refuse."""
    import pandas as pd

    parsed = {
        column.name: table[column.name].astype(object).map(boolean_word, na_action="ignore")
        for column in spec.columns
        if column.type == "boolean"
        and column.name in table
        and pd.api.types.is_string_dtype(table[column.name])
    }
    return table.assign(**parsed) if parsed else table


def utc_times(values: pd.Series) -> pd.Series:
    """ISO 8601 text or timestamps as times in UTC without an offset (an offset is applied, a
    time without one is taken as UTC); NaT where a value is not a time."""
    import pandas as pd

    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(None).astype(DATETIME_DTYPE)
    if pd.api.types.is_datetime64_dtype(values):
        return values.astype(DATETIME_DTYPE)
    times = pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")
    return times.dt.tz_convert(None).astype(DATETIME_DTYPE)


def _datetimes_parsed(spec: ModelSpec, table: pd.DataFrame) -> pd.DataFrame:
    """Datetime columns as times in UTC; a column with a value that is not a time is left as it
    is, for the contract's coercion to refuse with its rows."""
    parsed = {}
    for column in spec.columns:
        if column.type != "datetime" or column.name not in table:
            continue
        values = table[column.name]
        times = utc_times(values)
        if not (times.isna() & values.notna()).any():
            parsed[column.name] = times
    return table.assign(**parsed) if parsed else table


def _checked(
    spec: ModelSpec, table: pd.DataFrame, schema: pa.DataFrameSchema, source: str
) -> pd.DataFrame:
    from pandera.errors import SchemaErrors

    table = _datetimes_parsed(spec, _booleans_parsed(spec, table.reset_index(drop=True)))
    try:
        valid = schema.validate(table, lazy=True)
    except SchemaErrors as errors:
        raise ContractViolation(source, _problems(errors)) from None
    if valid.empty:
        raise ContractViolation(
            source, [{"column": None, "check": "no data rows", "rows": [], "examples": []}]
        )
    integers = {c.name: "Int64" for c in spec.columns if c.type == "integer" and c.name in valid}
    return valid.astype(integers) if integers else valid


def validate(spec: ModelSpec, table: pd.DataFrame, source: str) -> pd.DataFrame:
    """The table coerced to the contract (each column's type, in YAML order), or raise."""
    return _checked(spec, table, record_schema(spec), source)[spec.column_names]


def accepted_rows(spec: ModelSpec, table: pd.DataFrame, source: str) -> tuple[pd.DataFrame, int]:
    """The rows of a table the contract accepts, coerced as `validate` coerces them, and how
    many it refuses (every row when a column it requires is missing)."""
    from pandera.errors import SchemaErrors

    table = table.reset_index(drop=True)
    parsed = _datetimes_parsed(spec, _booleans_parsed(spec, table))
    try:
        record_schema(spec).validate(parsed, lazy=True)
    except SchemaErrors as errors:
        refused = errors.failure_cases["index"].dropna().astype("int64").unique()
        table = table.drop(index=refused)
    try:
        return validate(spec, table, source), len(parsed) - len(table)
    except ContractViolation:  # a column missing: no row can be taken
        return table.iloc[:0][spec.column_names], len(parsed)


def validate_columns(
    spec: ModelSpec, table: pd.DataFrame, columns: list[str], source: str
) -> pd.DataFrame:
    """Some of the contract's columns of a table (a label file's target), coerced and checked;
    or raise. The table's other columns are left out."""
    return _checked(spec, table, record_schema(spec).select_columns(columns), source)[columns]


def _features_schema(spec: ModelSpec, table: pd.DataFrame) -> pa.DataFrameSchema:
    """The contract without the target, and without the identifiers the table lacks."""
    absent = [name for name in spec.identifiers if name not in table.columns]
    return record_schema(spec).remove_columns([spec.target, *absent])


def validate_features(spec: ModelSpec, table: pd.DataFrame, source: str) -> pd.DataFrame:
    """The contract's feature columns, and the identifiers the table has, coerced and checked,
    for scoring; or raise.

    The target and any other column may be present and are left out of the result; an
    identifier may be left out (it is only answered back).
    """
    present = [name for name in spec.identifiers if name in table.columns]
    return _checked(spec, table, _features_schema(spec, table), source)[[*present, *spec.features]]


def refused_rows(spec: ModelSpec, table: pd.DataFrame) -> tuple[int, list[dict]]:
    """How many of a table's rows `validate_features` would refuse, and its problems: every
    row when a column is missing."""
    from pandera.errors import SchemaErrors

    parsed = _datetimes_parsed(spec, _booleans_parsed(spec, table.reset_index(drop=True)))
    try:
        _features_schema(spec, table).validate(parsed, lazy=True)
    except SchemaErrors as errors:
        problems = _problems(errors)
        if any(problem["check"] == "column is missing" for problem in problems):
            return len(table), problems
        return int(errors.failure_cases["index"].dropna().nunique()), problems
    return 0, []
