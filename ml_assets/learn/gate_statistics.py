"""The statistics of the gate: how sure a comparison on the reference holdout is.

Every comparison is paired: the candidate and the model it is compared with (production, or
the constant answer) are scored on the same holdout rows, and the same resamples of those
rows. The interval is a percentile bootstrap over rows: `resamples` draws of the n rows with
replacement, `numpy.random.default_rng(42).integers(0, n, size=(resamples, n))` (a row per
resample) indexing the rows in `Task.weight_layout` order (a classification's sorted by the
candidate's score, stable; a regression's as given), each metric computed on each, the
two-sided interval between the quantiles
(1 − confidence)/2 and (1 + confidence)/2 (`numpy.quantile`). A classification's accuracy
also gets McNemar's exact test on the rows only one of the two answered right.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ml_assets.learn.modeling import model_input
from ml_assets.learn.resampling import ResampledModels
from ml_assets.learn.tasks import RANDOM_STATE, Metric

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ml_assets.learn.spec import ModelSpec

BLOCK_CELLS = 1_000_000  # resamples are weighed in blocks of about this many (resample, row)
NOT_WORSE, BETTER = "not_worse", "better"  # gate.promote_when


@dataclass(frozen=True)
class Interval:
    """A value on all the rows and its bootstrap interval (None where undefined)."""

    value: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "low": self.low, "high": self.high}

    @classmethod
    def of(cls, stored: dict) -> Interval:
        return cls(stored["value"], stored["low"], stored["high"])


def constant_answer(spec: ModelSpec, training: pd.DataFrame):
    """The task's constant answer (the training mean, or the classes' shares), fitted on the
    training rows: the baseline every candidate must beat."""
    return spec.task.baseline().fit(model_input(spec, training), training[spec.target])


def resample_weights(rows: int, resamples: int, seed: int = RANDOM_STATE) -> Iterator[np.ndarray]:
    """The resamples as weights, how many times each row was drawn: blocks of (k, rows)."""
    import numpy as np

    generator = np.random.default_rng(seed)
    block = max(1, BLOCK_CELLS // max(rows, 1))
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        drawn = generator.integers(0, rows, size=(size, rows))
        drawn += np.arange(size)[:, None] * rows  # each resample counts in its own row
        counts = np.bincount(drawn.ravel(), minlength=size * rows)
        yield counts.reshape(size, rows).astype("float64")


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float] | None:
    """The two-sided percentile interval of bootstrap values (resamples where a metric is
    undefined left out), or None when it is undefined on them all."""
    import numpy as np

    defined = values[~np.isnan(values)]
    if len(defined) == 0:
        return None
    tail = (1 - confidence) / 2
    low, high = np.quantile(defined, [tail, 1 - tail])
    return float(low), float(high)


def interval(value: float | None, values: np.ndarray, confidence: float) -> dict:
    """A value and the percentile interval of its bootstrap values, JSON-ready."""
    bounds = None if value is None else percentile_interval(values, confidence)
    low, high = bounds or (None, None)
    return Interval(value, low, high).as_dict()


def bootstrap_values(
    spec: ModelSpec, target: pd.Series, outputs: Any, names: list[str], seed: int = RANDOM_STATE
) -> dict[str, np.ndarray]:
    """The named metrics of one model's outputs on the gate's resamples of its rows (drawn
    with `seed`), by metric: an array of `gate.bootstrap_resamples` values."""
    import numpy as np

    task = spec.task
    layout = task.weight_layout(target, outputs, names)
    resampled = ResampledModels({"model": task.resampled(target, outputs, names, layout)})
    blocks = [
        resampled(weights)["model"]
        for weights in resample_weights(len(target), spec.gate.bootstrap_resamples, seed)
    ]
    return {name: np.concatenate([block[name] for block in blocks]) for name in names}


def mcnemar_p_value(ours: np.ndarray, theirs: np.ndarray) -> float:
    """McNemar's exact test: two-sided binomial p-value of the rows only one model got right."""
    from scipy.stats import binomtest

    only_ours, only_theirs = int((ours & ~theirs).sum()), int((~ours & theirs).sum())
    if only_ours + only_theirs == 0:
        return 1.0
    return float(binomtest(only_ours, only_ours + only_theirs, 0.5).pvalue)


def measure(
    spec: ModelSpec, target: pd.Series, outputs: dict[str, Any], scores: dict[str, dict | None]
) -> dict:
    """The gate's statistics, JSON-ready: the candidate's interval of every metric, and the
    paired difference candidate − production (the gate metric and the guards) and candidate −
    constant answer (the gate metric), with the gate's confidence and resamples.

    `outputs` and `scores` are by model: candidate, production (None when there is none) and
    baseline.
    """
    import numpy as np

    task, gate = spec.task, spec.gate
    compared = {
        "production": list(dict.fromkeys([gate.metric.name, *task.guard_metrics])),
        "baseline": [gate.metric.name],
    }
    every = list(task.metrics)
    # The rows are drawn in the order the candidate's metrics resample fastest in: a
    # classification's by its score (ROC AUC's order), a regression's as they are.
    layout = task.weight_layout(target, outputs["candidate"], every)
    models = {"candidate": task.resampled(target, outputs["candidate"], every, layout)}
    for other, names in compared.items():
        if outputs[other] is not None:
            models[other] = task.resampled(target, outputs[other], names, layout)
    resampled = ResampledModels(models)
    blocks = [
        resampled(weights) for weights in resample_weights(len(target), gate.bootstrap_resamples)
    ]
    values = {
        model: {name: np.concatenate([block[model][name] for block in blocks]) for name in names}
        for model, names in blocks[0].items()
    }
    candidate = scores["candidate"]
    statistics: dict[str, Any] = {
        "confidence": gate.confidence,
        "resamples": gate.bootstrap_resamples,
        "rows": len(target),
        "candidate": {
            name: interval(candidate[name], values["candidate"][name], gate.confidence)
            for name in task.metrics
        },
    }
    for other, names in compared.items():
        if other not in values:
            statistics[f"versus_{other}"] = None
            continue
        theirs = scores[other]
        versus = {}
        for name in names:
            undefined = candidate[name] is None or theirs[name] is None
            difference = None if undefined else candidate[name] - theirs[name]
            versus[name] = interval(
                difference, values["candidate"][name] - values[other][name], gate.confidence
            )
        ours_right = task.correct(target, outputs["candidate"])
        if ours_right is not None:
            versus["mcnemar_p_value"] = mcnemar_p_value(
                ours_right, task.correct(target, outputs[other])
            )
        statistics[f"versus_{other}"] = versus
    return statistics


def percent(confidence: float) -> str:
    """A confidence as people write it: `95 %`."""
    return f"{confidence * 100:g} %"


def _figure(value: float, scale: float) -> str:
    """A figure as precise as the largest of its fellows, as `Metric.shown` writes that."""
    return f"{value:.2f}" if scale >= 100 else f"{value:.4g}"


def difference_sentence(
    metric: Metric,
    difference: Interval,
    confidence: float,
    other: str = "",
    subject: str = "candidate",
) -> str:
    """`candidate MSE is 8.73 lower, 95 % interval −41.20 to +23.90` (`than <other>` after
    lower or higher when given; another subject than the candidate when given)."""
    if difference.value is None:
        return f"{subject} {metric.label} is undefined on these rows"
    ends = () if difference.low is None else (difference.low, difference.high)
    scale = max(abs(value) for value in (difference.value, *ends))
    if difference.value == 0:
        said = f"{subject} {metric.label} is the same{' as ' + other if other else ''}"
    else:
        way = "lower" if difference.value < 0 else "higher"
        than = f" than {other}" if other else ""
        said = f"{subject} {metric.label} is {_figure(abs(difference.value), scale)} {way}{than}"
    if not ends:
        return f"{said}, no interval (undefined on the resamples)"
    low, high = (f"{'−' if end < 0 else '+'}{_figure(abs(end), scale)}" for end in ends)
    return f"{said}, {percent(confidence)} interval {low} to {high}"


def verdict(
    metric: Metric, difference: Interval, allowed_worse: float, promote_when: str
) -> tuple[bool, str]:
    """Whether the candidate passes, and the conclusion in words.

    `allowed_worse` is how much worse the candidate may be, in the metric's units (negative:
    the improvement required). `not_worse` refuses only when the whole interval is worse than
    that; `better` promotes only when the whole interval is better than it.
    """
    if difference.low is None:  # undefined: nothing is shown either way
        return promote_when == NOT_WORSE, "no detectable difference (undefined)"
    sign = -1.0 if metric.higher_is_better else 1.0  # worse is up for errors, down for scores
    # How much worse the candidate is, at the interval's two ends.
    worse_low, worse_high = sorted((sign * difference.low, sign * difference.high))
    if worse_low > 0:
        finding = "detectably worse"
    elif worse_high < 0:
        finding = "detectably better"
    else:
        finding = "no detectable difference"
    margin = Metric.shown(abs(allowed_worse))
    if promote_when == BETTER:
        if worse_high < allowed_worse:
            return True, finding
        if allowed_worse < 0:
            return False, f"{finding}: not detectably better by the required {margin}"
        if allowed_worse > 0:
            return False, f"{finding}: not shown to be within the allowed {margin} worse"
        return False, f"{finding}: not detectably better"
    if worse_low <= allowed_worse:
        if worse_low > 0:
            return True, f"{finding}, within the allowed {margin}"
        return True, finding
    if allowed_worse < 0:
        return False, f"{finding}: detectably short of the required improvement of {margin}"
    if allowed_worse > 0:
        return False, f"worse beyond the allowed {margin}"
    return False, finding
