"""A declared search for the best model: Optuna's TPE over the declared kinds and their
parameters, scored by cross-validation on the training rows only, within a time budget.

The reference holdout is never seen: each trial fits the declared pipeline on `cv_folds`
folds of the training rows (`Task.folds`, shuffled with the seed) and is scored by the search
metric on the held-out fold; trials that are worse than the median of earlier trials after a
fold are pruned. The first trials are the kinds as they are by default, so the search ends no worse in
cross-validation than any searched kind's defaults. The best trial's kind and parameters
are then fitted on all training rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ml_assets.learn.modeling import build_pipeline
from ml_assets.learn.spec import is_range
from ml_assets.learn.tasks import RANDOM_STATE, ModelKind

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from ml_assets.learn.spec import ModelSpec

# Each kind's parameters and their ranges when the YAML names none: [low, high] (integers
# when both are), "log" for a log scale, or a list of choices.
DEFAULT_SPACES: dict[str, dict[str, list]] = {
    "linear": {},
    "ridge": {"alpha": [1e-3, 1e3, "log"]},
    "logistic_regression": {"C": [1e-3, 1e3, "log"]},
    "gradient_boosting": {
        "learning_rate": [0.01, 0.3, "log"],
        "n_estimators": [50, 400],
        "max_depth": [2, 6],
    },
    "random_forest": {
        "n_estimators": [100, 400],
        "min_samples_leaf": [1, 20, "log"],
        "max_features": [0.2, 1.0],
    },
    "hist_gradient_boosting": {
        "learning_rate": [0.01, 0.3, "log"],
        "max_leaf_nodes": [7, 127, "log"],
        "min_samples_leaf": [5, 100, "log"],
        "l2_regularization": [0.0, 1.0],
    },
    "lightgbm": {
        "learning_rate": [0.01, 0.3, "log"],
        "num_leaves": [7, 127, "log"],
        "min_child_samples": [5, 100, "log"],
        "n_estimators": [50, 500],
    },
}


@dataclass(frozen=True)
class Trial:
    """One trial of the search: its kind, parameters, cross-validated score and time."""

    number: int  # in the order the trials ran, from 0
    kind: str
    params: dict[str, Any]
    mean: float | None  # None when pruned before its last fold
    std: float | None
    seconds: float


@dataclass(frozen=True)
class SearchResult:
    """The best trial's kind and parameters, and every trial, best first."""

    kind: str
    params: dict[str, Any]
    trials: list[Trial]
    seconds: float


def _suggest(trial: optuna.Trial, kind: str, space: dict[str, list]) -> dict[str, Any]:
    params = {}
    for name, bounds in space.items():
        key = f"{kind}.{name}"
        if not is_range(bounds):
            params[name] = trial.suggest_categorical(key, bounds)
            continue
        low, high = bounds[:2]
        log = len(bounds) > 2 and bounds[2] == "log"
        if isinstance(low, int) and isinstance(high, int):
            params[name] = trial.suggest_int(key, low, high, log=log)
        else:
            params[name] = trial.suggest_float(key, float(low), float(high), log=log)
    return params


def _defaults_within(kind: ModelKind, space: dict[str, list]) -> dict[str, Any]:
    """The kind's own values of the searched parameters (scikit-learn's or LightGBM's
    defaults, then ours) that lie in their ranges, as trial parameters."""
    defaults = {**kind.estimator_class()().get_params(), **kind.settings}
    within = {}
    for name, bounds in space.items():
        value = defaults.get(name)
        if is_range(bounds) and isinstance(value, int | float) and not isinstance(value, bool):
            if bounds[0] <= value <= bounds[1]:
                within[f"{kind.name}.{name}"] = value
        elif not is_range(bounds) and value in bounds:
            within[f"{kind.name}.{name}"] = value
    return within


def search(
    spec: ModelSpec, rows: pd.DataFrame, target: pd.Series, budget_seconds: float
) -> SearchResult:
    """The best kind and parameters for the training rows, found within the budget."""
    import numpy as np
    import optuna

    declared = spec.search
    metric = spec.task.metrics[declared.metric or spec.gate.metric.name]
    sign = 1.0 if metric.higher_is_better else -1.0  # Optuna maximises
    started = time.monotonic()
    deadline = started + budget_seconds
    folds = list(spec.task.folds(declared.cv_folds).split(rows, target))
    trials: list[Trial] = []
    fold_seconds: dict[str, float] = {}  # the slowest fold of each kind so far

    def objective(trial: optuna.Trial) -> float:
        kind = trial.suggest_categorical("kind", list(declared.kinds))
        params = _suggest(trial, kind, declared.space.get(kind, DEFAULT_SPACES[kind]))
        began, scores = time.monotonic(), []
        for step, (fit_rows, score_rows) in enumerate(folds):
            # The budget is for the whole search: no fold starts that would likely end after it.
            fold_started = time.monotonic()
            if fold_started + fold_seconds.get(kind, 0.0) > deadline:
                trial.study.stop()
                raise optuna.TrialPruned()
            model = build_pipeline(spec, kind, params)
            model.fit(rows.iloc[fit_rows], target.iloc[fit_rows])
            fold_seconds[kind] = max(fold_seconds.get(kind, 0.0), time.monotonic() - fold_started)
            outputs = spec.task.outputs(model, rows.iloc[score_rows])
            value = spec.task.scores(target.iloc[score_rows], outputs)[metric.name]
            scores.append(math.nan if value is None else value)
            trial.report(sign * float(np.nanmean(scores)), step)
            if trial.should_prune():
                trials.append(
                    Trial(trial.number, kind, params, None, None, time.monotonic() - began)
                )
                raise optuna.TrialPruned()
        mean, std = float(np.nanmean(scores)), float(np.nanstd(scores))
        trials.append(Trial(trial.number, kind, params, mean, std, time.monotonic() - began))
        return sign * mean

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=RANDOM_STATE),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    )
    # A trial whose parameters the estimator refuses is recorded as failed, not fatal.
    for kind in declared.kinds:  # the first trials: each kind as it is by default
        space = declared.space.get(kind, DEFAULT_SPACES[kind])
        study.enqueue_trial({"kind": kind, **_defaults_within(spec.task.kinds[kind], space)})
    study.optimize(objective, timeout=budget_seconds, catch=(ValueError,))
    finished = [trial for trial in trials if trial.mean is not None]
    if not finished:
        raise SearchTooShort(
            f"no trial finished its {declared.cv_folds} folds within {budget_seconds:g} s:"
            " give the search a larger budget_seconds"
        )
    ranked = sorted(finished, key=lambda trial: -sign * trial.mean) + [
        trial for trial in trials if trial.mean is None
    ]
    return SearchResult(ranked[0].kind, ranked[0].params, ranked, time.monotonic() - started)


class SearchTooShort(RuntimeError):
    """The budget ended before any trial was scored on every fold."""


LEADERBOARD_ROWS = 25


def shown_params(params: dict[str, Any]) -> str:
    """Parameters as people read them: `alpha=32.28, max_depth=3`."""
    return ", ".join(
        f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in params.items()
    )


def leaderboard(result: SearchResult, metric_label: str) -> str:
    """The best trials as Markdown: kind, parameters, CV mean ± std, seconds."""
    lines = [
        f"| rank | trial | kind | params | CV {metric_label} | seconds |",
        "|---:|---:|---|---|---:|---:|",
    ]
    for rank, trial in enumerate(result.trials[:LEADERBOARD_ROWS], start=1):
        params = shown_params(trial.params)
        score = "pruned" if trial.mean is None else f"{trial.mean:.4g} ± {trial.std:.2g}"
        lines.append(
            f"| {rank} | {trial.number} | {trial.kind} | {params} | {score} | {trial.seconds:.2f} |"
        )
    hidden = len(result.trials) - LEADERBOARD_ROWS
    if hidden > 0:
        lines.append(f"\n… and {hidden} more trials")
    return "\n".join(lines)
