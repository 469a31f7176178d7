"""Live performance against statistics computed here independently: scikit-learn's metrics on
the labelled rows, a two-sample bootstrap written with NumPy, and simulations of a model as
good as promised (rarely called degraded) and of one that met another population (called)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import mean_squared_error

from ml_assets.learn.labels import labelled_batch
from ml_assets.learn.live import labelled_once, version_performance
from ml_assets.learn.reference import load_reference_table
from ml_assets_tests.conftest import CANCER, DIABETES

CONFIDENCE = 0.95


def with_gate(spec, **changes):
    return dataclasses.replace(spec, gate=dataclasses.replace(spec.gate, **changes))


def regression_rows(rng, rows, shift=0.0):
    """A population y = 3 x1 − 2 x2 + noise; `shift` moves x1 where the model never saw it
    and bends the relation there, so a model trained before does worse."""
    x = rng.normal(0, 1, size=(rows, 2))
    x[:, 0] += shift
    y = 3 * x[:, 0] - 2 * x[:, 1] + 0.5 * shift * x[:, 0] ** 2 + rng.normal(0, 1, rows)
    return x, y


def regression_labelled(model, x, y):
    return pd.DataFrame({"prediction": model.predict(x), "label": y})


def bootstrap(values, seed, resamples, metric):
    """An independent bootstrap: each resample's indices drawn by NumPy, the metric by
    scikit-learn on the rows drawn."""
    drawn = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    return np.array([metric(values.iloc[rows]) for rows in drawn])


def squared_error(rows):
    return mean_squared_error(rows["label"], rows["prediction"])


def test_live_metrics_and_intervals_are_an_independent_two_sample_bootstrap():
    spec = with_gate(DIABETES, bootstrap_resamples=400)
    rng = np.random.default_rng(0)
    model = LinearRegression().fit(*regression_rows(rng, 200))
    holdout = regression_labelled(model, *regression_rows(rng, 60))
    live = regression_labelled(model, *regression_rows(rng, 120))
    performance = version_performance(spec, live, holdout, {})

    assert performance["labelled_rows"] == 120
    assert performance["metrics"]["mse"] == pytest.approx(squared_error(live))
    assert performance["at_promotion"]["metrics"]["mse"] == pytest.approx(squared_error(holdout))
    live_values = bootstrap(live, 42, 400, squared_error)
    promotion_values = bootstrap(holdout, 43, 400, squared_error)
    low, high = np.quantile(live_values, [0.025, 0.975])
    assert performance["intervals"]["mse"]["low"] == pytest.approx(low)
    assert performance["intervals"]["mse"]["high"] == pytest.approx(high)
    difference = live_values - promotion_values
    versus = performance["versus_promotion"]["mse"]
    assert versus["value"] == pytest.approx(squared_error(live) - squared_error(holdout))
    assert (versus["low"], versus["high"]) == pytest.approx(
        tuple(np.quantile(difference, [0.025, 0.975]))
    )
    assert performance["degraded"] is False
    assert performance["said"].startswith("live MSE is")


def test_a_version_without_its_holdout_rows_is_compared_with_its_card_taken_as_exact():
    spec = with_gate(DIABETES, bootstrap_resamples=400)
    rng = np.random.default_rng(1)
    model = LinearRegression().fit(*regression_rows(rng, 200))
    live = regression_labelled(model, *regression_rows(rng, 120))
    performance = version_performance(spec, live, None, {"mse": 0.9, "r2": 0.9})
    values = bootstrap(live, 42, 400, squared_error) - 0.9
    versus = performance["versus_promotion"]["mse"]
    assert (versus["low"], versus["high"]) == pytest.approx(
        tuple(np.quantile(values, [0.025, 0.975]))
    )
    assert performance["at_promotion"] == {
        "rows": None,
        "how": "taken as exact: the holdout rows were not kept",
        "metrics": {"mse": 0.9, "rmse": None, "mae": None, "r2": 0.9},
    }
    assert performance["versus_promotion"]["rmse"]["value"] is None


def promoted_then_moved(seed, shift):
    """A model, its holdout at promotion, and 150 labelled rows of a moved population."""
    rng = np.random.default_rng(seed)
    model = LinearRegression().fit(*regression_rows(rng, 300))
    holdout = regression_labelled(model, *regression_rows(rng, 80))
    return model, holdout, regression_labelled(model, *regression_rows(rng, 150, shift=shift))


def test_a_model_that_met_another_population_is_degraded_and_says_how_much():
    spec = with_gate(DIABETES, bootstrap_resamples=1000)
    _, holdout, shifted = promoted_then_moved(seed=2, shift=2.0)
    performance = version_performance(spec, shifted, holdout, {})
    assert performance["degraded"] is True
    assert "higher than at promotion" in performance["said"]
    assert performance["said"].endswith("degraded: detectably worse")


def test_a_tolerance_lets_a_slightly_worse_version_be():
    model, holdout, shifted = promoted_then_moved(seed=2, shift=2.0)
    worse = squared_error(shifted) - squared_error(holdout)
    lenient = with_gate(DIABETES, bootstrap_resamples=1000, tolerance_absolute=worse * 3)
    assert version_performance(lenient, shifted, holdout, {})["degraded"] is False
    # a tolerance that demands an improvement is for promotion: live is never held to it
    demanding = with_gate(DIABETES, bootstrap_resamples=1000, tolerance_absolute=-10.0)
    same = regression_labelled(model, *regression_rows(np.random.default_rng(7), 150))
    assert version_performance(demanding, same, holdout, {})["degraded"] is False


def test_too_few_labelled_rows_never_call_a_version_degraded():
    spec = dataclasses.replace(with_gate(DIABETES, bootstrap_resamples=400), min_labelled_rows=200)
    _, holdout, shifted = promoted_then_moved(seed=3, shift=3.0)
    performance = version_performance(spec, shifted, holdout, {})
    assert performance["degraded"] is False
    assert performance["said"].startswith("150 labelled rows, fewer than the 200 needed")
    assert performance["versus_promotion"]["mse"]["low"] > 0  # shown, not judged


def test_each_prediction_counts_once_with_the_label_that_came_last():
    first = pd.DataFrame({"prediction_id": ["a", "b"], "label": [1.0, 2.0]})
    second = pd.DataFrame({"prediction_id": ["b", "c"], "label": [20.0, 3.0]})
    rows = labelled_once([first, second, second])
    assert rows.set_index("prediction_id")["label"].to_dict() == {"a": 1.0, "b": 20.0, "c": 3.0}
    assert labelled_once([]).empty


def simulated_alarms(spec, trained, promotion, live_rows, simulations, rng, shift=0.0):
    """How often a version is called degraded when its labelled rows come from a population
    (the same as its holdout's, or shifted)."""
    model, labelled = trained
    holdout = labelled(model, *promotion(rng, 100))
    alarms = 0
    for _ in range(simulations):
        live = labelled(model, *promotion(rng, live_rows, shift))
        alarms += version_performance(spec, live, holdout, {})["degraded"]
    return alarms / simulations


def classification_rows(rng, rows, shift=0.0):
    """Two classes by a logistic relation; `shift` flips it for a share of the rows."""
    x = rng.normal(0, 1, size=(rows, 3))
    logit = 1.5 * x[:, 0] - x[:, 1]
    chance = 1 / (1 + np.exp(-logit))
    positive = rng.random(rows) < chance
    flipped = rng.random(rows) < shift
    return x, np.where(positive ^ flipped, "malignant", "benign")


def classification_labelled(model, x, y):
    probabilities = model.predict_proba(x)
    columns = {
        f"probability_{label}": probabilities[:, i] for i, label in enumerate(model.classes_)
    }
    return pd.DataFrame({"prediction": model.predict(x), **columns, "label": y})


@pytest.mark.slow
def test_a_model_as_good_as_promised_is_rarely_called_degraded():
    """On labelled rows drawn from the holdout's population, live_not_degraded passes at
    least 95 % of the time, for a regression (MSE) and a classification (accuracy)."""
    rng = np.random.default_rng(4)
    regression = with_gate(DIABETES, bootstrap_resamples=500)
    model = LinearRegression().fit(*regression_rows(rng, 300))
    rate = simulated_alarms(
        regression, (model, regression_labelled), regression_rows, 150, 200, rng
    )
    assert rate <= 0.05
    classification = with_gate(CANCER, bootstrap_resamples=500)
    model = LogisticRegression().fit(*classification_rows(rng, 300))
    rate = simulated_alarms(
        classification, (model, classification_labelled), classification_rows, 150, 200, rng
    )
    assert rate <= 0.05


@pytest.mark.slow
def test_a_model_that_got_detectably_worse_is_called_degraded_most_of_the_time():
    rng = np.random.default_rng(5)
    regression = with_gate(DIABETES, bootstrap_resamples=500)
    model = LinearRegression().fit(*regression_rows(rng, 300))
    rate = simulated_alarms(
        regression, (model, regression_labelled), regression_rows, 150, 50, rng, shift=2.0
    )
    assert rate >= 0.9
    classification = with_gate(CANCER, bootstrap_resamples=500)
    model = LogisticRegression().fit(*classification_rows(rng, 300))
    rate = simulated_alarms(
        classification,
        (model, classification_labelled),
        classification_rows,
        300,
        50,
        rng,
        shift=0.3,
    )
    assert rate >= 0.9


def test_served_labelled_rows_become_a_batch_the_contract_accepts():
    reference = load_reference_table(DIABETES).iloc[:4].reset_index(drop=True)
    labelled = reference[DIABETES.features].assign(
        prediction_id=["a", "b", "c", "d"],
        served_at=pd.to_datetime(["2026-01-01", None, "2026-01-02", "2026-01-03"], utc=True),
        prediction=1.0,
        label=[100.0, 200.0, 300.0, 400.0],
    )
    labelled.loc[3, "age"] = 500.0  # the contract as declared now refuses it
    batch, refused = labelled_batch(DIABETES, labelled)
    # b was a landed batch's row (no served_at): the dataset has it already
    assert refused == 1
    assert list(batch.columns) == DIABETES.column_names
    assert batch["target"].tolist() == [100.0, 300.0]
    expected = reference.loc[[0, 2], DIABETES.features].reset_index(drop=True)
    pd.testing.assert_frame_equal(batch[DIABETES.features].reset_index(drop=True), expected)
    empty, none = labelled_batch(DIABETES, labelled.drop(columns="served_at"))
    assert empty.empty and none == 0
