"""The serving schema of a model: its request rows, compiled from the contract to pydantic
types, and its answers.

A JSON request is validated by pydantic (fast enough for single rows, and the same types give
the OpenAPI document its per-model schemas); a refusal is reported in the contract's own
words (`greater_than_or_equal_to(25)`, `isin([...])`, `not_nullable`), with 1-based rows, as
pandera's refusals of landed files and CSV requests are. A row is accepted exactly when the
pandera contract accepts it (tested on generated rows).
"""

from __future__ import annotations

import datetime
import functools
import math
from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from ml_assets.learn.contract import ContractViolation, allowed_values, boolean_word
from ml_assets.learn.spec import ColumnSpec, ModelSpec, utc_time

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_MAX_ROWS = 10_000
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # 10 000 rows of 30 numbers take about 7 MB
_MAX_ROWS_NAMED = 5
_DTYPES = {
    "number": "float64",
    "integer": "float64",
    "category": "str",
    "boolean": "boolean",
    "datetime": "datetime64[ns]",
}
# pydantic's error types, in the contract's vocabulary where the contract has a check
_CHECK_OF_ERROR = {
    "missing": "column is missing",
    "extra_forbidden": "not a column of the contract",
    "finite_number": "finite",
    "int_from_float": "integer",
}


def _boolean_word(value: Any) -> Any:
    """The words and numbers the contract reads as booleans; anything else is left to refuse."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    return boolean_word(value)


def _one_of(allowed: tuple) -> AfterValidator:
    def check(value: Any) -> Any:
        if value is not None and value not in allowed:
            raise PydanticCustomError("isin", "isin({allowed})", {"allowed": list(allowed)})
        return value

    return AfterValidator(check)


def _number_or_missing(value: Any) -> Any:
    """NaN, or text that reads as NaN, is a missing value, as pandas reads it."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str) and value.strip().lower() == "nan":
        return None
    return value


def _time_or_missing(value: Any) -> Any:
    """ISO 8601 text, a date alone included, read as a time; anything else is left to refuse."""
    value = _number_or_missing(value)
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            return value
    return value


def _within(column: ColumnSpec):
    """A time in UTC without an offset, checked against the column's bounds."""
    low, high = (
        None if bound is None else datetime.datetime.fromisoformat(bound)
        for bound in (column.min, column.max)
    )

    def check(value: datetime.datetime) -> datetime.datetime:
        value = utc_time(value)
        if low is not None and value < low:
            raise PydanticCustomError("greater_than_equal", "before {min}", {"min": column.min})
        if high is not None and value > high:
            raise PydanticCustomError("less_than_equal", "after {max}", {"max": column.max})
        return value

    return check


def _category_text(value: Any) -> Any:
    """Numbers and booleans as the text pandera's coercion makes of them ("5", "True")."""
    return str(value) if isinstance(value, bool) else value


def _column_type(spec: ModelSpec, column: ColumnSpec, lenient: bool) -> Any:
    """One column's value type: its kind, range, allowed values and nullability, read as the
    contract reads a landed file's values (`coerce_numbers_to_str` does the rest).

    Not lenient: without the Python validators (NaN as missing, the contract's words for
    booleans, `isin` in Python), four times faster on 1 000 rows. It accepts only values the
    lenient type accepts and reads them alike; whatever it refuses goes to the lenient one.
    """
    allowed = allowed_values(spec, column)
    if column.numeric:
        bounds = {"ge": column.min, "le": column.max}
        if column.type == "number":
            kind = Annotated[float, Field(allow_inf_nan=False, **bounds)]
        else:
            kind = Annotated[int, Field(**bounds)]
        before = BeforeValidator(_number_or_missing)
    elif column.type == "datetime":  # ISO 8601 text, as the contract reads a file's
        kind = Annotated[datetime.datetime, Strict(), AfterValidator(_within(column))]
        before = BeforeValidator(_time_or_missing)
    elif column.type == "boolean":
        kind, before = bool, BeforeValidator(_boolean_word)
    else:
        kind, before = str, BeforeValidator(_category_text)
    if not lenient and not column.numeric:  # JSON true and false, and text, only
        kind = Annotated[kind, Strict()]
    if allowed is not None and lenient:
        kind = Annotated[kind, _one_of(allowed), Field(json_schema_extra={"enum": list(allowed)})]
    elif allowed is not None:
        kind = Literal[allowed]
    kind = kind | None if column.nullable else kind
    if not lenient:
        return kind
    return Annotated[
        kind, before, Field(description=f"{column.description} ({column.rules})".lstrip())
    ]


@functools.cache
def row_type(spec: ModelSpec, lenient: bool = True) -> type:
    """One row of a request: every feature column, and any identifier to answer back, keyed
    by the contract's names."""
    identifiers = [column for column in spec.columns if column.is_id]
    row = TypedDict(  # a TypedDict keeps any column name, "mean radius" or "class" alike
        f"{spec.name}_row",
        {
            **{c.name: NotRequired[_column_type(spec, c, lenient)] for c in identifiers},
            **{c.name: _column_type(spec, c, lenient) for c in spec.feature_columns},
        },
    )
    row.__pydantic_config__ = ConfigDict(  # type: ignore[attr-defined]
        extra="forbid", coerce_numbers_to_str=True, title=f"{spec.name}_row"
    )
    return row


@functools.cache
def request_adapter(
    spec: ModelSpec, max_rows: int = DEFAULT_MAX_ROWS, lenient: bool = True
) -> TypeAdapter:
    """The JSON body of a prediction request: `{"rows": [row, ...]}`, 1 to `max_rows` rows."""
    request = TypedDict(
        f"{spec.name}_request",
        {
            "rows": Annotated[
                list[row_type(spec, lenient)], Field(min_length=1, max_length=max_rows)
            ]
        },
    )
    request.__pydantic_config__ = ConfigDict(  # type: ignore[attr-defined]
        extra="forbid", title=f"{spec.name}_request"
    )
    return TypeAdapter(request)


class TooManyRows(ValueError):
    """A request with more rows than the service takes at once."""


def request_rows(spec: ModelSpec, body: bytes, max_rows: int = DEFAULT_MAX_ROWS) -> list[dict]:
    """The rows of a JSON request, each value of its column's type; or ContractViolation."""
    try:
        return request_adapter(spec, max_rows, lenient=False).validate_json(body)["rows"]
    except ValidationError:
        pass  # the lenient type decides, and says why
    try:
        return request_adapter(spec, max_rows).validate_json(body)["rows"]
    except ValidationError as error:
        if any(item["type"] == "too_long" and item["loc"] == ("rows",) for item in error.errors()):
            raise TooManyRows(f"a request to {spec.name} takes at most {max_rows} rows") from None
        raise ContractViolation(f"the request to {spec.name}", _problems(spec, error)) from None


@functools.cache
def answer_adapter(spec: ModelSpec) -> TypeAdapter:
    """The answer to a prediction request: the model, the version, a prediction per row, with
    the identifiers its row gave."""
    fields: dict[str, Any] = {
        "prediction_id": Annotated[str, Field(description="this prediction's id, as recorded")]
    }
    fields |= {
        column.name: NotRequired[_column_type(spec, column, lenient=False)]
        for column in spec.columns
        if column.is_id
    }
    if spec.classes:
        probabilities = TypedDict(
            f"{spec.name}_probabilities",
            {label: Annotated[float, Field(ge=0, le=1)] for label in spec.classes},
        )
        fields |= {"prediction": Literal[spec.classes], "probabilities": probabilities}
    else:
        fields |= {"prediction": float}
    prediction = TypedDict(f"{spec.name}_prediction", fields)
    answer = TypedDict(
        f"{spec.name}_answer",
        {"model": Literal[spec.name], "version": str, "predictions": list[prediction]},
    )
    return TypeAdapter(answer)


def answer_rows(
    spec: ModelSpec, scored: pd.DataFrame, identifiers: list[dict] | None = None
) -> list[dict]:
    """The predictions of `spec.task.predict`, one JSON object per row: the identifiers its
    row gave, the prediction, and for a classifier the probability of each class."""
    identifiers = identifiers or [{}] * len(scored)
    predictions = scored["prediction"].tolist()
    if not spec.classes:
        return [
            {**ids, "prediction": value}
            for ids, value in zip(identifiers, predictions, strict=True)
        ]
    columns = [scored[spec.task.probability_column(label)].tolist() for label in spec.classes]
    return [
        {**ids, "prediction": value, "probabilities": dict(zip(spec.classes, row, strict=True))}
        for ids, value, *row in zip(identifiers, predictions, *columns, strict=True)
    ]


def row_identifiers(spec: ModelSpec, rows: list[dict]) -> list[dict]:
    """The identifiers each validated JSON row gave, to answer back."""
    names = spec.identifiers
    return [{name: _json(row[name]) for name in names if name in row} for row in rows]


def table_identifiers(spec: ModelSpec, table: pd.DataFrame) -> list[dict]:
    """The identifiers of each row of a validated table (a CSV request), missing as null."""
    names = [name for name in spec.identifiers if name in table.columns]
    if not names:
        return [{}] * len(table)
    values = table[names].astype(object)
    records = values.where(values.notna(), None).to_dict("records")
    return [{name: _json(value) for name, value in record.items()} for record in records]


def _json(value: Any) -> Any:
    """A value as JSON takes it: a time as ISO 8601 text."""
    return value.isoformat() if isinstance(value, datetime.datetime) else value


def _problems(spec: ModelSpec, error: ValidationError) -> list[dict]:
    """pydantic's errors grouped by column and check, as the contract groups pandera's."""
    columns = {column.name: column for column in spec.feature_columns}
    grouped: dict[tuple, dict] = {}
    for item in error.errors(include_url=False, include_context=False):
        location = item["loc"]
        if len(location) >= 3 and location[0] == "rows" and isinstance(location[1], int):
            column, row = str(location[2]), location[1] + 1
            check = _check(columns.get(column), item)
        elif item["type"] in ("too_short", "too_long") and location == ("rows",):
            column, row, check = (
                None,
                None,
                "no data rows"
                if item["type"] == "too_short"
                else (item["msg"].replace("List", "rows")),
            )
        else:  # not JSON, or not the shape {"rows": [{...}, ...]}
            where = ".".join(str(part) for part in location) or "body"
            column, row, check = None, None, f"{where}: {item['msg']}"
        problem = grouped.setdefault(
            (column, check), {"column": column, "check": check, "rows": [], "examples": []}
        )
        if row is not None and len(problem["rows"]) < _MAX_ROWS_NAMED:
            problem["rows"].append(row)
            if "input" in item and len(problem["examples"]) < 3 and item["type"] != "missing":
                problem["examples"].append(_shown(item["input"]))
    return list(grouped.values())


def _check(column: ColumnSpec | None, item: dict) -> str:
    """The contract's name for what a value broke, as pandera names its checks."""
    kind = item["type"]
    if column is not None and item.get("input", "") is None:
        return "not_nullable"
    if kind in _CHECK_OF_ERROR:
        return _CHECK_OF_ERROR[kind]
    if kind == "greater_than_equal":
        return f"greater_than_or_equal_to({_bound(column, column.min)})"
    if kind == "less_than_equal":
        return f"less_than_or_equal_to({_bound(column, column.max)})"
    if kind == "isin":
        return item["msg"]
    if column is not None:  # a value of another type: what pandera's coercion would say
        return f"coerce_dtype('{_DTYPES[column.type]}')"
    return item["msg"]


def _bound(column: ColumnSpec, value: float | str) -> str:
    """A bound as pandera names it in its checks (a time as `2024-01-31 00:00:00`)."""
    return str(datetime.datetime.fromisoformat(value)) if column.type == "datetime" else value


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
