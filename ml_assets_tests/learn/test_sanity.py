"""What a data scientist would warn about, measured when the YAML loads and said at load and on
the check that owns it: a threshold a constant answer passes, a feature that alone predicts the
target, an identifier taken for a feature. Expected values from scikit-learn itself."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import accuracy_score, mean_squared_error
from sklearn.model_selection import train_test_split

from ml_assets.declare.component import TabularModel
from ml_assets.declare.load_checks import DeclarationWarning
from ml_assets.pipeline.checks import (
    beats_baseline_result,
    no_suspicious_feature,
    threshold_result,
)
from ml_assets_tests.conftest import CANCER, DIABETES
from ml_assets_tests.learn.test_generic_contract import COLUMNS, shop_table
from ml_assets_tests.pipeline.gate_inputs import measured
from ml_assets_tests.tables import bikes


def shop_segments(path, columns: dict, threshold: float):
    """The shop's segments declared on the table at `path`, gated on accuracy."""
    return TabularModel(
        name="shop_segments",
        task="classification",
        reference={"path": str(path), "stratify": True},
        columns=columns,
        target="segment",
        estimator={"kind": "logistic_regression"},
        gate={"metric": "accuracy", "threshold": threshold},
    ).spec


def test_the_constant_answers_score_is_scikit_learns(reference):
    train, holdout = train_test_split(reference, test_size=0.2, random_state=42)
    constant = DummyRegressor(strategy="mean").fit(train, train["target"])
    expected = mean_squared_error(holdout["target"], constant.predict(holdout))
    assert DIABETES.baseline_score == pytest.approx(expected, rel=1e-12)
    assert DIABETES.threshold_warning(3000) is None  # a constant answer is far from 3000
    assert DIABETES.data_warnings == () and CANCER.data_warnings == ()


def test_a_threshold_a_constant_answer_passes_is_warned_at_load_and_on_its_check(tmp_path):
    path = tmp_path / "shop.csv"
    shop_table().to_csv(path, index=False)
    with pytest.warns(DeclarationWarning, match="gate.threshold: a constant answer already"):
        spec = shop_segments(path, COLUMNS, threshold=0.2)
    table = pd.read_csv(path)
    train, holdout = train_test_split(
        table, test_size=0.2, random_state=42, stratify=table["segment"]
    )
    constant = DummyClassifier(strategy="prior").fit(train, train["segment"])
    expected = accuracy_score(holdout["segment"], constant.predict(holdout))
    assert spec.baseline_score == pytest.approx(expected)
    metrics = measured(spec, {"accuracy": 0.9, "log_loss": 0.3}, rows=60)
    config = type("Config", (), {"threshold": 0.2})
    result = threshold_result(spec, metrics, config)
    assert result.passed  # a warning, not a refusal
    assert result.metadata["constant_answer_accuracy"].value == pytest.approx(expected)
    assert "a constant answer already scores accuracy" in result.metadata["warnings"].value[0]
    baseline = beats_baseline_result(spec, metrics, config)  # said on the baseline's check too
    assert "a constant answer already scores accuracy" in baseline.metadata["warnings"].value[0]
    config.threshold = 0.95  # the Launchpad's threshold is judged, not the YAML's
    assert "warnings" not in threshold_result(spec, metrics, config).metadata


def test_a_leaking_feature_and_an_undeclared_identifier_are_named(tmp_path):
    table = shop_table()
    rng = np.random.default_rng(3)
    table["segment_code"] = table["segment"].map({"bronze": 1, "silver": 2, "gold": 3})
    table["customer_id"] = [f"K{n:05d}" for n in rng.permutation(len(table))]
    path = tmp_path / "shop.csv"
    table.to_csv(path, index=False)
    columns = {
        **{name: rules for name, rules in COLUMNS.items() if name != "segment"},
        "segment_code": {"type": "integer"},
        "customer_id": {"type": "category"},
        "segment": COLUMNS["segment"],
    }
    with pytest.warns(DeclarationWarning) as caught:
        spec = shop_segments(path, columns, threshold=0.5)
    said = spec.data_warnings
    assert len(said) == 2
    assert said[0].startswith(
        "'segment_code' alone predicts 'segment' with balanced_accuracy 1.000"
    )
    assert said[1].startswith("'customer_id' looks like an identifier (by its name)")
    declared = [w for w in caught if issubclass(w.category, DeclarationWarning)]
    assert {str(warning.message).split(": ", 1)[1] for warning in declared} == set(said)
    result = no_suspicious_feature(spec, features=None)
    assert not result.passed and result.severity.value == "WARN"
    assert result.metadata["warnings"].value == list(said)
    honest = no_suspicious_feature(dataclasses.replace(spec, data_warnings=()), features=None)
    assert honest.passed


RENTAL_COLUMNS = {
    "hr": {"type": "integer"},
    "temp": {"type": "number"},
    "casual": {"type": "integer"},
    "registered": {"type": "integer"},
    "cnt": {"type": "integer"},
}


def rentals(path, columns=None):
    """Hourly rentals declared on the table at `path` (by default: all of bikes()' columns)."""
    return TabularModel(
        name="rentals",
        task="regression",
        reference={"path": str(path)},
        columns=columns or RENTAL_COLUMNS,
        target="cnt",
        estimator={"kind": "ridge"},
        gate={"metric": "r2", "threshold": 0.0},
    ).spec


def test_two_features_whose_sum_is_the_target_are_named_together(tmp_path):
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score
    from sklearn.tree import DecisionTreeRegressor

    table = bikes()
    path = tmp_path / "bikes.csv"
    table.to_csv(path, index=False)
    train, holdout = train_test_split(table, test_size=0.2, random_state=42)
    pair = ["casual", "registered"]
    for name in pair:  # neither alone gives it away to a one-feature tree
        tree = DecisionTreeRegressor(min_samples_leaf=5, random_state=42)
        tree.fit(train[[name]], train["cnt"])
        assert r2_score(holdout["cnt"], tree.predict(holdout[[name]])) < 0.99
    linear = LinearRegression().fit(train[pair], train["cnt"])
    expected = r2_score(holdout["cnt"], linear.predict(holdout[pair]))
    assert expected > 0.999
    with pytest.warns(DeclarationWarning, match="together predict 'cnt'"):
        spec = rentals(path)
    [said] = spec.data_warnings
    assert said.startswith(
        f"'registered' and 'casual' together predict 'cnt' with r2 {expected:.3f}"
    )
    assert "a linear model of them alone" in said and "probably a leak" in said


def test_a_feature_that_is_the_target_in_other_units_is_named(tmp_path):
    table = bikes().drop(columns=["casual", "registered"])
    table["cnt_thousands"] = (table["cnt"] / 1000).round(6)  # the target in other units
    path = tmp_path / "bikes.csv"
    table.to_csv(path, index=False)
    spec = rentals(
        path,
        {
            "hr": {"type": "integer"},
            "temp": {"type": "number"},
            "cnt": {"type": "integer"},
            "cnt_thousands": {"type": "number"},
        },
    )
    assert len(spec.data_warnings) == 1
    assert spec.data_warnings[0].startswith("'cnt_thousands' alone predicts 'cnt' with r2 ")
    honest = dataclasses.replace(spec, data_warnings=())
    assert honest.data_warnings == ()


def test_honest_tables_raise_no_leak(tmp_path):
    table = bikes().drop(columns=["casual", "registered"])
    path = tmp_path / "bikes.csv"
    table.to_csv(path, index=False)
    honest = ("hr", "temp", "cnt")
    spec = rentals(path, {name: RENTAL_COLUMNS[name] for name in honest})
    assert spec.data_warnings == ()
    assert DIABETES.data_warnings == () and CANCER.data_warnings == ()


def test_a_score_too_good_to_be_true_names_what_the_model_leans_on():
    from ml_assets.pipeline.checks import plausible_score_result

    leaky = dataclasses.replace(
        DIABETES, data_warnings=("'s5' alone predicts 'target' with r2 0.999 ...: probably a leak",)
    )
    metrics = measured(leaky, {"mse": 1e-6, "mae": 1e-3, "r2": 0.99999998})
    metrics["importance"] = [
        {"feature": "s5", "importance": 2900.0, "std": 10.0},
        {"feature": "bmi", "importance": 0.5, "std": 0.1},
        {"feature": "age", "importance": 0.0, "std": 0.0},
    ]
    result = plausible_score_result(leaky, metrics)
    assert not result.passed and result.severity.value == "WARN"
    assert result.description.startswith(
        "holdout R² 0.99999998 on 89 rows is too good to be true (≥ 0.999): probably a leak;"
        " the model leans on 's5' (MSE worse by 2900.00 when shuffled), 'bmi'"
    )
    assert "at load: 's5' alone predicts" in result.description
    assert result.metadata["leaned_on"].value == ["s5", "bmi"]  # not what never helped
    fine = plausible_score_result(DIABETES, measured(DIABETES, {"mse": 2900.0, "mae": 40.0,
                                                                "r2": 0.45}))  # fmt: skip
    assert (
        fine.passed and fine.description == "nothing too good to be true on the reference holdout"
    )
    perfect = measured(CANCER, {"accuracy": 1.0, "log_loss": 0.01}, rows=114)
    said = plausible_score_result(CANCER, perfect).description
    assert said.startswith("not a single error on the 114 holdout rows (accuracy 1)")
