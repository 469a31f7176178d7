"""Live performance: each production version's metrics on the rows it answered whose labels
came, with the gate's bootstrap intervals, against the same version's at its promotion.

At promotion a version was measured on the reference holdout; live, on its labelled rows.
The two are different rows, so the comparison is an independent two-sample bootstrap: the
live rows resampled as the gate resamples (`gate_statistics.bootstrap_values`, seed 42), the
promotion's holdout rows resampled apart (seed 43), the difference live − promotion taken
resample by resample, its percentile interval at the gate's confidence. A version is degraded
when that interval on the gate metric is wholly worse than the gate's tolerance allows (the
gate's `not_worse` reading), on at least `monitoring.min_labelled_rows` rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ml_assets.learn.gate_statistics import (
    NOT_WORSE,
    Interval,
    bootstrap_values,
    difference_sentence,
    interval,
    verdict,
)
from ml_assets.learn.labels import LABEL, LABELLED_AT, PREDICTION_ID
from ml_assets.learn.tasks import RANDOM_STATE

if TYPE_CHECKING:
    import pandas as pd

    from ml_assets.learn.spec import ModelSpec

LIVE_SEED, PROMOTION_SEED = RANDOM_STATE, RANDOM_STATE + 1  # independent resamples


def labelled_once(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """The labelled rows of every label file, in the order they were joined, each prediction
    once: with the label joined last (a correction, or a file landed twice)."""
    import pandas as pd

    if not tables:
        return pd.DataFrame(columns=[PREDICTION_ID, LABEL, LABELLED_AT])
    rows = pd.concat(tables, ignore_index=True)
    if LABELLED_AT in rows:
        rows = rows.sort_values(LABELLED_AT, kind="stable", na_position="first")
    return rows.drop_duplicates(PREDICTION_ID, keep="last").reset_index(drop=True)


def version_performance(
    spec: ModelSpec,
    labelled: pd.DataFrame,
    at_promotion: pd.DataFrame | None,
    promoted_metrics: dict,
) -> dict:
    """One version's live performance, JSON-ready: its metrics on its `labelled` rows (the
    `label` beside the prediction columns) with intervals, the same at promotion and the
    difference live − promotion with its interval, whether it is degraded, and why in words.

    `at_promotion` is its holdout predictions at promotion with their `label`, or None for a
    version promoted before they were kept: then its card's `promoted_metrics` are taken as
    exact (a narrower interval than the truth) and the sentence says so.
    """
    import numpy as np

    task, gate, metric = spec.task, spec.gate, spec.gate.metric
    names = list(task.metrics)
    live_scores, live_values = _measured(spec, labelled, LIVE_SEED)
    performance = {
        "labelled_rows": len(labelled),
        "metrics": live_scores,
        "intervals": {
            name: interval(live_scores[name], live_values[name], gate.confidence) for name in names
        },
    }
    if at_promotion is not None and LABEL in at_promotion:
        promoted, promoted_values = _measured(spec, at_promotion, PROMOTION_SEED)
        rows, how = len(at_promotion), "resampled"
    else:
        promoted = {name: promoted_metrics.get(name) for name in names}
        promoted_values = {
            name: np.full(gate.bootstrap_resamples, np.nan if value is None else value)
            for name, value in promoted.items()
        }
        rows, how = None, "taken as exact: the holdout rows were not kept"
    versus = {}
    for name in names:
        undefined = live_scores[name] is None or promoted[name] is None
        difference = None if undefined else live_scores[name] - promoted[name]
        values = np.asarray(live_values[name], dtype="float64") - np.asarray(
            promoted_values[name], dtype="float64"
        )
        versus[name] = interval(difference, values, gate.confidence)
    performance["at_promotion"] = {"rows": rows, "how": how, "metrics": promoted}
    performance["versus_promotion"] = versus
    difference = Interval.of(versus[metric.name])
    said = difference_sentence(
        metric, difference, gate.confidence, other="at promotion", subject="live"
    )
    min_labelled_rows = spec.min_labelled_rows
    if len(labelled) < min_labelled_rows:
        performance["degraded"] = False
        performance["said"] = (
            f"{len(labelled)} labelled rows, fewer than the {min_labelled_rows} needed to"
            f" judge; {said}"
        )
        return performance
    allowed_worse = _allowed_worse(spec, promoted[metric.name])
    not_worse, conclusion = verdict(metric, difference, allowed_worse, NOT_WORSE)
    conclusion = conclusion if not_worse else f"degraded: {conclusion}"
    performance["degraded"] = not not_worse
    performance["said"] = f"{said}: {conclusion}"
    return performance


def _measured(spec: ModelSpec, rows: pd.DataFrame, seed: int) -> tuple[dict, dict]:
    """The task's metrics on rows of `label` and prediction columns, and their resamples."""
    task = spec.task
    target, outputs = rows[LABEL], task.outputs_of(rows)
    return task.scores(target, outputs), bootstrap_values(
        spec, target, outputs, list(task.metrics), seed
    )


def _allowed_worse(spec: ModelSpec, promoted: float | None) -> float:
    """How much worse than at promotion the gate's tolerances allow, in the metric's units;
    never less than nothing (a tolerance that demands an improvement over production is for
    promotion: a version need not beat itself)."""
    gate, metric = spec.gate, spec.gate.metric
    if promoted is None:
        return 0.0
    allowed = metric.worst_allowed(promoted, gate.tolerance_absolute, gate.tolerance_relative)
    return max(0.0, (-1.0 if metric.higher_is_better else 1.0) * (allowed - promoted))
