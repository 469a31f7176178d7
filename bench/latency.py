"""`make bench-latency`: how soon a landed file reaches its decision under `dagster dev`, and
where the seconds go; and `make materialize` of the bundled model against the plain script.

One `dagster dev` as `make dev` runs it, on empty homes: a first training run, then --files
files landed one at a time (each after the previous one's runs ended, at a different moment
of the sensor daemon's loop). For each: the seconds from landing to the decision (the
registry's switch to a new production version, or the refusal), the runs it caused, and the
anatomy of its run from Dagster's own events (the sensor's wait, the queue, the run's start,
each step). Then `dagster job execute` of the training job, as `make materialize` runs it,
in turn with `bench/plain_script.py` at 442 rows. Writes docs/latency-performance.md.

    python -m bench.latency [--files 5] [--repeats 5] [--output docs/latency-performance.md]
"""

import argparse
import json
import shutil
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.report import publish
from bench.run import (
    MODEL,
    SENSOR_LOOP_SECONDS,
    TRAINING_JOB,
    Workspace,
    alternate,
    contract_ranges,
    diabetes,
    machine,
    timed,
)
from harness.live import REPO, LiveDagster, materialize_command, run_to_end, wait_for

LATENCY_TARGET_SECONDS = 8.0
MATERIALIZE_RATIO_TARGET = 2.5
RUN_EVENTS = ("RUN_STARTING", "RUN_START", "RUN_SUCCESS", "RUN_FAILURE")


def run_anatomy(instance, run_id: str, landed_at: float) -> dict[str, float]:
    """Seconds of each phase of a landed file's run, from its stored events: the sensor's
    wait, the queue, the run's start (a process and the code loaded), each step."""
    record = instance.get_run_record_by_id(run_id)
    created = record.create_timestamp.timestamp()
    marks, steps = {}, {}
    for entry in instance.all_logs(run_id):
        kind = entry.dagster_event_type.name if entry.dagster_event_type else None
        if kind in RUN_EVENTS:
            marks.setdefault(kind, entry.timestamp)
        elif kind == "STEP_START":
            steps[entry.step_key] = [entry.timestamp, entry.timestamp]
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED") and entry.step_key in steps:
            steps[entry.step_key][1] = entry.timestamp
    phases = {
        "sensor": created - landed_at,
        "queue": marks["RUN_STARTING"] - created,  # the queue's daemon launches it
        "run start": marks["RUN_START"] - marks["RUN_STARTING"],
    }
    for key, (start, end) in steps.items():
        phases[key.removeprefix(f"{MODEL}__")] = end - start
    last_step = max((end for _, end in steps.values()), default=marks["RUN_START"])
    phases["run end"] = marks.get("RUN_SUCCESS", marks.get("RUN_FAILURE", last_step)) - last_step
    return phases


def land_files(root: Path, files: int) -> list[dict]:
    """Lands `files` improving batches one at a time on one live `dagster dev`."""
    import dagster as dg
    from dagster_graphql import DagsterGraphQLClient

    from ml_assets.learn.reference import load_reference_table
    from ml_assets.learn.simulate import simulate_batch
    from ml_assets.store.files import write_atomically
    from ml_assets.store.registry import ModelRegistry

    spec = diabetes()
    reference = load_reference_table(spec)
    live = LiveDagster(root / "latency")
    live.start()
    landings = []
    try:
        client = DagsterGraphQLClient("127.0.0.1", port_number=live.port)
        assert run_to_end(client, client.submit_job_execution(TRAINING_JOB)) == "SUCCESS"
        registry = ModelRegistry(data_dir=str(live.data)).for_model(MODEL)
        with dg.DagsterInstance.from_config(str(live.home)) as instance:
            for attempt in range(files):
                live.wait_until_idle()
                before = registry.production().version
                time.sleep(SENSOR_LOOP_SECONDS * attempt / files)  # spread over the loop
                batch = simulate_batch(spec, reference, rows=200, seed=100 + attempt)
                name = f"landed-{attempt}.csv"
                landed_at = time.time()
                write_atomically(
                    live.data / MODEL / "landing" / name, batch.to_csv(index=False).encode()
                )
                landings.append(landing_outcome(live, instance, registry, name, before, landed_at))
                print(
                    f"{name}: {landings[-1]['seconds']:.1f} s, {landings[-1]['decision']}",
                    flush=True,
                )
    finally:
        live.stop()
    return landings


def landing_outcome(live, instance, registry, name: str, before: str, landed_at: float) -> dict:
    """When the landed file's decision came, what it was, and the runs it caused."""
    import dagster as dg

    def decided():
        runs = instance.get_run_records(
            filters=dg.RunsFilter(tags={"ml_assets/landed_as": name}), limit=1
        )
        if not runs or not runs[0].dagster_run.is_finished:
            return None
        return runs[0]

    record = wait_for(decided, timeout=300, interval=0.1, what=f"{name}'s run")
    live.wait_until_idle()
    run = instance.get_run_by_id(record.dagster_run.run_id)
    decision = run.tags.get("ml_assets/decision", "no decision")
    if registry.production().version != before:
        switched = datetime.fromisoformat(registry.history()[-1]["at"]).timestamp()
    else:
        switched = record.end_time
    caused = instance.get_run_records(
        filters=dg.RunsFilter(
            tags={"ml_assets/model": MODEL},
            created_after=datetime.fromtimestamp(landed_at - 1).astimezone(),
        )
    )
    return {
        "file": name,
        "seconds": switched - landed_at,
        "decision": decision,
        "runs": sorted(r.dagster_run.job_name for r in caused),
        "anatomy": run_anatomy(instance, run.run_id, landed_at),
    }


def materialize_against_plain(root: Path, repeats: int) -> tuple[list, list]:
    """`make materialize`'s command and the plain script at 442 rows, in turn."""
    workspace = Workspace(root / "materialize", 442)
    workspace.home.mkdir(parents=True)
    workspace.plain_batches.mkdir(parents=True)
    shutil.copy(REPO / "config" / "dagster.yaml", workspace.home / "dagster.yaml")
    ranges = root / "ranges.json"
    ranges.write_text(json.dumps(contract_ranges(diabetes())))
    plain, graph, _ = alternate(
        workspace, ranges, repeats, lambda: timed(materialize_command(), workspace.env, REPO)
    )
    return [seconds for seconds, _ in plain], [seconds for seconds, _ in graph]


def render(landings: list[dict], plain: list[float], graph: list[float], minutes: float) -> str:
    """docs/latency-performance.md."""
    median = statistics.median
    latency = median(landing["seconds"] for landing in landings)
    phases = list(dict.fromkeys(p for landing in landings for p in landing["anatomy"]))
    ratio = median(graph) / median(plain)
    lines = [
        "# A landed file to its decision",
        "",
        (
            "Written by `make bench-latency` (`python -m bench.latency`); do not edit by hand. "
            f"One `dagster dev` as `make dev` runs it, on empty homes; {len(landings)} files of "
            "200 simulated diabetes rows landed one at a time, each at a different moment of the "
            f"sensor daemon's {SENSOR_LOOP_SECONDS} s loop. The whole benchmark took "
            f"{minutes:.0f} minutes."
        ),
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in machine().items()),
        "",
        "## Each landing",
        "",
        (
            "Seconds from the file's arrival in `landing/` to the registry's switch to a new "
            "production version (or, for a refusal, its run's end); the runs it caused."
        ),
        "",
        "| file | seconds | decision | runs |",
        "|---|---:|---|---|",
        *(
            f"| {landing['file']} | {landing['seconds']:.1f} | {landing['decision']} "
            f"| {', '.join(landing['runs'])} |"
            for landing in landings
        ),
        "",
        "## Where the seconds go",
        "",
        (
            "From Dagster's events of each file's run: the sensor's wait (landing to the run's "
            "creation), the queue (to its launch), the run's start (a process, the code "
            "loaded), each step, and the run's end (to the switch)."
        ),
        "",
        "| phase | " + " | ".join(landing["file"] for landing in landings) + " | median |",
        "|---|" + "---:|" * (len(landings) + 1),
        *(
            f"| {phase} | "
            + " | ".join(f"{landing['anatomy'].get(phase, 0):.2f}" for landing in landings)
            + f" | {median(landing['anatomy'].get(phase, 0) for landing in landings):.2f} |"
            for phase in phases
        ),
        "",
        "## `make materialize` against the plain script",
        "",
        (
            f"Medians of {len(graph)} runs in turn, after one untimed round: `dagster job execute "
            f"-j {TRAINING_JOB}` (a fresh process, the definitions loaded, the run) and "
            "`bench/plain_script.py` (load, clean, split, fit, evaluate, save with skops) at 442 "
            "rows."
        ),
        "",
        "| plain script | make materialize | ratio |",
        "|---:|---:|---:|",
        f"| {median(plain):.2f} s | {median(graph):.2f} s | {ratio:.1f}× |",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---:|---|",
        (
            f"| a landed file → a new production version, median ≤ {LATENCY_TARGET_SECONDS:.0f} s "
            f"| {latency:.1f} s | {'met' if latency <= LATENCY_TARGET_SECONDS else 'not met'} |"
        ),
        (
            f"| one run per landed file | {max(len(landing['runs']) for landing in landings)} "
            f"| {'met' if all(len(landing['runs']) == 1 for landing in landings) else 'not met'} |"
        ),
        (
            f"| `make materialize` ≤ {MATERIALIZE_RATIO_TARGET}× the plain script at 442 rows "
            f"| {ratio:.1f}× | {'met' if ratio <= MATERIALIZE_RATIO_TARGET else 'not met'} |"
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "latency-performance.md")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ml_assets_latency-"))
    started = time.time()
    try:
        landings = land_files(root, args.files)
        plain, graph = materialize_against_plain(root, args.repeats)
        report = render(landings, plain, graph, minutes=(time.time() - started) / 60)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    publish(report, args.output)


if __name__ == "__main__":
    main()
