"""The diabetes model's feature checks and its gate, each called as a function; the gate's
metric names, directions and warnings of a classification are in test_classification."""

import dagster as dg
import numpy as np
import pytest

from ml_assets.definitions import defs
from ml_assets.pipeline.checks import (
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

GateConfig = gate_config_class(DIABETES)


@pytest.fixture
def feature_table(reference):
    return asset("features")(asset("dataset")(reference_data=reference, raw_batches={}).value).value


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


def metrics(candidate_mse, production_mse=None):
    return {
        "candidate": {"mse": candidate_mse},
        "production": None if production_mse is None else {"mse": production_mse},
        "production_version": None if production_mse is None else "v1",
        "holdout_rows": 89,
    }


@pytest.mark.parametrize(("mse", "passed"), [(2900.19, True), (2999.99, True), (3000.0, False)])
def test_mse_threshold_is_strict(mse, passed):
    result = threshold_result(DIABETES, metrics(mse), GateConfig())
    assert result.passed is passed
    assert result.metadata["mse_threshold"].value == "below 3000"  # a setting: not plotted
    assert result.check_name == "mse_below_threshold"
    # A refusal is an outcome, not a breakage: the run goes on to production_model, which
    # refuses to deploy (test_end_to_end).
    assert result.severity == dg.AssetCheckSeverity.WARN


def test_threshold_comes_from_config():
    assert not threshold_result(DIABETES, metrics(2900.0), GateConfig(threshold=100)).passed


def test_no_production_passes_the_comparison():
    result = not_worse_result(DIABETES, metrics(2950.0), GateConfig())
    assert result.passed
    assert "no production model" in result.description


@pytest.mark.parametrize(
    ("candidate", "production", "config", "passed"),
    [
        (2900.0, 2900.0, GateConfig(), True),
        (2900.01, 2900.0, GateConfig(), False),
        (2850.0, 2900.0, GateConfig(), True),
        (2920.0, 2900.0, GateConfig(tolerance_relative=0.01), True),  # allowed 2929
        (2930.0, 2900.0, GateConfig(tolerance_relative=0.01), False),
        (2905.0, 2900.0, GateConfig(tolerance_absolute=5), True),
        (2906.0, 2900.0, GateConfig(tolerance_absolute=5), False),
        # both set: both must hold (allowed = min(2905, 2929))
        (2910.0, 2900.0, GateConfig(tolerance_absolute=5, tolerance_relative=0.01), False),
        # negative: an improvement is required, as MLflow's min_relative_change
        (2880.0, 2900.0, GateConfig(tolerance_relative=-0.01), False),
        (2870.0, 2900.0, GateConfig(tolerance_relative=-0.01), True),
        (2895.0, 2900.0, GateConfig(tolerance_absolute=-10), False),
    ],
)
def test_not_worse_than_production_with_tolerances(candidate, production, config, passed):
    result = not_worse_result(DIABETES, metrics(candidate, production), config)
    assert result.passed is passed
    assert result.metadata["production_mse"].value == production
    assert ("within" if passed else "above") in result.description


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
