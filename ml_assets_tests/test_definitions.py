"""The code location loads, validates, and runs headless the way the README says."""

import json
import os
import shutil
import subprocess

import dagster as dg
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from harness.live import BIN, REPO
from ml_assets.definitions import defs
from ml_assets.pipeline.naming import asset_key
from ml_assets_tests.conftest import CANCER, DIABETES

PER_MODEL_ASSETS = {
    "reference_data",
    "raw_batches",
    "dataset",
    "features",
    "candidate_model",
    "model_metrics",
    "production_model",
    "predictions",
    "served_predictions",
    "labels",
    "live_performance",
}


def checks_of(model: str) -> set[str]:
    graph = defs.resolve_asset_graph()
    return {
        f"{key.asset_key.path[1]}:{key.name}"
        for key in graph.asset_check_keys
        if key.asset_key.path[0] == model
    }


def test_every_public_name_is_defined_for_each_model():
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert assets == {
        f"{model}/{name}" for model in ("diabetes", "breast_cancer") for name in PER_MODEL_ASSETS
    }
    common = {
        "raw_batches:matches_data_contract",
        "raw_batches:no_drift_from_reference",
        "features:no_missing_values",
        "features:unique_row_ids",
        "features:enough_rows",
        "features:target_in_plausible_range",
        "features:no_suspicious_feature",
        "model_metrics:not_worse_than_production",
        "model_metrics:beats_baseline",
        "model_metrics:holdout_score_is_plausible",
        "served_predictions:served_rows_match_contract",
        "served_predictions:served_inputs_no_drift_from_reference",
        "labels:labels_match_their_predictions",
        "live_performance:live_not_degraded",
    }
    assert checks_of("diabetes") == common | {"model_metrics:mse_below_threshold"}
    assert checks_of("breast_cancer") == common | {"model_metrics:accuracy_above_threshold"}
    for spec in (DIABETES, CANCER):
        for check in spec.gate_checks:
            key = dg.AssetCheckKey(asset_key(spec, "model_metrics"), check)
            assert graph.get_check_spec(key).blocking
        warning = dg.AssetCheckKey(asset_key(spec, "features"), "no_suspicious_feature")
        assert not graph.get_check_spec(warning).blocking  # it warns, never blocks
        for job in (
            "training_job", "ingestion_job", "landed_file_job", "rollback_production", "served_job",
            "labels_job",
        ):  # fmt: skip
            assert defs.resolve_job_def(spec.named(job)).tags["ml_assets/model"] == spec.name
        assert defs.resolve_schedule_def(spec.named("weekly_retraining"))
        for sensor in (
            "landing_sensor", "retrain_after_ingestion", "served_sensor", "labels_sensor",
            "retrain_when_degraded",
        ):  # fmt: skip
            assert defs.resolve_sensor_def(spec.named(sensor))
        groups = {
            graph.get(key).group_name
            for key in graph.get_all_asset_keys()
            if key.path[0] == spec.name
        }
        assert groups == {spec.name}
    for shared in (
        "retraining_automation", "run_failure_alert", "model_decision_alert", "dead_run_reaper"
    ):  # fmt: skip
        assert defs.resolve_sensor_def(shared)


def test_every_object_has_a_description():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert graph.get(key).description, key
    for key in graph.asset_check_keys:  # what triggers it, and what it does
        description = graph.get_check_spec(key).description
        assert description.startswith(("After each ", "With each ")), key
        assert " when " in description.lower(), key
    for job in defs.resolve_all_job_defs():
        if not job.name.startswith("__"):
            assert job.description, job.name
    for schedule in defs.schedules:
        assert schedule.description, schedule.name
    sensors = defs.get_repository_def().sensor_defs
    assert len(sensors) == 14  # five per model, four shared
    for sensor in sensors:
        assert sensor.description, sensor.name


def test_the_production_queue_limits_ingestion_runs_of_every_model():
    import yaml

    limits = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())["concurrency"]["runs"]
    [limit] = limits["tag_concurrency_limits"]
    for spec in (DIABETES, CANCER):
        tags = defs.resolve_job_def(spec.named("ingestion_job")).tags
        assert tags[limit["key"]] == limit["value"] == "ingestion"


def test_two_models_never_share_a_partition_set_or_a_folder():
    graph = defs.resolve_asset_graph()
    partitions = {
        spec.name: graph.get(asset_key(spec, "raw_batches")).partitions_def.name
        for spec in (DIABETES, CANCER)
    }
    assert partitions == {
        "diabetes": "diabetes_landed_files",
        "breast_cancer": "breast_cancer_landed_files",
    }
    diabetes_selection = defs.resolve_job_def(
        "diabetes_training_job"
    ).asset_layer.selected_asset_keys
    assert all(key.path[0] == "diabetes" for key in diabetes_selection)


@pytest.mark.slow
def test_dagster_definitions_validate_passes(tmp_path):
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_headless_materialize_reproduces_the_reference_flow(tmp_path):
    """`make materialize MODEL=diabetes` on an empty instance and data dir, then `status`."""
    home, data = tmp_path / "home", tmp_path / "data"
    env = {**os.environ, "ML_ASSETS_DATA_DIR": str(data), "DAGSTER_HOME": str(home)}
    result = subprocess.run(
        ["make", "--no-print-directory", "materialize", "MODEL=diabetes"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (home / "dagster.yaml").read_text() == (REPO / "config" / "dagster.yaml").read_text()
    status = subprocess.run(
        [str(BIN / "ml-assets"), "status", "--model", "diabetes", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(status.stdout)
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    expected = mean_squared_error(y_test, LinearRegression().fit(X_train, y_train).predict(X_test))
    assert report["production"]["metrics"]["mse"] == pytest.approx(expected, rel=1e-9)
    assert round(report["production"]["metrics"]["mse"], 2) == round(expected, 2) == 2900.19
    assert not (data / "breast_cancer" / "models").exists()  # one model asked, one trained
    assert shutil.which("make")
