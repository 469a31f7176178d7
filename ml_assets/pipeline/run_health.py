"""Runs whose process died (SIGKILL, out of memory, a lost machine) are marked failed.

Dagster's local run launcher cannot watch its run workers, so a killed run stays STARTED
and keeps its `training` pool slot: every later training step would wait for it forever.
The `dead_run_reaper` sensor finds such runs and fails them, which frees their slots.
"""

import time

import dagster as dg

GRACE_SECONDS = 30
REAPER_INTERVAL_SECONDS = 30


def run_process_alive(pid: int, started_at: float) -> bool:
    """Whether the process that started a run is still there (and is not a reused pid)."""
    import psutil

    try:
        return psutil.Process(pid).create_time() <= started_at + 1
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # someone else's process with that pid: assume alive


def reap_dead_runs(instance: dg.DagsterInstance, now: float | None = None) -> list[str]:
    """Mark STARTED runs whose process is gone as failed and free their pool slots."""
    if not isinstance(instance.run_launcher, dg.DefaultRunLauncher):
        return []  # pids mean something only for runs on this machine
    now = time.time() if now is None else now
    reaped = []
    started = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
    )
    for record in started:
        run_start = record.start_time
        if run_start is None or now - run_start < GRACE_SECONDS:
            continue
        events = instance.all_logs(record.dagster_run.run_id, of_type=dg.DagsterEventType.RUN_START)
        pid = events[0].dagster_event.pid if events and events[0].dagster_event else None
        if pid is None or run_process_alive(pid, run_start):
            continue
        instance.report_run_failed(
            record.dagster_run,
            f"the run's process (pid {pid}) is gone: killed or crashed; marked failed",
        )
        instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
        reaped.append(record.dagster_run.run_id)
    return reaped


@dg.sensor(
    name="dead_run_reaper",
    description="Every 30 s: marks failed the runs whose process has died, so that they"
    " release the training pool.",
    minimum_interval_seconds=REAPER_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def dead_run_reaper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Fails runs whose process died, so they release the training pool."""
    reaped = reap_dead_runs(context.instance)
    for run_id in reaped:
        context.log.warning(f"run {run_id} had no process any more: marked failed")
    return dg.SkipReason(f"{len(reaped)} dead run(s) marked failed")
