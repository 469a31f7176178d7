"""The production version on the gate's rows, whatever the declaration became since it was
promoted: columns added, removed or retyped never stop the comparison.

A version keeps what it takes (`inputs`, on its card: each feature column's name, type and
calendar parts) and its predictions at promotion on the reference holdout, by row id
(`PREDICTIONS_FILE`, beside the model). On the gate's rows, production's answers are, in
this order:
1. rescored, when the rows carry every column it takes, of the same type;
2. its predictions at promotion, when they cover every row (the same row ids: the contract's
   columns are the same, and so are the rows; for a version the registry cannot load now);
3. rescored on the columns it takes read again from the reference table, by each row's
   position there, typed as the version took them (a column removed from the declaration,
   or retyped, that the reference file still holds) — unless it was promoted with a score
   too good to be true (its card's `too_good`): a leak the declaration has since dropped is
   no bar for an honest candidate;
4. otherwise not compared, and the reason is said: the threshold and the constant answer
   still judge the candidate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ml_assets.learn.modeling import model_input
from ml_assets.learn.spec import NUMERIC_TYPES, ColumnSpec, ModelSpec

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

PREDICTIONS_FILE = "holdout_predictions.parquet"
RESCORED, STORED, REREAD, NOT_COMPARED = "rescored", "stored", "reread", "not compared"


def recorded_inputs(spec: ModelSpec) -> list[dict]:
    """What a version trained on this declaration takes, as its card keeps it."""
    return [
        {"name": column.name, "type": column.type, "parts": list(column.parts)}
        for column in spec.feature_columns
    ]


def version_inputs(card: dict) -> tuple[ColumnSpec, ...] | None:
    """A version's feature columns from its card; None for a version from before cards kept
    them (it takes the declaration's, as when it was trained)."""
    if "inputs" not in card:
        return None
    return tuple(
        ColumnSpec(
            name=entry["name"], type=entry["type"], nullable=True, parts=tuple(entry["parts"])
        )
        for entry in card["inputs"]
    )


def _family(kind: str) -> str:
    return "number" if kind in NUMERIC_TYPES else kind


def unlike(spec: ModelSpec, inputs: tuple[ColumnSpec, ...] | None) -> list[str]:
    """The columns a version takes that the declaration's rows no longer carry alike: not
    declared any more, or declared as another type (an integer for a number is alike)."""
    if inputs is None:
        return []
    declared = {column.name: _family(column.type) for column in spec.columns}
    return [column.name for column in inputs if declared.get(column.name) != _family(column.type)]


def differs(spec: ModelSpec, card: dict) -> bool:
    """Whether a version takes other inputs than the declaration gives today."""
    return "inputs" in card and card["inputs"] != recorded_inputs(spec)


@dataclass(frozen=True)
class Answers:
    """Production's outputs on the gate's rows (in their order), and how they were had."""

    outputs: Any | None  # None: not compared
    how: str  # RESCORED, STORED, REREAD or NOT_COMPARED
    said: str  # the same in words: "rescored on the same 89 reference holdout rows"


def production_answers(
    spec: ModelSpec,
    model: Pipeline | None,
    card: dict,
    rows: pd.DataFrame,
    stored: pd.DataFrame | None,
    reread: Callable[[tuple[ColumnSpec, ...]], pd.DataFrame],
) -> Answers:
    """Production's answers on the gate's `rows` (with their `row_id`), the first way that
    works of the four above. `model` is None when the registry cannot load it; `stored` its
    predictions at promotion (None for a version without them); `reread(columns)` gives those
    columns of the reference table, typed as given, indexed by the row ids of today's
    declaration (raising ValueError when the table cannot give them)."""
    inputs = version_inputs(card)
    count = f"the same {len(rows)} reference holdout rows"
    missing = unlike(spec, inputs)
    if model is not None and not missing:
        outputs = spec.task.outputs(model, model_input(spec, rows, inputs))
        return Answers(outputs, RESCORED, f"rescored on {count}")
    if stored is not None and rows["row_id"].isin(stored["row_id"]).all():
        by_id = stored.drop_duplicates("row_id").set_index("row_id").loc[rows["row_id"]]
        return Answers(
            spec.task.outputs_of(by_id.reset_index(drop=True)),
            STORED,
            f"its predictions at its promotion, by row id, on {count}",
        )
    shown = ", ".join(missing)
    if missing and card.get("too_good"):
        return Answers(
            None,
            NOT_COMPARED,
            f"not compared: it was promoted with {card['too_good']} (a suspected leak), and"
            f" takes {shown}, which the declaration no longer has",
        )
    if model is not None:
        taken = tuple(column for column in inputs if column.name in missing)
        try:
            extra = reread(taken)
            if rows["row_id"].isin(extra.index).all():
                filled = rows.drop(columns=missing, errors="ignore").join(
                    extra[missing], on="row_id"
                )
                outputs = spec.task.outputs(model, model_input(spec, filled, inputs))
                return Answers(
                    outputs,
                    REREAD,
                    f"rescored on {count}, its {shown} read from the reference table",
                )
        except (ValueError, KeyError):
            pass  # the reference table no longer holds them as the version took them
    why = "it cannot be loaded" if model is None else f"it takes {shown}"
    return Answers(
        None,
        NOT_COMPARED,
        f"not compared: {why}, which neither today's declaration, its predictions at"
        " promotion nor the reference table give for these rows",
    )
