"""The production instance (deploy/dagster.yaml) on a real PostgreSQL: the whole graph, a
sensor tick, a schedule tick, and four runs at once without lock errors."""

import os
import re
import subprocess

import dagster as dg
import pytest

from harness.live import materialize_command
from ml_assets.definitions import defs
from ml_assets.store.registry import ModelRegistry
from ml_assets_tests.conftest import land
from ml_assets_tests.pipeline.test_automation import tick
from ml_assets_tests.test_end_to_end import keys, materialize

pytestmark = pytest.mark.slow


def test_the_graph_sensor_and_schedule_run_on_postgres(postgres_home, landing, reference):
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert materialize(instance).success
        land(landing, "batch.csv", reference.head(40))
        [request] = tick(instance, landing).run_requests
        assert materialize(
            instance, selection=keys("raw_batches"), partition_key="batch.csv"
        ).success
        assert instance.get_dynamic_partitions("diabetes_landed_files") == [request.partition_key]
        schedule = defs.resolve_schedule_def("diabetes_weekly_retraining")
        with dg.build_schedule_context(instance=instance) as context:
            [scheduled] = schedule.evaluate_tick(context).run_requests
        run = defs.resolve_job_def("diabetes_training_job").execute_in_process(
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
        assert run.returncode == 0 or failed <= {
            "diabetes__deployment_gate",
            "diabetes__production_model",
        }, output[-3000:]
    assert sum(run.returncode == 0 for run in runs) >= 1
    registry = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes")
    registry.load(registry.production().version)
    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info("training").slot_count == 1
        assert len(instance.get_run_records()) == 4
