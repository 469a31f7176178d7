"""Where steps execute: chosen by run config alone, Celery workers included.

The Celery test runs the production configuration for real: the instance on PostgreSQL
(deploy/dagster.yaml), RabbitMQ on 127.0.0.1:5672 as the broker, and a `dagster-celery`
worker that the test starts and stops; every step must run in the worker's processes."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import psutil
import pytest
import yaml
from kombu import Connection

from harness.live import BIN, REPO, materialize_command
from ml_assets.definitions import defs
from ml_assets.store.registry import ModelRegistry
from ml_assets_tests.conftest import require_service

BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"


def run_config(execution: dict) -> dict:
    return {"execution": {"config": execution}}


@pytest.mark.parametrize(
    "execution",
    [{}, {"in_process": {}}, {"multiprocess": {"max_concurrent": 2}}, {"celery": {}}],
)
def test_each_step_executor_is_a_valid_run_config(execution):
    job = defs.resolve_job_def("diabetes_training_job")
    dg.validate_run_config(job, run_config(execution) if execution else {})


@pytest.mark.parametrize(
    "execution",
    [
        {"celery": {"brokr": BROKER}},
        {"dask": {}},
        {"in_process": {}, "celery": {}},
    ],
)
def test_an_unknown_executor_or_setting_is_refused_before_the_run(execution):
    job = defs.resolve_job_def("diabetes_training_job")
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, run_config(execution))


def test_loading_the_definitions_does_not_import_celery():
    code = "import sys, ml_assets.definitions; print('dagster_celery' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert loaded.stdout.strip() == "False"


def with_queue(deploy_file: Path, folder: Path, queue: str) -> Path:
    """A copy of a deploy/ file whose Celery settings also name a queue."""
    document = yaml.safe_load(deploy_file.read_text())
    config = document["execution"]["config"]
    celery = config.get("celery", config)  # the run config nests them under `celery`
    celery["config_source"] = {"task_default_queue": queue}
    path = folder / deploy_file.name
    path.write_text(yaml.safe_dump(document))
    return path


def broker_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


def start_worker(config: Path, queue: str, env: dict, log: Path) -> subprocess.Popen:
    """A `dagster-celery` worker in its own session, ready to take tasks from `queue`."""
    worker = subprocess.Popen(
        [
            str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
            "-y", str(config), "-q", queue, "-n", queue, "--", "--concurrency=1",
        ],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while b" ready." not in log.read_bytes():
        assert worker.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.5)
    return worker


def stop_worker(worker: subprocess.Popen) -> None:
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)


def delete_queue(queue: str) -> None:
    with Connection(BROKER) as connection:
        connection.default_channel.queue_delete(queue)


@pytest.mark.slow
def test_the_graph_runs_on_a_celery_worker_with_the_production_instance(
    postgres_home, data_dir, tmp_path
):
    require_service("RabbitMQ on 127.0.0.1:5672 (guest/guest)", broker_answers())
    # deploy/'s files, each with a queue of this test's own so no other worker takes its steps
    queue = f"ml_assets_test_{uuid.uuid4().hex[:12]}"
    worker_yaml = with_queue(REPO / "deploy" / "celery_worker.yaml", tmp_path, queue)
    run_yaml = with_queue(REPO / "deploy" / "run_on_celery.yaml", tmp_path, queue)
    env = {
        **os.environ,
        "DAGSTER_CELERY_BROKER_URL": BROKER,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",  # dagster-celery execs `celery`
    }
    with dg.DagsterInstance.get():  # the schema, created once as `dagster dev` would
        pass

    worker = start_worker(worker_yaml, queue, env, tmp_path / "worker.log")
    try:
        worker_pids = {worker.pid} | {p.pid for p in psutil.Process(worker.pid).children(True)}
        run = subprocess.run(
            materialize_command(run_yaml),
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    finally:
        stop_worker(worker)
        delete_queue(queue)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    with dg.DagsterInstance.get() as instance:
        [record] = instance.get_run_records()
        events = instance.all_logs(record.dagster_run.run_id)
    run_pids = {e.dagster_event.pid for e in events if e.dagster_event_type == "PIPELINE_START"}
    step_pids = {e.dagster_event.pid for e in events if e.dagster_event_type == "STEP_START"}
    steps = {e.step_key for e in events if e.dagster_event_type == "STEP_SUCCESS"}
    assert {
        "diabetes__candidate_model",
        "diabetes__model_metrics",
        "diabetes__production_model",
        "diabetes__deployment_gate",
    } <= steps
    assert step_pids and step_pids <= worker_pids, (step_pids, worker_pids)
    assert not run_pids & worker_pids
    assert any("in celery worker" in (e.message or "") for e in events)
    registry = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes")
    registry.load(registry.production().version)  # deployed by the worker, intact


@pytest.mark.slow
def test_an_unreachable_broker_fails_the_run_without_running_a_step(tmp_path, data_dir):
    home = tmp_path / "home"
    home.mkdir()
    run_yaml = tmp_path / "run.yaml"
    nothing_listens = "pyamqp://guest:guest@127.0.0.1:9//"
    run_yaml.write_text(f"execution: {{config: {{celery: {{broker: '{nothing_listens}'}}}}}}\n")
    run = subprocess.run(
        materialize_command(run_yaml),
        cwd=tmp_path, env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode != 0
    assert "Connection refused" in run.stdout + run.stderr
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [record] = instance.get_run_records()
        events = instance.all_logs(record.dagster_run.run_id)
    assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
    assert not [e for e in events if e.dagster_event_type == "STEP_START"]
    assert not (data_dir / "diabetes" / "storage").exists()
