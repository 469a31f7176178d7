"""The declared search: Optuna over kinds and parameters, cross-validated on the training rows,
checked against scikit-learn's own cross-validation of the trial it chose."""

import dataclasses

import pytest
from sklearn.model_selection import KFold, cross_val_score

import ml_assets.learn.search as search_module
from ml_assets.learn.modeling import build_pipeline, model_input
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.search import (
    BEST_TRIAL,
    FALLBACK,
    FINISHED,
    PRUNED,
    STOPPED,
    leaderboard,
    search,
)
from ml_assets.learn.spec import SearchSpec
from ml_assets.learn.splits import TRAIN, reference_split
from ml_assets_tests.conftest import DIABETES


def training_rows(spec):
    reference = load_reference_table(spec)
    train = reference[reference_split(spec, reference) == TRAIN]
    return model_input(spec, train), train[spec.target]


def searched(**declared):
    return dataclasses.replace(DIABETES, search=SearchSpec(**declared))


def test_the_best_trial_is_scored_as_scikit_learn_cross_validates_it():
    spec = searched(kinds=("ridge", "hist_gradient_boosting"), budget_seconds=6.0)
    rows, target = training_rows(spec)
    found = search(spec, rows, target, 6.0)
    assert found.kind in ("ridge", "hist_gradient_boosting") and found.trials
    finished = [trial for trial in found.trials if trial.status == FINISHED]
    assert [trial.mean for trial in finished] == sorted(trial.mean for trial in finished)
    best = finished[0]
    assert (best.kind, best.params) == (found.kind, found.params)
    scores = -cross_val_score(
        build_pipeline(spec, found.kind, found.params),
        rows,
        target,
        cv=KFold(5, shuffle=True, random_state=42),
        scoring="neg_mean_squared_error",
    )
    assert best.mean == pytest.approx(scores.mean(), rel=1e-9)  # the gate's MSE, lower first
    assert best.std == pytest.approx(scores.std(), rel=1e-9)
    assert found.outcome == BEST_TRIAL and found.reason.startswith("the best of")
    table = leaderboard(found, "MSE")
    assert table.splitlines()[0] == "| rank | trial | kind | params | status | CV MSE | seconds |"
    assert f"| 1 | {best.number} | {found.kind} |" in table
    assert len(table.splitlines()) == 2 + len(found.trials)  # every trial is on it


def test_a_declared_space_and_metric_are_searched():
    spec = searched(
        kinds=("ridge",), budget_seconds=2.0, cv_folds=3, metric="r2",
        space={"ridge": {"alpha": [0.5, 2.0]}},
    )  # fmt: skip
    rows, target = training_rows(spec)
    found = search(spec, rows, target, 2.0)
    assert all(0.5 <= trial.params["alpha"] <= 2.0 for trial in found.trials)
    finished = [trial.mean for trial in found.trials if trial.status == FINISHED]
    assert finished == sorted(finished, reverse=True)  # R²: higher first
    assert 0 < finished[0] < 1


class FakeClock:
    """A clock that moves only when a pipeline is fitted, by the seconds its kind is said to
    take: the search's decisions on time, made exactly reproducible."""

    def __init__(self, seconds_per_fit: dict[str, float]):
        self.now, self.seconds_per_fit = 0.0, seconds_per_fit

    def monotonic(self) -> float:
        return self.now

    def install(self, monkeypatch):
        real_build = search_module.build_pipeline

        def build(spec, kind, params, **options):
            pipeline = real_build(spec, kind, params, **options)
            fit = pipeline.fit

            def timed_fit(*args, **kwargs):
                self.now += self.seconds_per_fit[kind]
                return fit(*args, **kwargs)

            pipeline.fit = timed_fit
            return pipeline

        monkeypatch.setattr(search_module, "build_pipeline", build)
        monkeypatch.setattr(search_module, "time", self)


def test_a_slow_kind_cannot_starve_a_fast_one(monkeypatch):
    FakeClock({"hist_gradient_boosting": 10.0, "ridge": 0.1}).install(monkeypatch)
    spec = searched(kinds=("hist_gradient_boosting", "ridge"), budget_seconds=30.0)
    rows, target = training_rows(spec)
    found = search(spec, rows, target, 30.0)
    by_number = sorted(found.trials, key=lambda trial: trial.number)
    slow, fast = by_number[:2]  # the defaults, run fold by fold in turn
    assert (slow.kind, slow.status, len(slow.scores)) == ("hist_gradient_boosting", STOPPED, 2)
    assert slow.seconds == pytest.approx(20.0)
    assert (fast.kind, fast.status, len(fast.scores)) == ("ridge", FINISHED, 5)
    assert all(trial.kind == "ridge" for trial in by_number[2:])  # no time left for a slow one
    assert found.outcome == BEST_TRIAL and found.kind == "ridge"
    table = leaderboard(found, "MSE")
    assert f"| {slow.number} | hist_gradient_boosting |" in table
    assert "stopped by the budget" in table and "(2 of 5 folds)" in table


def test_the_kind_with_the_least_time_gets_the_next_trial(monkeypatch):
    FakeClock({"hist_gradient_boosting": 1.0, "ridge": 0.25}).install(monkeypatch)
    spec = searched(kinds=("hist_gradient_boosting", "ridge"), budget_seconds=40.0)
    rows, target = training_rows(spec)
    found = search(spec, rows, target, 40.0)
    spent = {
        kind: sum(trial.seconds for trial in found.trials if trial.kind == kind)
        for kind in ("hist_gradient_boosting", "ridge")
    }
    # Time is shared by kind, not by trials: four ridge folds for each boosted one.
    assert spent["ridge"] == pytest.approx(spent["hist_gradient_boosting"], abs=5.0)
    kinds = [trial.kind for trial in found.trials]
    assert kinds.count("ridge") > 2 * kinds.count("hist_gradient_boosting")
    assert any(trial.status == PRUNED for trial in found.trials) or len(found.trials) > 4


def test_a_budget_no_trial_can_finish_in_trains_the_fastest_kind_on_its_defaults(monkeypatch):
    FakeClock({"hist_gradient_boosting": 8.0, "lightgbm": 3.0}).install(monkeypatch)
    spec = searched(kinds=("hist_gradient_boosting", "lightgbm"), budget_seconds=12.0)
    rows, target = training_rows(spec)
    found = search(spec, rows, target, 12.0)  # never raises, whatever the budget
    assert found.outcome == FALLBACK
    assert (found.kind, found.params) == ("lightgbm", {})  # the faster of the two timed
    assert "no trial finished its 5 folds within 12 s" in found.reason
    assert "lightgbm (its slowest fold took 3.0 s)" in found.reason
    assert {trial.status for trial in found.trials} == {STOPPED}


def test_a_budget_shorter_than_one_fold_still_gives_a_candidate():
    spec = searched(kinds=("hist_gradient_boosting",), budget_seconds=1e-6)
    rows, target = training_rows(spec)
    found = search(spec, rows, target, 1e-6)
    assert (found.outcome, found.kind, found.params) == (FALLBACK, "hist_gradient_boosting", {})
    assert "give the search a larger budget_seconds" in found.reason


def test_equal_data_give_the_same_trials_the_budget_only_decides_how_many():
    spec = searched(kinds=("ridge",), budget_seconds=60.0, cv_folds=3)
    rows, target = training_rows(spec)

    def in_order(budget):
        found = search(spec, rows, target, budget).trials
        return [trial.params["alpha"] for trial in sorted(found, key=lambda t: t.number)]

    first, again = in_order(1.0), in_order(1.5)  # TPE is seeded
    shared = min(len(first), len(again))
    assert shared > 5
    assert first[:shared] == again[:shared]


def test_the_search_starts_from_each_kinds_defaults():
    spec = searched(kinds=("ridge", "hist_gradient_boosting"), budget_seconds=3.0, cv_folds=3)
    rows, target = training_rows(spec)
    found = search(spec, rows, target, 3.0)
    first = sorted(found.trials, key=lambda trial: trial.number)[:2]
    assert (first[0].kind, first[0].params) == ("ridge", {"alpha": 1.0})
    assert (first[1].kind, first[1].params) == (
        "hist_gradient_boosting",
        {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20,
         "l2_regularization": 0.0},
    )  # fmt: skip
    best = min(trial.mean for trial in found.trials if trial.status == FINISHED)
    assert best <= min(trial.mean for trial in first)  # never worse than the defaults


def test_under_a_split_by_time_each_fold_learns_the_past_and_is_scored_on_what_follows(
    tmp_path, data_dir
):
    from sklearn.model_selection import TimeSeriesSplit

    from ml_assets.learn.search import search_folds
    from ml_assets_tests.learn.test_datetimes import trips

    spec = trips(tmp_path, split="time", time_column="started_at").spec
    reference = load_reference_table(spec)
    train = reference[reference_split(spec, reference) == TRAIN]
    times = train["started_at"]
    folds = search_folds(spec, train[spec.target], 4, times=times)
    assert len(folds) == 4
    for fit, score in folds:
        assert times.iloc[fit].max() <= times.iloc[score].min()  # the past, then what follows
    in_time_order = train.sort_values("started_at", kind="stable")
    expected = TimeSeriesSplit(4).split(in_time_order)
    for (fit, score), (their_fit, their_score) in zip(folds, expected, strict=True):
        assert list(train.index[fit]) == list(in_time_order.index[their_fit])
        assert list(train.index[score]) == list(in_time_order.index[their_score])
    shuffled = search_folds(spec, train[spec.target], 4)  # without times: shuffled KFold
    assert any(times.iloc[fit].max() > times.iloc[score].min() for fit, score in shuffled)
