"""A declared search for the best model: Optuna's TPE over the declared kinds and their
parameters, scored by cross-validation on the training rows only, within a time budget that
it never fails for.

The reference holdout is never seen: each trial fits the declared pipeline on `cv_folds`
folds of the training rows (`Task.folds`, shuffled with the seed; under `split: time`, each
fold trains on the past and is scored on the rows after it) and is scored by the search
metric on the held-out fold.

Kinds are interleaved, so that a slow kind cannot starve the others:
1. the first trials are the kinds as they are by default, run fold by fold in turn (the
   first fold of each kind, then the second of each, ...), so the search ends no worse in
   cross-validation than any searched kind's defaults that finished;
2. then each next trial is of the kind that has had the least time so far (TPE picks its
   parameters), and is pruned when it is worse than the median of earlier trials after a
   fold.
No fold starts that the kind's slowest fold so far would carry past the budget. The candidate
is the best trial that finished all its folds; when none did (a budget too short for the
machine's load), it is the fastest kind fitted on its defaults, and the result says so.
Every trial is on the leaderboard: finished, pruned, stopped by the budget, or failed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ml_assets.learn.modeling import build_pipeline, model_input
from ml_assets.learn.spec import is_range
from ml_assets.learn.splits import representative_rows
from ml_assets.learn.tasks import RANDOM_STATE, ModelKind
from ml_assets.learn.threads import fitting_threads

if TYPE_CHECKING:
    import numpy as np
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
# When no fold of any kind was timed, the fallback takes the first of these that was declared.
USUALLY_FASTEST = (
    "linear", "ridge", "logistic_regression", "hist_gradient_boosting", "lightgbm",
    "gradient_boosting", "random_forest",
)  # fmt: skip

FINISHED, PRUNED, STOPPED, FAILED = "finished", "pruned", "stopped by the budget", "failed"
BEST_TRIAL, FALLBACK = "best_trial", "fallback"


@dataclass(frozen=True)
class Trial:
    """One trial of the search: its kind, parameters, how it ended, its fold scores, its time."""

    number: int  # in the order the trials started, from 0
    kind: str
    params: dict[str, Any]
    status: str  # FINISHED, PRUNED, STOPPED or FAILED
    scores: tuple[float, ...]  # the metric on each fold it was scored on
    seconds: float

    @property
    def mean(self) -> float | None:
        """The mean over the folds scored (all of them when finished); None before any."""
        return _mean(self.scores)

    @property
    def std(self) -> float | None:
        """The standard deviation over the folds scored, as NumPy's `std`."""
        mean, defined = self.mean, [score for score in self.scores if not math.isnan(score)]
        if mean is None:
            return None
        return math.sqrt(sum((score - mean) ** 2 for score in defined) / len(defined))


def _mean(scores: list[float] | tuple[float, ...]) -> float | None:
    """The mean of the folds' scores where the metric is defined; None where it never is."""
    defined = [score for score in scores if not math.isnan(score)]
    return math.fsum(defined) / len(defined) if defined else None


@dataclass(frozen=True)
class SearchResult:
    """The chosen kind and parameters, how they were chosen, and every trial, best first."""

    kind: str
    params: dict[str, Any]
    trials: list[Trial]
    seconds: float
    outcome: str  # BEST_TRIAL, or FALLBACK when no trial finished
    reason: str  # the choice in a sentence
    folds: int  # the folds a finished trial was scored on


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


def search_folds(
    spec: ModelSpec, target: pd.Series, count: int, times: pd.Series | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The search's folds as (fit positions, score positions): the task's shuffled folds, or,
    given the rows' times (`split: time`), scikit-learn's TimeSeriesSplit over the rows in
    time order: each fold fits on the earlier rows and is scored on the later ones."""
    import numpy as np

    if times is None:
        return list(spec.task.folds(count).split(np.zeros(len(target)), target))
    from sklearn.model_selection import TimeSeriesSplit

    order = np.argsort(times.to_numpy(), kind="stable")
    return [(order[fit], order[score]) for fit, score in TimeSeriesSplit(count).split(order)]


@dataclass
class _Running:
    """A trial being run: asked of the study, scored fold by fold."""

    trial: optuna.Trial
    kind: str
    params: dict[str, Any]
    scores: list[float] = field(default_factory=list)
    seconds: float = 0.0
    status: str | None = None  # set when it ends


def search(
    spec: ModelSpec,
    rows: pd.DataFrame,
    target: pd.Series,
    budget_seconds: float,
    times: pd.Series | None = None,
) -> SearchResult:
    """The best kind and parameters for the training rows, found within the budget; never
    fails for time. `times`, under `split: time`, orders the folds. Estimators run with the
    threads `threads.fitting_threads` allows."""
    with fitting_threads(spec.task.kinds[kind] for kind in spec.search.kinds):
        return _search(spec, rows, target, budget_seconds, times)


def _search(
    spec: ModelSpec,
    rows: pd.DataFrame,
    target: pd.Series,
    budget_seconds: float,
    times: pd.Series | None,
) -> SearchResult:
    import optuna

    declared = spec.search
    metric = spec.task.metrics[declared.metric or spec.gate.metric.name]
    sign = 1.0 if metric.higher_is_better else -1.0  # Optuna maximises
    kinds = list(declared.kinds)
    started = time.monotonic()
    deadline = started + budget_seconds
    folds = search_folds(spec, target, declared.cv_folds, times)
    slowest: dict[str, float] = {}  # the slowest fold of each kind so far
    spent = dict.fromkeys(kinds, 0.0)  # each kind's time so far
    ran: list[_Running] = []

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=RANDOM_STATE),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
    )

    def space(kind: str) -> dict[str, list]:
        return declared.space.get(kind, DEFAULT_SPACES[kind])

    def start(kind: str, fixed: dict[str, Any]) -> _Running:
        study.enqueue_trial({"kind": kind, **fixed})  # the rest is TPE's to choose
        trial = study.ask()
        trial.suggest_categorical("kind", kinds)
        running = _Running(trial, kind, _suggest(trial, kind, space(kind)))
        ran.append(running)
        return running

    def fits(kind: str) -> bool:
        """Whether one more fold of the kind would likely end within the budget."""
        return time.monotonic() + slowest.get(kind, 0.0) <= deadline

    def run_fold(running: _Running) -> None:
        fit_rows, score_rows = folds[len(running.scores)]
        began = time.monotonic()
        try:
            # A tuned decision threshold is left out of the trials: tuning it in every fold
            # would multiply the search's cost by the tuner's folds.
            model = build_pipeline(spec, running.kind, running.params, tune_threshold=False)
            model.fit(rows.iloc[fit_rows], target.iloc[fit_rows])
            outputs = spec.task.outputs(model, rows.iloc[score_rows])
            value = spec.task.scores(target.iloc[score_rows], outputs)[metric.name]
        except ValueError:  # parameters the estimator refuses: this trial fails, not the run
            running.status = FAILED
            value = None
        took = time.monotonic() - began
        running.seconds += took
        spent[running.kind] += took
        if running.status != FAILED:
            slowest[running.kind] = max(slowest.get(running.kind, 0.0), took)
            running.scores.append(math.nan if value is None else float(value))

    def end(running: _Running, status: str) -> None:
        running.status = status
        mean = _mean(running.scores)
        if status == FINISHED and mean is not None:
            study.tell(running.trial, sign * mean)
            return
        if status == FINISHED:  # undefined on every fold
            running.status = FAILED
        state = optuna.trial.TrialState
        study.tell(running.trial, state=state.FAIL if running.status == FAILED else state.PRUNED)

    # 1. Each kind on its defaults, fold by fold in turn.
    defaults = [start(kind, _defaults_within(spec.task.kinds[kind], space(kind))) for kind in kinds]
    for _ in folds:
        for running in defaults:
            if running.status is None:
                if not fits(running.kind):
                    end(running, STOPPED)
                else:
                    run_fold(running)
                    if running.status == FAILED:
                        end(running, FAILED)
    for running in defaults:
        if running.status is None:
            end(running, FINISHED)

    # 2. TPE's trials, each of the kind that has had the least time so far.
    searchable = [kind for kind in kinds if space(kind)]
    while True:
        waiting = [kind for kind in searchable if fits(kind)]
        if not waiting:
            break
        running = start(min(waiting, key=lambda kind: spent[kind]), {})
        for step in range(len(folds)):
            if not fits(running.kind):
                end(running, STOPPED)
                break
            run_fold(running)
            if running.status == FAILED:
                end(running, FAILED)
                break
            mean = _mean(running.scores)
            if mean is not None:
                running.trial.report(sign * mean, step)
            if running.trial.should_prune():
                end(running, PRUNED)
                break
        if running.status is None:
            end(running, FINISHED)

    trials = [
        Trial(running.trial.number, running.kind, running.params, running.status,
              tuple(running.scores), running.seconds)
        for running in ran
    ]  # fmt: skip
    return _chosen(spec, trials, sign, slowest, budget_seconds, time.monotonic() - started)


def _chosen(
    spec: ModelSpec,
    trials: list[Trial],
    sign: float,
    slowest: dict[str, float],
    budget_seconds: float,
    seconds: float,
) -> SearchResult:
    """The best finished trial, else the fastest kind on its defaults; trials ranked."""
    declared = spec.search
    finished = sorted(
        (trial for trial in trials if trial.status == FINISHED),
        key=lambda trial: -sign * trial.mean,
    )
    others = sorted(
        (trial for trial in trials if trial.status != FINISHED),
        key=lambda trial: ((STOPPED, PRUNED, FAILED).index(trial.status), trial.number),
    )
    ranked = finished + others
    if finished:
        best = finished[0]
        reason = (
            f"the best of {len(finished)} trials that finished their {declared.cv_folds} folds"
            f" ({len(trials)} trials in {seconds:.1f} s of {budget_seconds:g})"
        )
        return SearchResult(
            best.kind, best.params, ranked, seconds, BEST_TRIAL, reason, declared.cv_folds
        )
    timed = sorted(slowest, key=slowest.get)
    untimed = sorted(
        (kind for kind in declared.kinds if kind not in slowest),
        key=lambda kind: USUALLY_FASTEST.index(kind),
    )
    kind = (timed + untimed)[0]
    params = dict(spec.params) if kind == spec.kind.name else {}
    fold = f"its slowest fold took {slowest[kind]:.1f} s" if kind in slowest else "untimed"
    reason = (
        f"no trial finished its {declared.cv_folds} folds within {budget_seconds:g} s (a busy"
        f" machine, or a budget too short for this table): the fastest kind, {kind} ({fold}),"
        " fitted on its defaults; give the search a larger budget_seconds to search"
    )
    return SearchResult(kind, params, ranked, seconds, FALLBACK, reason, declared.cv_folds)


def shown_params(params: dict[str, Any]) -> str:
    """Parameters as people read them: `alpha=32.28, max_depth=3`."""
    return ", ".join(
        f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in params.items()
    )


LEADERBOARD_ROWS = 500  # a bound for the UI; a search of cheap trials may run thousands


def leaderboard(result: SearchResult, metric_label: str) -> str:
    """Every trial as Markdown, best first: kind, parameters, how it ended, CV mean ± std over
    the folds it was scored on, seconds."""
    lines = [
        f"| rank | trial | kind | params | status | CV {metric_label} | seconds |",
        "|---:|---:|---|---|---|---:|---:|",
    ]
    for rank, trial in enumerate(result.trials[:LEADERBOARD_ROWS], start=1):
        if trial.mean is None:
            score = "–"
        else:
            score = f"{trial.mean:.4g} ± {trial.std:.2g}"
            if trial.status != FINISHED:
                score += f" ({len(trial.scores)} of {result.folds} folds)"
        lines.append(
            f"| {rank} | {trial.number} | {trial.kind} | {shown_params(trial.params)} |"
            f" {trial.status} | {score} | {trial.seconds:.2f} |"
        )
    hidden = len(result.trials) - LEADERBOARD_ROWS
    if hidden > 0:
        lines.append(f"\n… and {hidden} more trials")
    return "\n".join(lines)


def trial_record(trial: Trial) -> dict:
    """One trial, JSON-ready: its number, kind, parameters, how it ended, its fold scores,
    their mean and spread, its seconds."""
    return {
        "number": trial.number,
        "kind": trial.kind,
        "params": trial.params,
        "status": trial.status,
        "scores": [None if math.isnan(score) else score for score in trial.scores],
        "mean": trial.mean,
        "std": trial.std,
        "seconds": trial.seconds,
    }


def status_counts(result: SearchResult) -> dict[str, int]:
    """How many trials ended each way."""
    return {
        status: sum(trial.status == status for trial in result.trials)
        for status in (FINISHED, PRUNED, STOPPED, FAILED)
    }


TIMED_ROWS = 20_000  # rows a new model's kinds are timed on, at most (then scaled up)
BUDGET_ROUNDS = 4  # a new model's budget: this many cross-validations of every kind's defaults
MIN_BUDGET_SECONDS = 60
BUDGET_STEP_SECONDS = 30


def timed_budget(spec: ModelSpec, table: pd.DataFrame) -> tuple[int, str]:
    """A search budget sized on the table itself, and why: each searched kind is fitted once
    on its defaults (on at most 20 000 rows drawn with the seed, scaled up to a fold's
    training rows), and the budget holds four cross-validations of them all, so that the
    defaults finish on a machine a few times busier than this one and the rest is searched;
    at least a minute, in steps of half a minute."""
    declared = spec.search
    rows = representative_rows(spec, table, TIMED_ROWS)
    fold_rows = len(table) * (1 - spec.reference.test_size) * (1 - 1 / declared.cv_folds)
    scale = max(1.0, fold_rows / len(rows))
    features, target = model_input(spec, rows), rows[spec.target]
    seconds = {}
    with fitting_threads(spec.task.kinds[kind] for kind in declared.kinds):
        for kind in declared.kinds:
            began = time.monotonic()
            build_pipeline(spec, kind, {}, tune_threshold=False).fit(features, target)
            seconds[kind] = (time.monotonic() - began) * scale
    one_round = declared.cv_folds * sum(seconds.values())
    steps = math.ceil(BUDGET_ROUNDS * one_round / BUDGET_STEP_SECONDS)
    budget = max(MIN_BUDGET_SECONDS, steps * BUDGET_STEP_SECONDS)
    fits = ", ".join(f"{kind} {took:.2g} s" for kind, took in seconds.items())
    return budget, (
        f"a fit on a fold's {round(fold_rows):,} rows took {fits} here: the budget holds"
        f" {BUDGET_ROUNDS} rounds of their {declared.cv_folds}-fold cross-validation (at least"
        f" {MIN_BUDGET_SECONDS} s)"
    )
