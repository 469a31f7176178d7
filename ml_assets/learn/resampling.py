"""The holdout metrics of many resamples of the rows at once, for the gate's bootstrap.

A resample is a row of weights, how many times each holdout row was drawn. Each metric is a
function of weighted means of per-row values (squared errors, hits, ...): the values of every
model compared are stacked into one matrix, so a block of resamples is one matrix product, not
a Python loop over resamples. On any weights the metrics are scikit-learn's metrics of the rows
repeated that many times (tested against scikit-learn on resampled rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Resampled:
    """One model's metrics on resamples: the per-row values whose weighted means they come
    from, and how they come from them (means of the resamples, their weights)."""

    columns: np.ndarray  # (rows, values)
    metrics: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]


class ResampledModels:
    """The metrics of several models on the same resamples, with one matrix product a block."""

    def __init__(self, models: dict[str, Resampled]):
        import numpy as np

        self.models = models
        first = next(iter(models.values())).columns
        # A column of ones gives each resample's total weight in the same product.
        self.columns = np.vstack(
            [np.ones(len(first)), *(model.columns.T for model in models.values())]
        )
        self.bounds = np.cumsum([1, *(model.columns.shape[1] for model in models.values())])

    def __call__(self, weights: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        sums = (self.columns @ weights.T).T  # the values' side first: faster than weights @
        means = sums[:, 1:] / sums[:, :1]
        return {
            name: model.metrics(means[:, start - 1 : end - 1], weights)
            for (name, model), start, end in zip(
                self.models.items(), self.bounds[:-1], self.bounds[1:], strict=True
            )
        }


def _laid_out(values: np.ndarray, layout: np.ndarray | None) -> np.ndarray:
    """Per-row values in the order the weights come in (`layout[p]` is the row at p)."""
    return values if layout is None else values[layout]


def regression_metrics(
    target: np.ndarray, predicted: np.ndarray, names: Sequence[str], layout=None
) -> Resampled:
    """MSE, RMSE, MAE and R² of the resamples, from four means of the rows."""
    import numpy as np

    actual = np.asarray(target, dtype="float64")
    error = actual - np.asarray(predicted, dtype="float64")
    centred = actual - actual.mean()  # R²'s spread without cancelling large means
    columns = _laid_out(np.column_stack([error**2, np.abs(error), centred, centred**2]), layout)

    def metrics(means: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
        squared, absolute, mean, second = means.T
        spread = second - mean**2
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(spread > 0, 1 - squared / spread, np.where(squared == 0, 1.0, 0.0))
        values = {"mse": squared, "rmse": np.sqrt(squared), "mae": absolute, "r2": r2}
        return {name: values[name] for name in names}

    return Resampled(columns, metrics)


class WeightedRocAuc:
    """ROC AUC of each resample: the weighted share of (positive, negative) pairs ranked in
    order, a tie counting half, as scikit-learn's trapezoids give; NaN without both classes.

    In the rows sorted by score, each positive is credited with the cumulative weight of the
    negatives before it (half of those tied with it): a cumulative sum, no sort per resample.
    """

    def __init__(self, positive: np.ndarray, score: np.ndarray, layout: np.ndarray | None):
        import numpy as np

        own = np.argsort(score, kind="stable")
        classes = np.column_stack([~positive, positive]).astype("float64")
        # Both classes' total weight in one product, in the order the weights come in.
        self.classes = classes if layout is None else classes[layout]
        if layout is None:
            layout = np.arange(len(score))
        position = np.empty(len(layout), dtype=np.intp)
        position[layout] = np.arange(len(layout))
        self.take = None if np.array_equal(own, layout) else position[own]
        ranked, ranked_positive = score[own], positive[own]
        self.positive = ranked_positive.astype("float64")
        self.negative = (~ranked_positive).astype("float64")
        self.constant = bool(ranked[0] == ranked[-1])  # a constant answer: 0.5
        new_score = np.r_[True, ranked[1:] != ranked[:-1]]
        starts = np.flatnonzero(new_score)  # each row's run of equal scores: [start, end)
        run = np.cumsum(new_score) - 1
        start, end = starts[run], np.r_[starts[1:], len(ranked)][run]
        # The positives tied with another row, and the cumulative negatives at the ends of
        # their run (column -1: none yet).
        self.tied = np.flatnonzero((end - start > 1) & ranked_positive)
        self.run_start, self.run_end = start[self.tied] - 1, end[self.tied] - 1

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        import numpy as np

        pairs = (weights @ self.classes).prod(axis=1)
        if self.constant:
            return np.where(pairs > 0, 0.5, np.nan)
        drawn = weights if self.take is None else weights[:, self.take]
        # At a positive row, the cumulative negatives are those before it; a tied positive's
        # are those before its run and half of those in it.
        credit = np.cumsum(drawn * self.negative, axis=1)
        if len(self.tied):
            before = np.where(self.run_start >= 0, credit[:, self.run_start], 0.0)
            credit[:, self.tied] = 0.5 * (before + credit[:, self.run_end])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(pairs > 0, ((drawn * credit) @ self.positive) / pairs, np.nan)


def classification_metrics(
    actual: np.ndarray,
    predicted: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    names: Sequence[str],
    layout=None,
) -> Resampled:
    """Accuracy, balanced accuracy, macro F1, log loss and ROC AUC of the resamples.

    `probabilities` has a column per class in `classes` order. Balanced accuracy and macro F1
    count only the classes a resample holds, as scikit-learn does on the resampled rows; ROC
    AUC is one-vs-rest, averaged over classes, and NaN on a resample missing a class.
    """
    import numpy as np

    classes = list(classes)
    truth = np.asarray(actual, dtype=object).astype(str)[:, None] == np.array(classes)[None, :]
    guess = np.asarray(predicted, dtype=object).astype(str)[:, None] == np.array(classes)[None, :]
    correct = (truth & guess).any(axis=1)
    eps = np.finfo(probabilities.dtype).eps  # log_loss clips as scikit-learn does
    loss = -np.log(np.clip(probabilities[truth], eps, 1 - eps))
    count = len(classes)
    columns = np.column_stack([correct, loss, truth, guess, truth & guess]).astype("float64")
    columns = _laid_out(columns, layout)
    aucs = []
    if "roc_auc" in names:
        scored = _auc_classes(classes)
        aucs = [
            WeightedRocAuc(truth[:, index], probabilities[:, index], layout) for index in scored
        ]

    def metrics(means: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
        true_share = means[:, 2 : 2 + count]
        guessed_share = means[:, 2 + count : 2 + 2 * count]
        hit_share = means[:, 2 + 2 * count :]
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = np.where(true_share > 0, hit_share / true_share, np.nan)
            present = true_share + guessed_share
            f1 = np.where(present > 0, 2 * hit_share / present, np.nan)
        values = {
            "accuracy": means[:, 0],
            "log_loss": means[:, 1],
            "balanced_accuracy": np.nanmean(recall, axis=1),
            "f1_macro": np.nanmean(f1, axis=1),
        }
        if aucs:  # one-vs-rest macro: NaN when any class is missing, as scikit-learn refuses
            values["roc_auc"] = np.mean([auc(weights) for auc in aucs], axis=0)
        return {name: values[name] for name in names}

    return Resampled(columns, metrics)


def _auc_classes(classes: list[str]) -> list[int]:
    """The classes whose one-vs-rest AUC is averaged: with two, only the positive one, the
    second in sorted order as scikit-learn takes it."""
    if len(classes) == 2:
        return [classes.index(sorted(classes)[1])]
    return list(range(len(classes)))


def classification_layout(actual: np.ndarray, probabilities: np.ndarray, classes) -> np.ndarray:
    """The rows by the score of the first class whose ROC AUC is averaged: the order in which
    that AUC needs no reordering of the weights."""
    import numpy as np

    return np.argsort(probabilities[:, _auc_classes(list(classes))[0]], kind="stable")
