"""Faults: a full disk while archiving, a flaky read, SIGKILL in training and in promotion,
two runs at once. Nothing is lost, the registry stays consistent, the next run succeeds."""

import contextlib
import errno
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from harness.live import REPO, materialize_command
from ml_assets.pipeline.run_health import reap_dead_runs
from ml_assets.store.landing import ModelLanding
from ml_assets.store.registry import ModelRegistry
from ml_assets_tests.conftest import land
from ml_assets_tests.pipeline.test_automation import tick
from ml_assets_tests.test_end_to_end import keys, materialize

GUARDED_STEPS = {"diabetes__deployment_gate", "diabetes__production_model"}


def ingest(instance, key):
    return materialize(instance, selection=keys("raw_batches"), partition_key=key)


def test_a_full_disk_while_archiving_leaves_the_file_in_landing(
    instance, landing, reference, monkeypatch, capfd
):
    original = land(landing, "batch.csv", reference.head(30)).read_bytes()
    tick(instance, landing)
    real_move = ModelLanding._move

    def disk_full(self, source, folder):
        if folder.name == "archive":
            raise OSError(errno.ENOSPC, "No space left on device", str(folder))
        return real_move(self, source, folder)

    monkeypatch.setattr(ModelLanding, "_move", disk_full)
    failed = ingest(instance, "batch.csv")
    assert not failed.success
    restarts = [e for e in failed.all_events if e.event_type_value == "STEP_RESTARTED"]
    assert len(restarts) == 3  # the RetryPolicy tried again, three times
    assert (landing.landing / "batch.csv").read_bytes() == original
    assert landing.ledger().as_dict()["pending"] == 1
    logged = capfd.readouterr().err
    assert "batch.csv: archiving failed" in logged and "No space left on device" in logged

    monkeypatch.setattr(ModelLanding, "_move", real_move)  # space is back
    assert ingest(instance, "batch.csv").success
    assert (landing.archive_dir / "batch.csv").read_bytes() == original


def test_a_transient_read_error_is_retried(instance, landing, reference, monkeypatch):
    import ml_assets.store.landing as landing_module

    land(landing, "flaky.csv", reference.head(30))
    tick(instance, landing)
    real_read, calls = landing_module.read_table, []

    def flaky(path, name=None, columns=None):
        calls.append(name)
        if len(calls) == 1:
            raise OSError(errno.EIO, "Input/output error")
        return real_read(path, name, columns)

    monkeypatch.setattr(landing_module, "read_table", flaky)
    result = ingest(instance, "flaky.csv")
    assert result.success
    assert len(calls) == 2
    assert landing.whereabouts("flaky.csv") == "archived"


PROMOTER = textwrap.dedent(
    """
    import sys
    from ml_assets.declare.project import declared_models
    from ml_assets.learn.modeling import build_pipeline
    from ml_assets.learn.reference import load_reference_table
    from ml_assets.store.registry import ModelRegistry

    spec = declared_models()["diabetes"]
    reference = load_reference_table(spec)
    registry = ModelRegistry(data_dir=sys.argv[1]).for_model("diabetes")
    for seed in range(1000):
        params = {"n_estimators": 60, "random_state": seed}
        model = build_pipeline(spec, "gradient_boosting", params)
        model.fit(reference[spec.features], reference[spec.target])
        registry.promote(registry.register(model, card={"seed": seed}).version)
        print(seed, flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_during_promotion_leaves_production_on_a_complete_version(data_dir, reference):
    registry = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes")
    rng = np.random.default_rng(3)
    for _ in range(6):
        worker = subprocess.Popen(
            [sys.executable, "-c", PROMOTER, str(data_dir)], stdout=subprocess.PIPE, text=True
        )
        worker.stdout.readline()  # at least one promotion done, more under way
        time.sleep(float(rng.uniform(0.0, 0.6)))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        production = registry.production()
        assert production is not None
        registry.load(production.version)  # complete and intact: the sha256 matches
        history = registry.history()
        assert all(b["from_version"] == a["to_version"] for a, b in itertools.pairwise(history))
        if history[-1]["to_version"] != production.version:  # killed between switch and log
            assert registry.previous().version == history[-1]["to_version"]
    # The next promotion records a switch that a kill left unlogged, then its own.
    registry.promote(registry.previous().version)
    history = registry.history()
    assert all(b["from_version"] == a["to_version"] for a, b in itertools.pairwise(history))
    assert history[-1]["to_version"] == registry.production().version
    assert {v.version for v in registry.versions()} >= {h["to_version"] for h in history}


def instance_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME with the default dagster.yaml (the training pool limited to one),
    its storage created once, as `make dev` does before any run."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "config" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)):
        pass
    return home


def write_config(path: Path, model: str) -> Path:
    path.write_text(
        "execution: {config: {in_process: {}}}\n"
        f"ops: {{diabetes__candidate_model: {{config: {model}}}}}\n"
    )
    return path


@pytest.mark.slow
def test_sigkill_during_training_then_the_next_run_succeeds(tmp_path, data_dir, monkeypatch):
    home = instance_home(tmp_path)
    env = {**os.environ, "DAGSTER_HOME": str(home), "ML_ASSETS_DATA_DIR": str(data_dir)}
    slow = write_config(
        tmp_path / "slow.yaml", "{kind: gradient_boosting, params: {n_estimators: 50000}}"
    )
    log = (tmp_path / "killed.log").open("w")
    killed = subprocess.Popen(
        materialize_command(slow),
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while "diabetes__candidate_model - STEP_START" not in (tmp_path / "killed.log").read_text():
            assert time.time() < deadline and killed.poll() is None, "training never started"
            time.sleep(0.5)
        time.sleep(1)
    finally:  # killed here on purpose, and also when the test fails: never left running
        with contextlib.suppress(ProcessLookupError):  # it may have died on its own
            os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info("training").claimed_slots
        # What the dead_run_reaper sensor does under `make dev`, after its grace period:
        assert len(reap_dead_runs(instance, now=time.time() + 60)) == 1
        assert not instance.event_log_storage.get_concurrency_info("training").claimed_slots

    quick = write_config(tmp_path / "quick.yaml", "{kind: linear}")
    after = subprocess.run(
        materialize_command(quick),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert after.returncode == 0, after.stdout[-2000:] + after.stderr[-2000:]
    registry = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes")
    registry.load(registry.production().version)
    assert len(registry.versions()) == 1  # the killed run registered nothing


@pytest.mark.slow
def test_two_runs_at_once_both_finish_and_nothing_is_corrupted(tmp_path, data_dir, monkeypatch):
    home = instance_home(tmp_path)
    env = {**os.environ, "DAGSTER_HOME": str(home), "ML_ASSETS_DATA_DIR": str(data_dir)}
    configs = [
        write_config(tmp_path / "a.yaml", "{kind: gradient_boosting, params: {n_estimators: 400}}"),
        write_config(tmp_path / "b.yaml", "{kind: ridge}"),
    ]
    runs = [
        subprocess.Popen(
            materialize_command(config),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for config in configs
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        # Each run finishes: deployed, or stopped by the gate (the second candidate may be
        # worse than the first's), or by production_model's own guards when the other run
        # replaced the measured candidate or its gate evaluation meanwhile.
        failed_steps = set(re.findall(r" - (\w+) - STEP_FAILURE", output))
        assert run.returncode == 0 or failed_steps <= GUARDED_STEPS, output[-3000:]
        if (
            "diabetes__production_model" in failed_steps
        ):  # the gate or the candidate moved meanwhile
            assert "not deployed:" in output and "production is unchanged" in output
    registry = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes")
    assert len(registry.versions()) <= 2
    production = registry.production()  # both may have stood down; never a broken one
    if production is not None:
        registry.load(production.version)
    history = registry.history()
    assert all(b["from_version"] == a["to_version"] for a, b in itertools.pairwise(history))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info("training").slot_count == 1
