"""`ml-assets new-model` and `dg scaffold defs ml_assets.TabularModel`: a model's YAML file
written from a table, its contract inferred.

Types from the values (numbers, whole numbers, true/false, text), ranges from the observed
ones with a tenth of their span as margin (never crossing zero), categories listed when
there are at most ten, `nullable` where a value is missing. A classification gets logistic
regression gated on beating the most common class's share; a regression gets ridge gated on
R² above 0 (better than predicting the mean). Nothing is copied: the YAML points at the file.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dagster as dg
import yaml
from pydantic import BaseModel, Field

from ml_assets.store import settings
from ml_assets.store.tables import read_table

if TYPE_CHECKING:
    import pandas as pd

MAX_LISTED_CATEGORIES = 10
MARGIN = 0.1  # of the observed span, on each side
BOOLEAN_WORDS = {"true", "false"}
CLASSIFY_INTEGERS_BELOW = 11  # a whole-number target with this few values is a class label


class ScaffoldError(ValueError):
    """The model cannot be started from this file as asked; the message says why."""


def _nice(value: float, up: bool) -> float:
    """A bound rounded outwards to two significant digits."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    scale = 10 ** (math.floor(math.log10(abs(value))) - 1)
    rounded = (math.ceil if up else math.floor)(value / scale) * scale
    return float(f"{rounded:.12g}")


def _bounds(values: pd.Series, whole: bool) -> tuple[float, float]:
    low, high = float(values.min()), float(values.max())
    margin = MARGIN * (high - low) or MARGIN * max(abs(low), 1.0)
    lower, upper = low - margin, high + margin
    if low >= 0:
        lower = max(lower, 0.0)
    if high <= 0:
        upper = min(upper, 0.0)
    lower, upper = _nice(lower, up=False), _nice(upper, up=True)
    return (math.floor(lower), math.ceil(upper)) if whole else (lower, upper)


def infer_column(values: pd.Series, as_class: bool = False) -> dict:
    """A column's declaration from its values."""
    import pandas as pd

    present = values.dropna()
    declaration: dict = {}
    numbers = pd.to_numeric(present, errors="coerce")
    words = present.astype(str).str.strip().str.lower()
    if as_class or numbers.isna().any() or present.empty:
        if not as_class and not present.empty and set(words) <= BOOLEAN_WORDS:
            declaration["type"] = "boolean"
        else:
            declaration["type"] = "category"
            labels = sorted({_label(value) for value in present})
            if as_class or len(labels) <= MAX_LISTED_CATEGORIES:
                declaration["allowed"] = labels
    else:
        whole = bool((numbers % 1 == 0).all())
        declaration["type"] = "integer" if whole else "number"
        declaration["min"], declaration["max"] = _bounds(numbers, whole)
    if len(present) < len(values):
        declaration["nullable"] = True
    return declaration


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


def _gate(task: str, target: pd.Series) -> dict:
    if task == "classification":
        majority = float(target.astype(str).value_counts(normalize=True).iloc[0])
        return {"metric": "accuracy", "threshold": math.floor(majority * 100) / 100}
    return {"metric": "r2", "threshold": 0.0}


def _reference_path(source: Path, root: Path) -> str:
    try:
        return str(source.resolve().relative_to(root))
    except ValueError:
        return str(source.resolve())


def declaration(
    name: str, source: Path, target: str, task: str | None = None, root: Path | None = None
) -> dict:
    """The attributes of a TabularModel for the table in `source` (its path relative to the
    project `root` when inside it)."""
    if not re.fullmatch(settings.MODEL_NAME_PATTERN, name):
        raise ScaffoldError(f"{name!r} cannot name a model: lower-case letters, digits and _")
    table, _ = read_table(source)
    if target not in table.columns:
        raise ScaffoldError(
            f"{source} has no column {target!r}; its columns are: {', '.join(table.columns)}"
        )
    if table[target].isna().any():
        rows = [int(i) + 1 for i in table.index[table[target].isna()][:5]]
        raise ScaffoldError(f"{source}: the target {target!r} is missing at rows {rows}")
    task = task or _task_of(table[target])
    columns = {
        column: infer_column(table[column], as_class=column == target and task == "classification")
        for column in table.columns
    }
    if task == "regression" and columns[target]["type"] not in ("number", "integer"):
        raise ScaffoldError(f"a regression needs a number target; {target!r} holds text")
    classification = task == "classification"
    reference = {
        "path": _reference_path(source, root or Path.cwd()),
        "test_size": 0.2,
        "random_state": 42,
    }
    if classification and table[target].astype(str).value_counts().min() >= 2:
        reference["stratify"] = True
    return {
        "name": name,
        "description": f"{task.capitalize()} of {target}, started from {source.name}.",
        "task": task,
        "reference": reference,
        "target": target,
        "columns": columns,
        "model": {"kind": "logistic_regression" if classification else "ridge"},
        "gate": _gate(task, table[target]),
        "schedule": {"cron": "0 23 * * 0"},
    }


def _inline(value) -> str:
    """A value (or key) as YAML on one line, quoted where YAML needs it."""
    text = yaml.safe_dump(
        [value], default_flow_style=True, sort_keys=False, width=10_000, allow_unicode=True
    )
    return text.strip()[1:-1]


def render(attributes: dict) -> str:
    """The YAML file: block style, one line per column."""
    lines = [
        f"# Started by `ml-assets new-model` from {attributes['reference'].get('path')}: check the",
        "# inferred types, ranges and categories, then `dg check defs`.",
        "type: ml_assets.TabularModel",
        "attributes:",
    ]
    for key, value in attributes.items():
        if key == "columns":
            lines.append("  columns:")
            lines += [f"    {_inline(column)}: {_inline(rules)}" for column, rules in value.items()]
        elif isinstance(value, dict):
            lines.append(f"  {key}:")
            lines += [f"    {sub}: {_inline(item)}" for sub, item in value.items()]
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


class TabularModelScaffolder(dg.Scaffolder[ScaffoldParams]):
    """Writes a model's defs.yaml as `ml-assets new-model` does, inferred from a table."""

    @classmethod
    def get_scaffold_params(cls) -> type[ScaffoldParams]:
        return ScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[ScaffoldParams]) -> None:
        params = request.params
        root = request.project_root or Path.cwd()
        source = Path(params.source)
        attributes = declaration(
            request.target_path.name,
            source if source.is_absolute() else root / source,
            params.target,
            params.task,
            root,
        )
        (request.target_path / "defs.yaml").write_text(render(attributes), encoding="utf-8")
