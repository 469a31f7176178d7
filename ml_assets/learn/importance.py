"""Why a model decides as it does: scikit-learn's permutation importance of each declared
feature on the reference holdout, scored by the gate metric, bounded in time."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml_assets.learn.modeling import model_input
from ml_assets.learn.tasks import RANDOM_STATE

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from ml_assets.learn.spec import ModelSpec

IMPORTANCE_REPEATS = 5  # shuffles of each feature, at most
MIN_IMPORTANCE_REPEATS = 2  # fewer would give no spread
IMPORTANCE_ROWS = 2_000  # holdout rows shuffled, at most: a seeded sample of a larger holdout
IMPORTANCE_SECONDS = 10.0  # fewer shuffles when all of them would take longer than this
TOP_FEATURES = 20


@dataclass(frozen=True)
class Importances:
    """The top features by importance, and what they were measured on."""

    features: list[dict]  # feature, importance (mean worsening), std: the top 20, best first
    rows: int  # the holdout rows shuffled
    of_rows: int  # the holdout rows there were
    repeats: int  # shuffles of each feature

    @property
    def measured_on(self) -> str:
        """`on 1 045 holdout rows, 3 shuffles of each feature`, as the card says it."""
        rows = f"{self.rows}" if self.rows == self.of_rows else f"{self.rows} of {self.of_rows}"
        fewer = "" if self.repeats == IMPORTANCE_REPEATS else " (fewer: a large table)"
        return f"on {rows} holdout rows, {self.repeats} shuffles of each feature{fewer}"


def permutation_importances(spec: ModelSpec, model: Pipeline, rows: pd.DataFrame) -> Importances:
    """How much the gate metric worsens when one declared feature is shuffled, the top 20.

    `sklearn.inspection.permutation_importance(n_repeats=5, random_state=42)` on the declared
    feature columns, before the pipeline's encoding: a category is shuffled as one column,
    not as its one-hot columns, and a datetime's parts move together. Each entry: the
    feature, the mean worsening and its standard deviation over the shuffles (in the
    metric's units, positive when the feature helps). Bounded in time: at most 2 000 rows (a
    sample drawn with the seed), and fewer shuffles (not under 2) when one scoring of the
    model, times the features, times 5 would pass 10 seconds.
    """
    import pandas as pd
    from sklearn.inspection import permutation_importance

    metric = spec.gate.metric
    sample = rows
    if len(rows) > IMPORTANCE_ROWS:
        sample = rows.sample(IMPORTANCE_ROWS, random_state=RANDOM_STATE)
    # Numbers as float64 once, so that each of the many scorings does not convert them again.
    features = sample[spec.features].assign(
        **{
            column.name: pd.to_numeric(sample[column.name], errors="coerce").astype("float64")
            for column in spec.feature_columns
            if column.numeric
        }
    )
    target = sample[spec.target]

    def score(fitted: Pipeline, table: pd.DataFrame, actual: pd.Series) -> float:
        outputs = spec.task.outputs(fitted, model_input(spec, table))
        value = spec.task.scores(actual, outputs)[metric.name]
        if value is None:
            return math.nan
        return value if metric.higher_is_better else -value

    began = time.monotonic()
    score(model, features, target)
    one_scoring = time.monotonic() - began
    affordable = IMPORTANCE_SECONDS / max(one_scoring * len(spec.features), 1e-9)
    repeats = max(MIN_IMPORTANCE_REPEATS, min(IMPORTANCE_REPEATS, math.floor(affordable)))
    found = permutation_importance(
        model, features, target, scoring=score, n_repeats=repeats, random_state=RANDOM_STATE
    )
    ranked = sorted(
        zip(spec.features, found.importances_mean, found.importances_std, strict=True),
        key=lambda entry: -entry[1] if not math.isnan(entry[1]) else math.inf,
    )
    top = [
        {"feature": name, "importance": float(mean), "std": float(std)}
        for name, mean, std in ranked[:TOP_FEATURES]
    ]
    return Importances(top, len(sample), len(rows), repeats)
