"""`ml-assets new-model` and `dg scaffold defs ml_assets.TabularModel`: a model's YAML file
written from a table, its contract inferred as a careful person would, each choice noted.

Types from the values (numbers, whole numbers, true/false, text, times); identifiers (by
name, a row number, text almost all distinct) as `role: id`; only the implausible refused
(`min: 0` for a column never negative, `max` for a share or a percentage), the rest left to
the drift check; `nullable` where values are missing (the pipeline imputes them); categories
listed (`allowed`) when there are at most fifty, `max_categories` noted past that; a
datetime learnt as the calendar parts that vary in it. A classification gets logistic regression,
stratified, gated on beating a constant answer (accuracy above the majority's share, or ROC
AUC / balanced accuracy when a class is rare); a regression gets ridge gated on R² above 0.
Rows without a target are left out. Nothing is copied: the YAML points at the file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import yaml
from pydantic import BaseModel, Field

from ml_assets.learn.contract import utc_times
from ml_assets.learn.modeling import PANDAS_PARTS
from ml_assets.learn.sanity import identifier_reason, numbers_of
from ml_assets.learn.spec import DEFAULT_CALENDAR_PARTS, DEFAULT_MAX_CATEGORIES
from ml_assets.store import settings
from ml_assets.store.tables import read_table

if TYPE_CHECKING:
    import pandas as pd

MAX_LISTED_CATEGORIES = DEFAULT_MAX_CATEGORIES  # more: max_categories, no allowed list
BOOLEAN_WORDS = {"true", "false"}
CLASSIFY_INTEGERS_BELOW = 11  # a whole-number target with this few values is a class label
IMBALANCED_BELOW = 0.2  # a rarest class under this share: gated on what accuracy hides


class ScaffoldError(ValueError):
    """The model cannot be started from this file as asked; the message says why."""


@dataclass
class Inferred:
    """A model's attributes as inferred from a table, and why each choice was made: a note
    per column (`("columns", name)`) or attribute (`("gate", "metric")`), written as a YAML
    comment beside it."""

    attributes: dict
    notes: dict[tuple[str, str], str] = field(default_factory=dict)
    labelled: pd.DataFrame | None = None  # the table's rows that have a target


def infer_column(values: pd.Series, as_class: bool = False) -> tuple[dict, str]:
    """A column's declaration from its values, and why, in a few words."""
    present = values.dropna()
    declaration: dict = {}
    timed = not as_class and _are_times(present)
    numbers = None if timed else numbers_of(present)
    if timed:
        declaration["type"] = "datetime"
        times = utc_times(present)
        parts = varying_parts(times)
        if parts != list(DEFAULT_CALENDAR_PARTS):
            declaration["parts"] = parts
        note = f"times from {times.min()} to {times.max()} (UTC): learnt as its {', '.join(parts)}"
        unused = [part for part in DEFAULT_CALENDAR_PARTS if part not in parts]
        if unused:
            note += f" ({', '.join(unused)}: the same on every row)"
    elif as_class or numbers is None or present.empty:
        uniques = present.unique()  # thousands at most, where the column has a million rows
        words = {str(value).strip().lower() for value in uniques}
        if not as_class and not present.empty and words <= BOOLEAN_WORDS:
            declaration["type"] = "boolean"
            note = ""
        else:
            declaration["type"] = "category"
            labels = sorted({_label(value) for value in uniques})
            note = f"{len(labels)} values"
            if as_class or len(labels) <= MAX_LISTED_CATEGORIES:
                declaration["allowed"] = labels
            elif len(labels) > DEFAULT_MAX_CATEGORIES:
                declaration["max_categories"] = DEFAULT_MAX_CATEGORIES
                note += (
                    f": the {DEFAULT_MAX_CATEGORIES - 1} most frequent get a column each, the"
                    " rest (and unseen ones) share one; or `encoding: target`"
                )
    else:
        whole = bool((numbers % 1 == 0).all())
        declaration["type"] = "integer" if whole else "number"
        declaration.update(_plausible_range(values.name, numbers))
        low, high = numbers.min(), numbers.max()
        note = f"seen from {low:g} to {high:g}"
        if "max" not in declaration:
            note += "; no max: the drift check watches the rest"
    missing = len(values) - len(present)
    if missing:
        declaration["nullable"] = True
        imputed = f"{missing} missing (nullable: the pipeline imputes them)"
        note = "; ".join(part for part in (imputed, note) if part)
    return declaration, note


def varying_parts(times: pd.Series) -> list[str]:
    """The default calendar parts that take more than one value in these times (a daily date
    has no hour); all of them when none does."""
    varying = [
        part
        for part in DEFAULT_CALENDAR_PARTS
        if getattr(times.dt, PANDAS_PARTS.get(part, part)).nunique() > 1
    ]
    return varying or list(DEFAULT_CALENDAR_PARTS)


def _are_times(present: pd.Series) -> bool:
    """Timestamps (a Parquet timestamp column), or text that is all ISO 8601 dates or times."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(present):
        return True
    if (
        present.empty
        or not pd.api.types.is_object_dtype(present)
        and not pd.api.types.is_string_dtype(present)
    ):
        return False
    texts = present.astype(str).str.strip()
    if not texts.str.match(r"^\d{4}-\d{2}-\d{2}").all():
        return False
    return bool(utc_times(texts).notna().all())


def _plausible_range(name, numbers: pd.Series) -> dict:
    """Only what is implausible by nature is refused: a negative value of a column that never
    is, a share above 1, a percentage above 100. Other bounds are left to the drift check."""
    low, high = float(numbers.min()), float(numbers.max())
    bounds: dict = {}
    if low >= 0:
        bounds["min"] = 0
        if high <= 1 and not (numbers % 1 == 0).all():
            bounds["max"] = 1  # a share
        elif high <= 100 and re.search(r"pct|percent|%", str(name).lower()):
            bounds["max"] = 100
    return bounds


def _label(value) -> str:
    """A class or category as the contract reads it from a file: 2.0 written as 2 is "2"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _task_of(target: pd.Series) -> str:
    import pandas as pd

    present = target.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.isna().any():
        return "classification"
    if (numbers % 1 == 0).all() and numbers.nunique() < CLASSIFY_INTEGERS_BELOW:
        return "classification"
    return "regression"


def _gate(task: str, target: pd.Series) -> tuple[dict, str]:
    """A gate a constant answer cannot pass, and what that constant scores."""
    if task == "regression":
        return {"metric": "r2", "threshold": 0.0}, "predicting the mean scores 0"
    shares = target.astype(str).value_counts(normalize=True)
    majority, minority = float(shares.iloc[0]), float(shares.iloc[-1])
    if minority < IMBALANCED_BELOW and len(shares) == 2:
        return {"metric": "roc_auc", "threshold": 0.5}, (
            f"imbalanced (the rarer class is {minority:.1%}): a constant answer has ROC AUC 0.5"
        )
    if minority < IMBALANCED_BELOW:
        chance = 1 / len(shares)
        return {"metric": "balanced_accuracy", "threshold": math.ceil(chance * 1e4) / 1e4}, (
            f"imbalanced (the rarest class is {minority:.1%}): always answering the most"
            f" common class scores {chance:.4g}"
        )
    return {"metric": "accuracy", "threshold": math.ceil(majority * 1e4) / 1e4}, (
        f"always answering {shares.index[0]!r} scores {majority:.4f}: the model must beat it"
    )


def _reference_path(source: Path, root: Path) -> str:
    try:
        return str(source.resolve().relative_to(root))
    except ValueError:
        return str(source.resolve())


def declaration(
    name: str, source: Path, target: str, task: str | None = None, root: Path | None = None
) -> Inferred:
    """The attributes of a TabularModel for the table in `source` (its path relative to the
    project `root` when inside it), with a note on each choice."""
    if not re.fullmatch(settings.MODEL_NAME_PATTERN, name):
        raise ScaffoldError(f"{name!r} cannot name a model: lower-case letters, digits and _")
    table, _ = read_table(source)
    if target not in table.columns:
        raise ScaffoldError(
            f"{source} has no column {target!r}; its columns are: {', '.join(table.columns)}"
        )
    notes: dict[tuple[str, str], str] = {}
    without_target = int(table[target].isna().sum())
    if without_target == len(table):
        raise ScaffoldError(f"{source}: the target {target!r} is missing on every row")
    labelled = table[table[target].notna()]
    task = task or _task_of(labelled[target])
    classification = task == "classification"
    columns = {}
    for column in table.columns:
        if column == target:
            columns[column], note = infer_column(labelled[column], as_class=classification)
            notes[("columns", column)] = "the target" + (
                f"; {without_target} rows without one are left out" if without_target else ""
            )
            continue
        columns[column], note = infer_column(table[column])
        why = None if columns[column]["type"] == "datetime" else identifier_reason(table[column])
        if why is not None:
            columns[column] = {**columns[column], "role": "id"}
            columns[column].pop("max_categories", None)
            note = f"an identifier ({why}): kept beside the predictions, never a feature"
        elif "nullable" not in columns[column]:
            note = f"never missing here: a missing value is refused; {note}"
        notes[("columns", column)] = note
    if task == "regression" and columns[target]["type"] not in ("number", "integer"):
        raise ScaffoldError(f"a regression needs a number target; {target!r} holds text")
    reference = {
        "path": _reference_path(source, root or Path.cwd()),
        "test_size": 0.2,
        "random_state": 42,
    }
    if classification and labelled[target].astype(str).value_counts().min() >= 2:
        reference["stratify"] = True
        notes[("reference", "stratify")] = "every class in the holdout in its share"
    gate, notes[("gate", "threshold")] = _gate(task, labelled[target])
    linear = "logistic_regression" if classification else "ridge"
    model: dict = {"kind": linear}
    if len(labelled) > SEARCH_ROWS:
        model["search"] = {
            "kinds": ["hist_gradient_boosting", linear],
            "budget_seconds": SEARCH_SECONDS,
        }
        notes[("model", "search")] = (
            f"over {SEARCH_ROWS:,} rows: the best of both, cross-validated on the training"
            " rows (the Launchpad's budget_seconds: 0 trains the kind)"
        )
    shares = labelled[target].astype(str).value_counts(normalize=True)
    if classification and len(shares) == 2 and shares.min() < IMBALANCED_BELOW:
        model["decision_threshold"] = "tune"
        notes[("model", "decision_threshold")] = (
            f"the rarer class is {shares.min():.1%}: at the default 0.5 it would rarely be"
            " answered; tuned on the training rows for balanced accuracy"
        )
    attributes = {
        "name": name,
        "description": f"{task.capitalize()} of {target}, started from {source.name}.",
        "task": task,
        "reference": reference,
        "target": target,
        "columns": columns,
        "model": model,
        "gate": gate,
        "schedule": {"cron": "0 23 * * 0"},
    }
    return Inferred(attributes, notes, labelled)


SEARCH_ROWS = 1000  # above this, new-model declares a search
SEARCH_SECONDS = 60  # until timed on the table (component.scaffolded_yaml)


def _inline(value) -> str:
    """A value (or key) as YAML on one line, quoted where YAML needs it."""
    text = yaml.safe_dump(
        [value], default_flow_style=True, sort_keys=False, width=10_000, allow_unicode=True
    )
    return text.strip()[1:-1]


def render(inferred: Inferred) -> str:
    """The YAML file: block style, one line per column, each choice's note beside it."""
    attributes, notes = inferred.attributes, inferred.notes

    def line(indent: str, section: str, key: str, value) -> str:
        note = notes.get((section, key))
        text = f"{indent}{_inline(key)}: {_inline(value)}"
        return f"{text}  # {note}" if note else text

    lines = [
        f"# Started by `ml-assets new-model` from {attributes['reference'].get('path')}: read the",
        "# notes on each inferred choice, change what you know better, then `dg check defs`.",
        "type: ml_assets.TabularModel",
        "attributes:",
    ]
    for key, value in attributes.items():
        if isinstance(value, dict):
            lines.append(f"  {key}:")
            lines += [line("    ", key, sub, item) for sub, item in value.items()]
        else:
            lines.append(f"  {key}: {_inline(value)}")
    return "\n".join(lines) + "\n"


class ScaffoldParams(BaseModel):
    """`dg scaffold defs ml_assets.TabularModel NAME --source FILE --target COLUMN`."""

    source: str = Field(description="a CSV or Parquet table to infer the contract from")
    target: str = Field(description="the column to predict")
    task: Literal["regression", "classification"] | None = Field(
        default=None, description="default: from the target's values"
    )
