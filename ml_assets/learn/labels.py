"""Delayed labels: the target of rows already predicted, keyed by `prediction_id` or by the
model's `role: id` columns; checked (a key, a plausible target, each key once, each key known)
and joined with the prediction each one labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ml_assets.learn.contract import ContractViolation, accepted_rows, validate_columns
from ml_assets.learn.spec import ModelSpec

if TYPE_CHECKING:
    import pandas as pd

PREDICTION_ID = "prediction_id"
LABEL = "label"  # the target a label file gives, beside the prediction it labels
LABELLED_AT = "labelled_at"  # when its file was joined (UTC): the later label of a row wins
ROWS_NAMED = 5
LABELLED_SOURCE = "labels"  # the dataset's `source` of the served rows whose labels came


def label_key(spec: ModelSpec, columns: list[str]) -> list[str]:
    """The columns a label file's rows are keyed by: `prediction_id` when it has one, else the
    model's id columns; None of either is a refusal."""
    if PREDICTION_ID in columns:
        return [PREDICTION_ID]
    if spec.identifiers and all(name in columns for name in spec.identifiers):
        return list(spec.identifiers)
    ids = f" or the id columns {', '.join(spec.identifiers)}" if spec.identifiers else ""
    raise ContractViolation(
        "the label file",
        [
            {
                "column": None,
                "check": f"no key: give {PREDICTION_ID}{ids}",
                "rows": [],
                "examples": [],
            }
        ],
    )


def _normalised(spec: ModelSpec, frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Key values comparable across files: ids as the contract types them (an integer id
    written 17 or 17.0 alike), prediction ids as text."""
    import pandas as pd

    numeric = {column.name for column in spec.columns if column.numeric}
    return pd.DataFrame(
        {
            name: pd.to_numeric(frame[name], errors="coerce").astype("float64")
            if name in numeric
            else frame[name].astype("string")
            for name in key
        },
        index=frame.index,
    )


def latest_predictions(spec: ModelSpec, predictions: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """One prediction per key: the latest for ids given more than once (a customer served
    twice is labelled on the prediction served last)."""
    ordered = predictions.sort_values("served_at", kind="stable", na_position="first")
    keys = _normalised(spec, ordered, key)
    return ordered[~keys.duplicated(keep="last").to_numpy()]


def joined_labels(
    spec: ModelSpec, table: pd.DataFrame, predictions: pd.DataFrame, source: str
) -> pd.DataFrame:
    """Each label with the prediction it labels, or ContractViolation naming the rows: a
    target the contract refuses, a key given twice, a key no prediction has."""
    key = label_key(spec, list(table.columns))
    table = table.reset_index(drop=True)
    target = validate_columns(spec, table, [spec.target], source)[spec.target]
    labels = _normalised(spec, table, key)
    problems = []
    repeated = labels.duplicated(keep=False).to_numpy()
    if repeated.any():
        problems.append(_problem(key, "the same key twice", repeated, labels))
    known = latest_predictions(spec, predictions, key)
    known_keys = _normalised(spec, known, key)
    found = labels.merge(known_keys.drop_duplicates(), how="left", indicator=True)["_merge"]
    unknown = (found == "left_only").to_numpy()
    if unknown.any():
        problems.append(_problem(key, "no prediction has this key", unknown, labels))
    if problems:
        raise ContractViolation(source, problems)
    joined = labels.assign(**{LABEL: target.to_numpy()}).merge(
        known.assign(**_normalised(spec, known, key)), on=key, how="left", validate="one_to_one"
    )
    return joined


def _problem(key: list[str], check: str, rows, labels: pd.DataFrame) -> dict:
    positions = rows.nonzero()[0]
    return {
        "column": ", ".join(key),
        "check": check,
        "rows": [int(i) + 1 for i in positions[:ROWS_NAMED]],
        "examples": [", ".join(str(v) for v in labels.iloc[i]) for i in positions[:3]],
    }


def labelled_batch(spec: ModelSpec, labelled: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The served rows whose labels came, as a batch for the dataset: the contract's columns
    with the label as the target, the rows the contract as declared now accepts; and how many
    it refuses. A landed batch's labelled rows are left out: the dataset has them already."""
    if "served_at" not in labelled:
        return labelled.reindex(columns=spec.column_names).iloc[:0], 0
    served = labelled[labelled["served_at"].notna()]
    batch = served.reindex(columns=spec.column_names).assign(**{spec.target: served[LABEL]})
    return accepted_rows(spec, batch, "the labelled rows")
