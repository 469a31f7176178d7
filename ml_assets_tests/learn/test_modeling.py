"""The pipeline a YAML file's model kind builds, and how a regression is scored; the same
for classification and for categories and missing values is in test_classification."""

import numpy as np
import pytest
from lightgbm import LGBMRegressor
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from ml_assets.learn.modeling import build_pipeline
from ml_assets.pipeline.run_config import model_config_class, resolved_params
from ml_assets_tests.conftest import DIABETES

FEATURES, TARGET = DIABETES.features, DIABETES.target


@pytest.mark.parametrize(
    ("kind", "estimator"),
    [
        ("linear", LinearRegression),
        ("ridge", Ridge),
        ("gradient_boosting", GradientBoostingRegressor),
        ("random_forest", RandomForestRegressor),
        ("hist_gradient_boosting", HistGradientBoostingRegressor),
        ("lightgbm", LGBMRegressor),
    ],
)
def test_each_kind_builds_a_pipeline_of_that_estimator(kind, estimator):
    pipeline = build_pipeline(DIABETES, kind, {})
    assert isinstance(pipeline.named_steps["regressor"], estimator)
    [(name, _, columns)] = pipeline.named_steps["prepare"].transformers
    assert (name, columns) == ("numbers_1", FEATURES)  # ten number columns: one transformer
    assert pipeline.named_steps["regressor"].get_params().get("random_state", 42) == 42


def test_lightgbm_is_quiet_and_hist_gradient_boosting_takes_the_numbers_as_they_are():
    assert build_pipeline(DIABETES, "lightgbm", {}).named_steps["regressor"].verbose == -1
    [(_, numbers, _)] = (
        build_pipeline(DIABETES, "hist_gradient_boosting", {}).named_steps["prepare"].transformers
    )
    assert numbers == "passthrough"  # missing values natively, no scaling for trees


def test_params_reach_the_estimator_over_our_defaults():
    regressor = build_pipeline(DIABETES, "gradient_boosting", {"n_estimators": 7, "max_depth": 2})
    regressor = regressor.named_steps["regressor"]
    assert (regressor.n_estimators, regressor.max_depth, regressor.random_state) == (7, 2, 42)
    seeded = build_pipeline(DIABETES, "random_forest", {"random_state": 3})
    assert seeded.named_steps["regressor"].random_state == 3
    assert build_pipeline(DIABETES, "ridge", {"alpha": 4.5}).named_steps["regressor"].alpha == 4.5


def test_run_config_params_override_the_yaml_only_for_its_own_kind():
    ModelConfig = model_config_class(DIABETES)
    assert ModelConfig().kind == "linear" and resolved_params(DIABETES, ModelConfig()) == {}
    assert resolved_params(DIABETES, ModelConfig(kind="ridge", params={"alpha": 2})) == {"alpha": 2}


def test_invalid_config_is_refused():
    ModelConfig = model_config_class(DIABETES)
    with pytest.raises(ValueError):
        ModelConfig(kind="svm")
    with pytest.raises(ValueError):
        ModelConfig(kind="logistic_regression")  # a classification kind


@pytest.mark.parametrize("kind", ["linear", "ridge", "gradient_boosting", "random_forest"])
def test_same_data_and_config_give_the_same_predictions(reference, kind):
    params = {"n_estimators": 30, "subsample": 0.7} if kind == "gradient_boosting" else {}
    first = build_pipeline(DIABETES, kind, params).fit(reference[FEATURES], reference[TARGET])
    second = build_pipeline(DIABETES, kind, params).fit(reference[FEATURES], reference[TARGET])
    np.testing.assert_array_equal(
        first.predict(reference[FEATURES]), second.predict(reference[FEATURES])
    )


def test_metrics_match_scikit_learn(reference):
    model = build_pipeline(DIABETES, "linear", {}).fit(reference[FEATURES], reference[TARGET])
    predicted = model.predict(reference[FEATURES])
    metrics = DIABETES.task.evaluate(model, reference[FEATURES], reference[TARGET])
    assert metrics["mse"] == pytest.approx(mean_squared_error(reference[TARGET], predicted))
    assert metrics["rmse"] == pytest.approx(np.sqrt(metrics["mse"]))
    assert metrics["mae"] == pytest.approx(mean_absolute_error(reference[TARGET], predicted))
    assert metrics["r2"] == pytest.approx(r2_score(reference[TARGET], predicted))
    assert all(type(value) is float for value in metrics.values())
