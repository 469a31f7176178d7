"""Permutation importance on the reference holdout, against scikit-learn's own."""

import numpy as np
import pytest
from sklearn.inspection import permutation_importance

from ml_assets.learn.importance import TOP_FEATURES, permutation_importances
from ml_assets.learn.modeling import build_pipeline, model_input
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.splits import HOLDOUT, TRAIN, reference_split
from ml_assets_tests.conftest import DIABETES
from ml_assets_tests.learn.test_datetimes import trips
from ml_assets_tests.learn.test_generic_contract import shop


def fitted_and_holdout(spec, kind):
    reference = load_reference_table(spec)
    split = reference_split(spec, reference)
    train, holdout = reference[split == TRAIN], reference[split == HOLDOUT]
    model = build_pipeline(spec, kind, {}).fit(model_input(spec, train), train[spec.target])
    return model, holdout


def test_the_importances_are_scikit_learns_on_the_gate_metric():
    model, holdout = fitted_and_holdout(DIABETES, "linear")
    found = permutation_importances(DIABETES, model, holdout)
    ours = found.features
    assert (found.rows, found.of_rows, found.repeats) == (89, 89, 5)
    theirs = permutation_importance(
        model,
        model_input(DIABETES, holdout),
        holdout[DIABETES.target],
        scoring="neg_mean_squared_error",  # the gate's MSE, larger is better
        n_repeats=5,
        random_state=42,
    )
    expected = sorted(
        zip(DIABETES.features, theirs.importances_mean, theirs.importances_std, strict=True),
        key=lambda entry: -entry[1],
    )
    assert [entry["feature"] for entry in ours] == [name for name, _, _ in expected]
    for entry, (_, mean, std) in zip(ours, expected, strict=True):
        assert entry["importance"] == pytest.approx(mean, rel=1e-9)
        assert entry["std"] == pytest.approx(std, rel=1e-9, abs=1e-12)
    assert ours[0]["feature"] in ("s5", "bmi")  # diabetes' strongest, as is well known


def test_a_category_is_one_feature_not_its_one_hot_columns(tmp_path):
    spec = shop(tmp_path)
    model, holdout = fitted_and_holdout(spec, "logistic_regression")
    ours = permutation_importances(spec, model, holdout).features
    assert sorted(entry["feature"] for entry in ours) == sorted(spec.features)
    assert ours[0]["feature"] == "spend"  # the segment is gold when spend is over 100
    assert ours[0]["importance"] > 0.05
    assert len(ours) <= TOP_FEATURES
    assert all(np.isfinite(entry["std"]) for entry in ours)


def test_a_datetimes_parts_are_shuffled_together_and_ids_never_count(tmp_path):
    spec = trips(tmp_path).spec
    model, holdout = fitted_and_holdout(spec, "hist_gradient_boosting")
    ours = permutation_importances(spec, model, holdout).features
    assert sorted(entry["feature"] for entry in ours) == ["distance", "started_at", "vendor"]
    by_name = {entry["feature"]: entry["importance"] for entry in ours}
    assert by_name["distance"] > by_name["started_at"] > 0  # the rush hour and the weekend
    assert by_name["vendor"] == pytest.approx(0, abs=0.05)  # the fare does not depend on it


def test_a_large_holdout_is_sampled_and_shuffled_fewer_times_when_time_is_short(monkeypatch):
    from ml_assets.learn import importance

    model, holdout = fitted_and_holdout(DIABETES, "linear")
    monkeypatch.setattr(importance, "IMPORTANCE_ROWS", 50)
    monkeypatch.setattr(importance, "IMPORTANCE_SECONDS", 1e-9)  # no time at all: the floor
    found = permutation_importances(DIABETES, model, holdout)
    assert (found.rows, found.of_rows, found.repeats) == (50, 89, 2)
    assert found.measured_on == (
        "on 50 of 89 holdout rows, 2 shuffles of each feature (fewer: a large table)"
    )
    sample = holdout.sample(50, random_state=42)
    theirs = permutation_importance(
        model,
        model_input(DIABETES, sample),
        sample[DIABETES.target],
        scoring="neg_mean_squared_error",
        n_repeats=2,
        random_state=42,
    )
    expected = dict(zip(DIABETES.features, theirs.importances_mean, strict=True))
    for entry in found.features:
        assert entry["importance"] == pytest.approx(expected[entry["feature"]], rel=1e-9)
