import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from ml_assets.contract import FEATURES, TARGET
from ml_assets.modeling import ModelConfig, build_pipeline, regression_metrics


@pytest.mark.parametrize(
    ("kind", "estimator"),
    [
        ("linear", LinearRegression),
        ("ridge", Ridge),
        ("gradient_boosting", GradientBoostingRegressor),
    ],
)
def test_each_kind_builds_a_pipeline_of_that_estimator(kind, estimator):
    pipeline = build_pipeline(ModelConfig(model_kind=kind))
    assert isinstance(pipeline.named_steps["regressor"], estimator)


def test_hyperparameters_reach_the_estimator():
    config = ModelConfig(model_kind="gradient_boosting", n_estimators=7, max_depth=2, random_seed=3)
    regressor = build_pipeline(config).named_steps["regressor"]
    assert (regressor.n_estimators, regressor.max_depth, regressor.random_state) == (7, 2, 3)
    assert (
        build_pipeline(ModelConfig(model_kind="ridge", ridge_alpha=4.5))
        .named_steps["regressor"]
        .alpha
        == 4.5
    )


def test_invalid_config_is_refused():
    with pytest.raises(ValueError):
        ModelConfig(model_kind="svm")
    with pytest.raises(ValueError):
        ModelConfig(ridge_alpha=0)


@pytest.mark.parametrize("kind", ["linear", "ridge", "gradient_boosting"])
def test_same_data_and_config_give_the_same_predictions(reference, kind):
    config = ModelConfig(model_kind=kind, n_estimators=30, subsample=0.7)
    first = build_pipeline(config).fit(reference[FEATURES], reference[TARGET])
    second = build_pipeline(config).fit(reference[FEATURES], reference[TARGET])
    np.testing.assert_array_equal(
        first.predict(reference[FEATURES]), second.predict(reference[FEATURES])
    )


def test_metrics_match_scikit_learn(reference):
    model = build_pipeline(ModelConfig()).fit(reference[FEATURES], reference[TARGET])
    predicted = model.predict(reference[FEATURES])
    metrics = regression_metrics(model, reference, reference[TARGET])
    assert metrics["mse"] == pytest.approx(mean_squared_error(reference[TARGET], predicted))
    assert metrics["rmse"] == pytest.approx(np.sqrt(metrics["mse"]))
    assert metrics["mae"] == pytest.approx(mean_absolute_error(reference[TARGET], predicted))
    assert metrics["r2"] == pytest.approx(r2_score(reference[TARGET], predicted))
    assert all(type(value) is float for value in metrics.values())
