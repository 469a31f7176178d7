"""Why a model decides as it does: scikit-learn's permutation importance of each declared
feature on the reference holdout, scored by the gate metric."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ml_assets.learn.modeling import model_input
from ml_assets.learn.tasks import RANDOM_STATE

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from ml_assets.learn.spec import ModelSpec

IMPORTANCE_REPEATS = 5  # shuffles of each feature
TOP_FEATURES = 20


def permutation_importances(spec: ModelSpec, model: Pipeline, rows: pd.DataFrame) -> list[dict]:
    """How much the gate metric worsens when one declared feature is shuffled, the top 20.

    `sklearn.inspection.permutation_importance(n_repeats=5, random_state=42)` on the declared
    feature columns, before the pipeline's encoding: a category is shuffled as one column,
    not as its one-hot columns, and a datetime's parts move together. Each entry: the
    feature, the mean worsening and its standard deviation over the shuffles (in the
    metric's units, positive when the feature helps).
    """
    import math

    from sklearn.inspection import permutation_importance

    metric = spec.gate.metric

    def score(fitted: Pipeline, table: pd.DataFrame, target: pd.Series) -> float:
        outputs = spec.task.outputs(fitted, model_input(spec, table))
        value = spec.task.scores(target, outputs)[metric.name]
        if value is None:
            return math.nan
        return value if metric.higher_is_better else -value

    found = permutation_importance(
        model,
        rows[spec.features],
        rows[spec.target],
        scoring=score,
        n_repeats=IMPORTANCE_REPEATS,
        random_state=RANDOM_STATE,
    )
    ranked = sorted(
        zip(spec.features, found.importances_mean, found.importances_std, strict=True),
        key=lambda entry: -entry[1] if not math.isnan(entry[1]) else math.inf,
    )
    return [
        {"feature": name, "importance": float(mean), "std": float(std)}
        for name, mean, std in ranked[:TOP_FEATURES]
    ]
