"""The diabetes model's feature checks and its gate, each called as a function; the gate's
metric names, directions and warnings of a classification are in test_classification."""

import dataclasses

import dagster as dg
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from ml_assets.definitions import defs
from ml_assets.learn.gate_statistics import measure
from ml_assets.learn.tasks import Regression
from ml_assets.pipeline.checks import (
    beats_baseline_result,
    enough_rows,
    gate_config_class,
    no_missing_values,
    not_worse_result,
    target_in_plausible_range,
    threshold_result,
    unique_row_ids,
)
from ml_assets.pipeline.naming import asset_key
from ml_assets_tests.conftest import DIABETES, asset
from ml_assets_tests.pipeline.gate_inputs import measured

GateConfig = gate_config_class(DIABETES)


@pytest.fixture
def feature_table(reference):
    return asset("features")(
        asset("dataset")(reference_data=reference, raw_batches={}, labels={}).value
    ).value


def test_feature_checks_pass_on_the_reference(feature_table):
    for check in (no_missing_values, unique_row_ids, enough_rows, target_in_plausible_range):
        assert check(DIABETES, feature_table).passed, check.__name__


def test_missing_values_fail(feature_table):
    feature_table.loc[[2, 3], "s1"] = np.nan
    result = no_missing_values(DIABETES, feature_table)
    assert not result.passed
    assert result.metadata["missing_by_column"].value == {"s1": 2}


def test_duplicate_ids_fail(feature_table):
    feature_table.loc[5, "row_id"] = feature_table.loc[6, "row_id"]
    result = unique_row_ids(DIABETES, feature_table)
    assert not result.passed
    assert result.metadata["duplicate_ids"].value == 1
    assert result.metadata["examples"].value == [feature_table.loc[6, "row_id"]]


def test_too_few_rows_fail(feature_table):
    result = enough_rows(DIABETES, feature_table.head(50))
    assert not result.passed
    assert result.metadata["train_rows"].value < 100


def test_implausible_target_fails(feature_table):
    feature_table.loc[0, "target"] = 5000.0
    result = target_in_plausible_range(DIABETES, feature_table)
    assert not result.passed
    assert result.metadata["rows_outside"].value == 1


def metrics(candidate_mse, production_mse=None, versus=None):
    candidate = {"mse": candidate_mse, "mae": 40.0}
    production = None if production_mse is None else {"mse": production_mse, "mae": 40.0}
    return measured(DIABETES, candidate, production, versus=versus)


@pytest.mark.parametrize(("mse", "passed"), [(2900.19, True), (2999.99, True), (3000.0, False)])
def test_mse_threshold_is_strict(mse, passed):
    result = threshold_result(DIABETES, metrics(mse), GateConfig())
    assert result.passed is passed
    assert result.metadata["mse_threshold"].value == "below 3000"  # a setting: not plotted
    assert result.check_name == "mse_below_threshold"
    # A refusal is an outcome, not a breakage: the run goes on to production_model, which
    # refuses to deploy (test_end_to_end).
    assert result.severity == dg.AssetCheckSeverity.WARN
    # a point comparison, with the candidate's interval beside it
    assert result.metadata["interval_low"].value == pytest.approx(mse * 0.9)
    assert result.metadata["interval_high"].value == pytest.approx(mse * 1.1)
    assert result.metadata["confidence"].value == 0.95
    assert "(95 % interval " in result.description


def test_threshold_comes_from_config():
    assert not threshold_result(DIABETES, metrics(2900.0), GateConfig(threshold=100)).passed


def test_no_production_passes_the_comparison():
    result = not_worse_result(DIABETES, metrics(2950.0), GateConfig())
    assert result.passed
    assert "no production model" in result.description


@pytest.mark.parametrize(
    ("interval", "config", "passed"),
    [
        ((-50, 40), GateConfig(), True),  # a tie within noise is promoted
        ((1, 60), GateConfig(), False),  # detectably worse
        ((-50, 40), GateConfig(promote_when="better"), False),  # not detectably better
        ((-60, -1), GateConfig(promote_when="better"), True),
        ((20, 28), GateConfig(tolerance_relative=0.01), True),  # allowed 29 worse
        ((30, 60), GateConfig(tolerance_relative=0.01), False),
        ((4, 50), GateConfig(tolerance_absolute=5), True),
        ((6, 50), GateConfig(tolerance_absolute=5), False),
        # both set: both must hold (allowed = min(5, 29) worse)
        ((6, 50), GateConfig(tolerance_absolute=5, tolerance_relative=0.01), False),
        # negative: an improvement of 29 is required, as MLflow's min_relative_change
        ((-20, 10), GateConfig(tolerance_relative=-0.01), False),
        ((-40, -10), GateConfig(tolerance_relative=-0.01), True),
        ((-60, -20), GateConfig(tolerance_relative=-0.01, promote_when="better"), False),
        ((-60, -30), GateConfig(tolerance_relative=-0.01, promote_when="better"), True),
    ],
)
def test_not_worse_than_production_reads_the_interval_with_tolerances(interval, config, passed):
    result = not_worse_result(DIABETES, metrics(2900.0, 2900.0, {"mse": interval}), config)
    assert result.passed is passed
    assert result.metadata["production_mse"].value == 2900.0
    assert (result.metadata["interval_low"].value, result.metadata["interval_high"].value) == (
        interval
    )
    assert result.metadata["promote_when"].value == config.promote_when
    assert "95 % interval" in result.description


def test_the_mae_guard_refuses_a_candidate_whose_typical_error_grew():
    worse_mae = measured(
        DIABETES, {"mse": 2950.0, "mae": 44.0}, {"mse": 2900.0, "mae": 40.0},
        versus={"mse": (-100, 300), "mae": (0.5, 9.0)},
    )  # fmt: skip
    result = not_worse_result(DIABETES, worse_mae, GateConfig())
    assert not result.passed
    assert (
        "candidate MSE is 50.00 higher, 95 % interval −100.00 to +300.00: no detectable"
        " difference; candidate MAE is 4 higher, 95 % interval +0.5 to +9: detectably worse"
    ) in result.description
    assert result.metadata["mae_interval_low"].value == 0.5
    allowed = not_worse_result(DIABETES, worse_mae, GateConfig(mae_tolerance_relative=0.25))
    assert allowed.passed  # 10 (a quarter of production's MAE of 40) may be worse
    better = not_worse_result(
        DIABETES,
        metrics(2800.0, 2900.0, {"mse": (-150, -20), "mae": (-1, 2)}),
        GateConfig(promote_when="better"),
    )
    assert better.passed  # better on the gate metric; the guard only must not be worse


def test_beats_baseline_needs_the_whole_interval_better():
    passing = measured(
        DIABETES, {"mse": 2900.0, "mae": 40.0}, baseline={"mse": 5361.5},
        versus_baseline={"mse": (-3500, -1400)},
    )  # fmt: skip
    result = beats_baseline_result(DIABETES, passing, GateConfig())
    assert result.passed
    assert result.metadata["baseline_mse"].value == 5361.5
    assert result.metadata["difference"].value == pytest.approx(2900.0 - 5361.5)
    assert "lower than the constant answer" in result.description
    assert 'DummyRegressor(strategy="mean")' in result.description
    tie = measured(
        DIABETES, {"mse": 2900.0, "mae": 40.0}, baseline={"mse": 3000.0},
        versus_baseline={"mse": (-300, 100)},
    )  # fmt: skip
    refused = beats_baseline_result(DIABETES, tie, GateConfig())
    assert not refused.passed
    assert "not detectably better" in refused.description


def test_gate_config_refuses_nonsense():
    with pytest.raises(ValueError):
        GateConfig(tolerance_relative=-1.5)
    with pytest.raises(ValueError):
        GateConfig(threshold="high")


def test_the_gate_config_defaults_are_the_yaml_gate():
    config = GateConfig()
    assert (config.threshold, config.tolerance_absolute, config.tolerance_relative) == (
        3000.0,
        None,
        None,
    )
    assert "log_loss_tolerance_relative" not in GateConfig.model_fields  # no log loss here
    assert (config.mae_tolerance_relative, config.promote_when) == (0.0, "not_worse")


def test_each_feature_check_can_run_alone(instance, reference, data_dir):
    enough = dg.AssetCheckKey(asset_key(DIABETES, "features"), "enough_rows")
    result = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets(
            *(asset_key(DIABETES, name) for name in ("reference_data", "dataset", "features"))
        ).without_checks()
        | dg.AssetSelection.checks(enough),
        instance=instance,
        resources=defs.resources,
    )
    assert [e.check_name for e in result.get_asset_check_evaluations()] == ["enough_rows"]


def test_candidates_as_good_as_production_are_rarely_refused():
    """200 candidates trained on fresh rows of the same population as production's, each
    compared on a fresh holdout of 89 rows: the point rule refuses about half; the gate
    (not_worse, 95 % intervals of MSE and of the MAE guard) at most one in twenty."""
    rng = np.random.default_rng(2026)
    coefficients = rng.normal(0, 10, 10)
    spec = dataclasses.replace(
        DIABETES, gate=dataclasses.replace(DIABETES.gate, bootstrap_resamples=1000)
    )

    def rows(n):
        features = rng.normal(0, 1, (n, 10))
        return features, features @ coefficients + rng.normal(0, 50, n)

    point_refusals = interval_refusals = 0
    trials = 200
    for _ in range(trials):
        production = LinearRegression().fit(*rows(353))
        candidate = LinearRegression().fit(*rows(353))
        holdout, target = rows(89)
        outputs = {
            "candidate": candidate.predict(holdout),
            "production": production.predict(holdout),
            "baseline": np.full(89, target.mean()),
        }
        scores = {name: Regression().scores(target, value) for name, value in outputs.items()}
        value = {
            **{name: scores[name] for name in outputs},
            "production_version": "v1",
            "holdout_rows": 89,
            "statistics": measure(spec, target, outputs, scores),
        }
        point_refusals += scores["candidate"]["mse"] > scores["production"]["mse"]
        interval_refusals += not not_worse_result(spec, value, GateConfig()).passed
    assert 0.35 * trials <= point_refusals <= 0.65 * trials
    assert interval_refusals <= 0.05 * trials
