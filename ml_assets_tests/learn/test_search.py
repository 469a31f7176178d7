"""The declared search: Optuna over kinds and parameters, cross-validated on the training rows,
checked against scikit-learn's own cross-validation of the trial it chose."""

import dataclasses

import pytest
from sklearn.model_selection import KFold, cross_val_score

from ml_assets.learn.modeling import build_pipeline, model_input
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.search import SearchTooShort, leaderboard, search
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
    finished = [trial for trial in found.trials if trial.mean is not None]
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
    table = leaderboard(found, "MSE")
    assert table.splitlines()[0] == "| rank | trial | kind | params | CV MSE | seconds |"
    assert f"| 1 | {best.number} | {found.kind} |" in table


def test_a_declared_space_and_metric_are_searched():
    spec = searched(
        kinds=("ridge",), budget_seconds=2.0, cv_folds=3, metric="r2",
        space={"ridge": {"alpha": [0.5, 2.0]}},
    )  # fmt: skip
    rows, target = training_rows(spec)
    found = search(spec, rows, target, 2.0)
    assert all(0.5 <= trial.params["alpha"] <= 2.0 for trial in found.trials)
    finished = [trial.mean for trial in found.trials if trial.mean is not None]
    assert finished == sorted(finished, reverse=True)  # R²: higher first
    assert 0 < finished[0] < 1


def test_a_budget_too_short_for_any_trial_says_so():
    spec = searched(kinds=("hist_gradient_boosting",), budget_seconds=1e-6)
    rows, target = training_rows(spec)
    with pytest.raises(SearchTooShort, match="give the search a larger budget_seconds"):
        search(spec, rows, target, 1e-6)


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
    best = min(trial.mean for trial in found.trials if trial.mean is not None)
    assert best <= min(trial.mean for trial in first)  # never worse than the defaults
