"""The code location loads, validates, and runs headless the way the README says."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from ml_assets.definitions import defs

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_every_public_name_is_defined():
    assets = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert assets == {
        "reference_data",
        "raw_batches",
        "dataset",
        "features",
        "candidate_model",
        "model_metrics",
        "production_model",
        "predictions",
    }
    checks = {
        f"{key.asset_key.to_user_string()}:{key.name}"
        for key in defs.resolve_asset_graph().asset_check_keys
    }
    assert checks == {
        "raw_batches:matches_data_contract",
        "raw_batches:no_drift_from_reference",
        "features:no_missing_values",
        "features:unique_row_ids",
        "features:enough_rows",
        "features:target_in_plausible_range",
        "model_metrics:mse_below_threshold",
        "model_metrics:not_worse_than_production",
    }
    for check in ("mse_below_threshold", "not_worse_than_production"):
        spec = defs.resolve_asset_graph().get_check_spec(
            dg.AssetCheckKey(dg.AssetKey("model_metrics"), check)
        )
        assert spec.blocking
    for job in ("training_job", "ingestion_job", "rollback_production"):
        assert defs.resolve_job_def(job)
    graph = defs.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups["reference_data"] == groups["raw_batches"] == "ingestion"
    assert groups["production_model"] == groups["predictions"] == "deployment"
    assert {groups[k] for k in ("dataset", "features", "candidate_model", "model_metrics")} == {
        "training"
    }


def test_every_asset_and_check_has_a_description():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert graph.get(key).description, key
    for key in graph.asset_check_keys:
        assert graph.get_check_spec(key).description, key


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
    """`make materialize` on an empty instance and data dir, then `ml-assets status --json`."""
    home, data = tmp_path / "home", tmp_path / "data"
    env = {**os.environ, "ML_ASSETS_DATA_DIR": str(data), "DAGSTER_HOME": str(home)}
    result = subprocess.run(
        ["make", "--no-print-directory", "materialize"],
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
        [str(BIN / "ml-assets"), "status", "--json"],
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
    assert round(report["production"]["metrics"]["mse"], 2) == round(expected, 2)
    assert shutil.which("make")
