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
