"""Shared fixtures: the bundled models, a temporary data folder, Dagster instances (temporary,
and on a fresh PostgreSQL database), and landing helpers.

Most tests are about the diabetes model, the reference flow; `landing`, `registry` and
`reference` are its own. The classification model has tests of its own."""

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from harness.live import REPO
from ml_assets.declare.project import declared_models
from ml_assets.definitions import defs
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.spec import ModelSpec
from ml_assets.pipeline.checks import model_checks
from ml_assets.pipeline.deployment import deployment_assets
from ml_assets.pipeline.ingestion import ingestion_assets
from ml_assets.pipeline.live_performance import live_performance_asset
from ml_assets.pipeline.monitoring import monitoring_assets, monitoring_checks
from ml_assets.pipeline.naming import asset_key
from ml_assets.pipeline.training import training_assets
from ml_assets.store.landing import LandingZone, ModelLanding
from ml_assets.store.mlflow_mirror import TRACKING_URI_VARIABLE
from ml_assets.store.registry import ModelRegistry, ModelVersions
from ml_assets.store.settings import DATA_DIR_VARIABLE

MODELS = declared_models()
DIABETES: ModelSpec = MODELS["diabetes"]
CANCER: ModelSpec = MODELS["breast_cancer"]


@pytest.fixture(autouse=True)
def isolated_from_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's instance or data: not via the environment, not via cwd."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv(TRACKING_URI_VARIABLE, raising=False)  # never a developer's MLflow
    monkeypatch.delenv(DATA_DIR_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data folder, also set as $ML_ASSETS_DATA_DIR for code that reads it."""
    folder = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(folder))
    return folder


@pytest.fixture
def landing(data_dir: Path) -> ModelLanding:
    """The diabetes model's landing zone."""
    return LandingZone(data_dir=str(data_dir)).for_model(DIABETES.name)


@pytest.fixture
def registry(data_dir: Path) -> ModelVersions:
    """The diabetes model's versions."""
    return ModelRegistry(data_dir=str(data_dir)).for_model(DIABETES.name)


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(scope="session")
def reference() -> pd.DataFrame:
    """The diabetes model's reference table, as the contract reads it."""
    return load_reference_table(DIABETES)


def asset(name: str, model: ModelSpec = DIABETES) -> dg.AssetsDefinition:
    """One of a model's assets as its component built it, to call as a function or materialize."""
    key = asset_key(model, name)
    return next(definition for definition in defs.assets if key in definition.keys)


def land(
    landing: ModelLanding, name: str, content: bytes | pd.DataFrame, age: float = 60.0
) -> Path:
    """Put a file in landing/ as if it had arrived `age` seconds ago."""
    path = landing.landing / name
    data = content.to_csv(index=False).encode() if isinstance(content, pd.DataFrame) else content
    path.write_bytes(data)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def contract_evaluations(result) -> list:
    """The `matches_data_contract` evaluations of a run's result."""
    return [
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.check_name == "matches_data_contract"
    ]


SERVER = {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "postgres"}


def require_service(service: str, answers: bool) -> None:
    """Skip a test whose service is not running here; in CI (CI=true) the service must be."""
    if answers:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{service} must answer in CI")
    pytest.skip(f"{service} does not answer")


def psql(*sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", *sql],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


@pytest.fixture
def postgres_home(tmp_path, monkeypatch):
    """A fresh database and a DAGSTER_HOME holding deploy/dagster.yaml; dropped afterwards."""
    require_service(
        "PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth)",
        shutil.which("psql") is not None and psql("select 1").returncode == 0,
    )
    database = f"ml_assets_test_{uuid.uuid4().hex[:12]}"
    assert psql(f"create database {database}").returncode == 0
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for key, value in {**SERVER, "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": database}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    try:
        yield home
    finally:
        psql(f"drop database if exists {database} with (force)")


def graph_of(spec) -> dict:
    """The assets and checks of a model declared in Python, as Definitions arguments."""
    return {
        "assets": [
            *ingestion_assets(spec), *training_assets(spec), *deployment_assets(spec),
            *monitoring_assets(spec), live_performance_asset(spec),
        ],
        "asset_checks": [*model_checks(spec), *monitoring_checks(spec)],
    }  # fmt: skip


def train_undeclared(spec, instance, assets, run_config=None, partition_key=None):
    """Materializes some assets of a model declared in Python (not in the defs folder)."""
    graph = graph_of(spec)
    return dg.materialize(
        [*graph["assets"], *graph["asset_checks"]],
        selection=dg.AssetSelection.assets(*(asset_key(spec, name) for name in assets)),
        instance=instance,
        resources=defs.resources,
        run_config=run_config,
        partition_key=partition_key,
        raise_on_error=False,
    )
