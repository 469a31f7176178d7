"""The production instance (deploy/dagster.yaml) on a real PostgreSQL: the whole graph, a
sensor tick, a schedule tick, and four runs at once without lock errors."""

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.definitions import defs
from ml_assets.registry import ModelRegistry
from ml_assets_tests.conftest import land
from ml_assets_tests.test_automation import tick
from ml_assets_tests.test_end_to_end import materialize
from ml_assets_tests.test_faults import materialize_command

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SERVER = {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "postgres"}


def psql(*sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", *sql],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


@pytest.fixture
def postgres_home(tmp_path, monkeypatch):
    """A fresh database and a DAGSTER_HOME holding deploy/dagster.yaml; dropped afterwards."""
    if shutil.which("psql") is None or psql("select 1").returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL must answer on 127.0.0.1:5432 in CI")
        pytest.skip("no PostgreSQL answers on 127.0.0.1:5432 (user postgres, trust auth)")
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


def test_the_graph_sensor_and_schedule_run_on_postgres(postgres_home, landing, reference):
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert materialize(instance).success
        land(landing, "batch.csv", reference.head(40))
        [request] = tick(instance, landing).run_requests
        assert materialize(
            instance, selection=dg.AssetSelection.assets("raw_batches"), partition_key="batch.csv"
        ).success
        assert instance.get_dynamic_partitions("landed_files") == [request.partition_key]
        schedule = defs.resolve_schedule_def("weekly_retraining")
        with dg.build_schedule_context(instance=instance) as context:
            [scheduled] = schedule.evaluate_tick(context).run_requests
        run = defs.resolve_job_def("training_job").execute_in_process(
            instance=instance, run_config=scheduled.run_config
        )
        assert run.success


def test_four_runs_at_once_finish_without_lock_errors(postgres_home, data_dir, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("execution: {config: {in_process: {}}}\n")
    with dg.DagsterInstance.get():  # the schema, created once as `dagster dev` would
        pass
    command = materialize_command(config)
    runs = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert not re.search(r"database is locked|deadlock detected|OperationalError", output)
        failed = set(re.findall(r" - (\w+) - STEP_FAILURE", output))
        assert run.returncode == 0 or failed <= {"deployment_gate", "production_model"}, output[
            -3000:
        ]
    assert sum(run.returncode == 0 for run in runs) >= 1
    registry = ModelRegistry(data_dir=str(data_dir))
    registry.load(registry.production().version)
    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info("training").slot_count == 1
        assert len(instance.get_run_records()) == 4
