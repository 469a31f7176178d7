"""What a served prediction's record holds, for a model: its own columns, the request's, the
answer's; the recorder writes them (serve/), the monitoring assets read them (pipeline/)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from ml_assets.learn.spec import ModelSpec

if TYPE_CHECKING:
    import pandas as pd

RECORD_COLUMNS = ("prediction_id", "served_at", "version")  # then the inputs and the answer
_ARROW_TYPES = {
    "number": "float64",
    "integer": "float64",
    "category": "string",
    "boolean": "bool_",
    "datetime": "timestamp",
}


def new_prediction_ids(count: int) -> list[str]:
    """Ids for one request's predictions, 32 hex digits each: 96 random bits for the request
    (a UUID4's), then the row's number; a UUID4 per row cost a 1 000-row request 2 ms."""
    request = uuid.uuid4().hex[:24]
    return [f"{request}{row:08x}" for row in range(count)]


def record_columns(spec: ModelSpec) -> dict[str, tuple[str, str, str]]:
    """Each column of a model's served records: where its value comes from (`record`, `row`,
    `answer` or `probability`), the key there, and its Arrow type. The record's own columns,
    then the request's columns (ids and features, typed as the contract types them; one named
    like a record column is kept as `input_<name>`), the prediction and any probabilities."""
    own = {
        "prediction_id": ("answer", "prediction_id", "string"),
        "served_at": ("record", "served_at", "served_at"),
        "version": ("record", "version", "string"),
        "prediction": ("answer", "prediction", "string" if spec.classes else "float64"),
        **{f"probability_{c}": ("probability", c, "float64") for c in spec.classes},
    }
    inputs = {
        (f"input_{column.name}" if column.name in own else column.name): (
            "row",
            column.name,
            _ARROW_TYPES[column.type],
        )
        for column in spec.columns
        if column.name != spec.target
    }
    return {**{name: own[name] for name in RECORD_COLUMNS}, **inputs} | own


def request_columns(spec: ModelSpec, records: pd.DataFrame) -> pd.DataFrame:
    """The request's columns of served records, under their own names."""
    inputs = {
        name: key for name, (source, key, _) in record_columns(spec).items() if source == "row"
    }
    return records[list(inputs)].rename(columns=inputs)
