"""`make bench`: our graph against the plain scikit-learn script, side by side.

At each size (the 442 reference rows, then 100 000 and 1 000 000 rows landed as simulated
Parquet batches and ingested), it alternates the plain script with our whole graph launched
the way users launch it: `dagster job execute` of the diabetes model's training job, then a run
launched through `dagster dev`'s GraphQL API. It also times loading the definitions against
`import dagster`, ingesting a 1 000-row batch with and without 1 000 000 rows stored, and a
file landing until a new production version under `dagster dev`. Dagster's floor, the same
graph with no work in it (bench/empty_graph.py), is launched both ways in turn with ours.
Medians of --repeats runs; the report is printed and written to docs/performance.md.

    python -m bench.run [--sizes 442 100000 1000000] [--repeats 5] [--output docs/performance.md]
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psutil

from bench.report import MANY_MODELS, Measurement, ingestion_label, publish, render_report
from harness.live import BIN, REPO, LiveDagster, materialize_command, run_to_end, wait_for

BATCH_ROWS = 100_000  # rows per simulated batch when landing a size
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
IMPROVING_BATCH = {"rows": 200, "seed": 10}  # lowers the reference-holdout MSE
SENSOR_LOOP_SECONDS = 5  # how often Dagster's sensor daemon evaluates the sensors
MODEL = "diabetes"  # the bench measures the reference flow's model
BUNDLED_MODELS = ("diabetes", "breast_cancer")
EMPTY_COMPONENT = "bench.empty_component.EmptyModel"
TRAINING_JOB = f"{MODEL}_training_job"  # the empty graph's job has the same name


def diabetes():
    """The diabetes model's spec, as the definitions load it."""
    from ml_assets.declare.project import declared_models

    return declared_models()[MODEL]


@dataclass
class Workspace:
    """One size's instance, data folder and copies of its batches for the plain script."""

    root: Path
    rows: int

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def plain_batches(self) -> Path:
        return self.root / "plain_batches"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DAGSTER_HOME": str(self.home), "ML_ASSETS_DATA_DIR": str(self.data)}


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Run a command to its end: its wall time in seconds and its peak memory in MiB."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{output.decode(errors='replace')[-4000:]}")
    return elapsed, usage.ru_maxrss / 1024


def land_batches(workspace: Workspace) -> None:
    """Land simulated batches up to the size, ingest them, keep their bytes for the script."""
    from ml_assets.learn.reference import load_reference_table
    from ml_assets.learn.simulate import simulate_batch
    from ml_assets.store.landing import LandingZone

    workspace.home.mkdir(parents=True)
    shutil.copy(REPO / "config" / "dagster.yaml", workspace.home / "dagster.yaml")
    workspace.plain_batches.mkdir(parents=True)
    spec = diabetes()
    landing = LandingZone(data_dir=str(workspace.data)).for_model(MODEL)
    reference = load_reference_table(spec)
    remaining, seed = workspace.rows - len(reference), 0
    while remaining > 0:
        rows = min(BATCH_ROWS, remaining)
        name = f"batch-{seed:04d}.parquet"
        batch = simulate_batch(spec, reference, rows=rows, seed=seed)
        batch.to_parquet(landing.landing / name, engine="pyarrow", index=False)
        shutil.copy(landing.landing / name, workspace.plain_batches / name)
        remaining, seed = remaining - rows, seed + 1
    if landing.pending_files():
        ingest_landed(workspace)


def ingest_landed(workspace: Workspace) -> list[float]:
    """Ingest what is in landing/ as the landing sensor would: the raw_batches step times."""
    import dagster as dg

    from ml_assets.definitions import defs
    from ml_assets.store.landing import LandingZone

    os.environ["ML_ASSETS_DATA_DIR"] = str(workspace.data)
    zone = LandingZone(data_dir=str(workspace.data))
    landing = zone.for_model(MODEL)
    landing_sensor = defs.resolve_sensor_def(f"{MODEL}_landing_sensor")
    settled = time.time() - 2 * landing.settle_seconds  # the harness wrote them whole
    for name in landing.pending_files():
        os.utime(landing.landing / name, (settled, settled))
    step_seconds = []
    with dg.DagsterInstance.from_config(str(workspace.home)) as instance:
        with dg.build_sensor_context(instance=instance, resources={"landing": zone}) as context:
            result = landing_sensor(context)
        assert result.run_requests, f"the landing sensor took no file from {landing.landing}"
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        for request in result.run_requests:
            run = defs.resolve_job_def(f"{MODEL}_ingestion_job").execute_in_process(
                run_config=QUIET, instance=instance, partition_key=request.partition_key,
                tags=request.tags,
            )  # fmt: skip
            assert run.success, request.partition_key
            step_seconds.append(step_duration(instance, run.run_id, f"{MODEL}__raw_batches"))
    return step_seconds


def step_duration(instance, run_id: str, step_key: str) -> float:
    """Seconds from a step's start to its success, from the run's stored events."""
    times = {
        entry.dagster_event_type.value: entry.timestamp
        for entry in instance.all_logs(run_id)
        if entry.step_key == step_key
        and entry.dagster_event_type is not None
        and entry.dagster_event_type.value in ("STEP_START", "STEP_SUCCESS")
    }
    return times["STEP_SUCCESS"] - times["STEP_START"]


def plain_command(workspace: Workspace, ranges: Path) -> list[str]:
    return [
        sys.executable, str(REPO / "bench" / "plain_script.py"),
        "--batches", str(workspace.plain_batches), "--ranges", str(ranges),
        "--model", str(workspace.root / "plain_model.skops"),
    ]  # fmt: skip


def alternate(workspace, ranges, repeats, graph, floor=None) -> tuple[list, list, list]:
    """Plain script, graph and Dagster's floor (when given) in turn, after one untimed round:
    the floor, measured beside the runs it bounds, shares their machine's mood."""
    plain = lambda: timed(plain_command(workspace, ranges), workspace.env, workspace.root)
    contenders = [plain, graph, *([floor] if floor else [])]
    rounds = [[run() for run in contenders] for _ in range(repeats + 1)][1:]
    plain_runs, graph_runs = [r[0] for r in rounds], [r[1] for r in rounds]
    return plain_runs, graph_runs, [r[2][0] for r in rounds] if floor else []


def through_dagster_dev(workspace: Workspace, ranges: Path, repeats: int):
    """The same alternation with the graph, and Dagster's floor, launched as `training_job`
    through `dagster dev`'s GraphQL API, each on a `dagster dev` of its own: both are up at
    once, so that their runs take turns in the same minutes (each beside the other's idle
    webserver and daemon)."""
    ours = LiveDagster(workspace.root)
    floor_root = workspace.root / "empty_graph_dev"
    floor_root.mkdir(exist_ok=True)
    floor_workspace = floor_root / "workspace.yaml"
    module = {"module_name": "bench.empty_graph", "location_name": "empty_graph"}
    floor_workspace.write_text(  # JSON is YAML
        json.dumps({"load_from": [{"python_module": {**module, "working_directory": str(REPO)}}]})
    )
    floor = LiveDagster(floor_root, floor_workspace, location="empty_graph")
    try:
        for live in (ours, floor):
            live.start()
        time.sleep(15)  # sensors that react to the ingested batches launch their runs first
        return alternate(workspace, ranges, repeats, dev_launcher(ours), dev_launcher(floor))
    finally:
        for live in (ours, floor):
            live.stop()


def dev_launcher(live):
    """Launches training_job on a live `dagster dev`: its (seconds to the run's end, peak MiB)."""
    import dagster as dg
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=live.port)

    def launch() -> tuple[float, float]:
        live.wait_until_idle()
        launched_at = time.time()
        run_id = client.submit_job_execution(TRAINING_JOB)
        peak = watch_run_memory(live.process.pid, run_id, client, launched_at)
        assert client.get_run_status(run_id).value == "SUCCESS", run_id
        # The end as the run recorded it: how often the harness polls does not count.
        with dg.DagsterInstance.from_config(str(live.home)) as instance:
            return instance.get_run_record_by_id(run_id).end_time - launched_at, peak

    return launch


def watch_run_memory(dev_pid: int, run_id: str, client, launched_at: float) -> float:
    """Poll a run to its end; the peak memory (MiB) of the processes started for it.

    Four polls a second: each is a GraphQL query the webserver answers on the same two cores
    as the run, so polling faster would slow the run it measures.
    """
    peak = 0.0
    deadline = time.time() + 900
    while client.get_run_status(run_id).value not in ("SUCCESS", "FAILURE", "CANCELED"):
        for process in psutil.Process(dev_pid).children(recursive=True):
            try:
                if process.create_time() >= launched_at - 0.5:
                    peak = max(peak, high_water_mark(process.pid))
            except (psutil.Error, OSError):
                continue
        if time.time() > deadline:
            raise TimeoutError(run_id)
        time.sleep(0.25)
    return peak


def high_water_mark(pid: int) -> float:
    """The peak resident memory of a live process, in MiB (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def definitions_load(root: Path, repeats: int) -> dict[str, list[float]]:
    """`import dagster`, then loading definitions (report.LOADS), each in a fresh interpreter,
    in turn: the two bundled models, 20 generated ones, and for each the same YAML files on
    Dagster's floor (bench/empty_component.py).

    The import is timed inside the interpreter: a reload pays it, not the interpreter's start
    or its exit. The first, untimed round writes each model's checked.json.
    """
    from bench.empty_component import FLOOR_DEFINITIONS
    from harness.projects import BUNDLED, SHARED, make_project, project_env

    bundled = {model: (BUNDLED / model / "defs.yaml").read_text() for model in BUNDLED_MODELS}
    many = {}
    for index in range(MANY_MODELS):
        model = BUNDLED_MODELS[index % len(BUNDLED_MODELS)]
        many[f"{model}_{index:02d}"] = bundled[model].replace(
            f"name: {model}\n", f"name: {model}_{index:02d}\n", 1
        )

    def floor_of(models: dict[str, str]) -> dict[str, str]:
        return {
            name: text.replace("type: ml_assets.TabularModel", f"type: {EMPTY_COMPONENT}")
            for name, text in models.items()
        }

    projects = {"many": many, "bundled_floor": floor_of(bundled), "many_floor": floor_of(many)}
    loads = {"dagster": ("dagster", REPO, None), "bundled": ("ml_assets.definitions", REPO, None)}
    for key, models in projects.items():
        package = f"bench_{key}"
        definitions = FLOOR_DEFINITIONS if key.endswith("_floor") else SHARED
        project = make_project(root / "loads" / key, models, package, definitions)
        env = project_env(project)
        env["PYTHONPATH"] += os.pathsep + str(REPO)  # the floor's component is in bench/
        loads[key] = (f"{package}.definitions", project, env)
    runs = {key: [] for key in loads}
    for round_ in range(repeats + 1):
        for key, (module, cwd, env) in loads.items():
            seconds = import_seconds(module, cwd, env)
            if round_:
                runs[key].append(seconds)
    return runs


def empty_graph_launcher(root: Path):
    """Runs the same graph with no work in it (bench/empty_graph.py) as `make materialize`
    runs ours, on an instance of its own: its (seconds, peak MiB)."""
    home = root / "empty_graph_home"
    home.mkdir()
    shutil.copy(REPO / "config" / "dagster.yaml", home / "dagster.yaml")
    command = [
        str(BIN / "dagster"), "job", "execute", "-m", "bench.empty_graph", "-j", TRAINING_JOB,
    ]  # fmt: skip
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return lambda: timed(command, env, REPO)


def import_seconds(module: str, cwd: Path = REPO, env: dict | None = None) -> float:
    """Seconds a fresh interpreter takes to import a module."""
    code = f"import time; s = time.perf_counter(); import {module}; print(time.perf_counter() - s)"
    finished = subprocess.run(
        [sys.executable, "-c", code], env={**(env or os.environ), "PYTHONWARNINGS": "ignore"},
        cwd=cwd, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return float(finished.stdout.split()[-1])


def ingestion_cost(workspace: Workspace, rows: int, repeats: int) -> list[float]:
    """The raw_batches step's seconds for new batches of `rows` rows, one at a time."""
    from ml_assets.learn.reference import load_reference_table
    from ml_assets.learn.simulate import simulate_batch

    spec = diabetes()
    reference = load_reference_table(spec)
    seconds = []
    for attempt in range(repeats):
        batch = simulate_batch(spec, reference, rows=rows, seed=10_000 + attempt)
        path = workspace.data / MODEL / "landing" / f"probe-{rows}-{attempt}.parquet"
        batch.to_parquet(path, engine="pyarrow", index=False)
        seconds.extend(ingest_landed(workspace))
    return seconds


def landed_to_production(root: Path, repeats: int) -> list[float]:
    """Seconds from a file landing to a new production version, each on a fresh `dagster dev`.

    Files land at any moment of the sensor daemon's 5 s loop, and how long one waits depends
    on that moment. Landed as soon as each fresh `dagster dev` is idle, every file would meet
    the loop at about the same moment: attempt i waits i/repeats of a loop first, so that the
    attempts spread over it.
    """
    from dagster_graphql import DagsterGraphQLClient

    from ml_assets.learn.reference import load_reference_table
    from ml_assets.learn.simulate import simulate_batch
    from ml_assets.store.files import write_atomically
    from ml_assets.store.registry import ModelRegistry

    spec = diabetes()
    batch = simulate_batch(spec, load_reference_table(spec), **IMPROVING_BATCH).to_csv(index=False)
    seconds = []
    for attempt in range(repeats):
        live = LiveDagster(root / f"latency-{attempt}")
        live.start()
        try:
            client = DagsterGraphQLClient("127.0.0.1", port_number=live.port)
            assert run_to_end(client, client.submit_job_execution(TRAINING_JOB)) == "SUCCESS"
            live.wait_until_idle()
            registry = ModelRegistry(data_dir=str(live.data)).for_model(MODEL)
            before = registry.production().version
            time.sleep(SENSOR_LOOP_SECONDS * attempt / repeats)
            landed_at = time.perf_counter()
            write_atomically(live.data / MODEL / "landing" / "new-batch.csv", batch.encode())
            wait_for(
                lambda: registry.production().version != before,  # noqa: B023
                timeout=300,
                interval=0.1,
                what="a new production version",
            )
            seconds.append(time.perf_counter() - landed_at)
        finally:
            live.stop()
    return seconds


def contract_ranges(spec) -> dict[str, list[float]]:
    """The plain script's cleaning rules: each column's plausible range, from the contract."""
    return {column.name: [column.min, column.max] for column in spec.columns}


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    packages = ("dagster", "scikit-learn", "pandas", "pyarrow", "skops", "pandera")
    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "system": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "packages": ", ".join(f"{name} {metadata.version(name)}" for name in packages),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[442, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "performance.md")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="ml_assets_bench-"))
    ranges = root / "ranges.json"
    ranges.write_text(json.dumps(contract_ranges(diabetes())))
    started = time.time()
    try:
        workspaces, measurements = [], []
        empty_graph = empty_graph_launcher(root)
        for rows in args.sizes:
            workspace = Workspace(root / f"rows-{rows}", rows)
            land_batches(workspace)
            workspaces.append(workspace)

            def cli(workspace=workspace) -> tuple[float, float]:
                return timed(materialize_command(), workspace.env, workspace.root)

            plain, graph, floor = alternate(workspace, ranges, args.repeats, cli, empty_graph)
            measurements.append(Measurement(rows, "dagster job execute", plain, graph, floor))
            print(measurements[-1].line(), flush=True)
            plain, graph, floor = through_dagster_dev(workspace, ranges, args.repeats)
            measurements.append(Measurement(rows, "dagster dev GraphQL API", plain, graph, floor))
            print(measurements[-1].line(), flush=True)

        loads = definitions_load(root, args.repeats)
        smallest, largest = workspaces[0], workspaces[-1]
        # One size only (a quick look): the growth target compares that size with itself.
        stored_sizes = [smallest] if largest is smallest else [smallest, largest]
        ingestion = {
            ingestion_label(1000, stored.rows): ingestion_cost(stored, 1000, args.repeats)
            for stored in stored_sizes
        }
        ingestion[ingestion_label(10_000, largest.rows)] = ingestion_cost(
            largest, 10_000, args.repeats
        )
        latency = landed_to_production(root, args.repeats)
        report = render_report(
            machine(), args.repeats, measurements, loads, ingestion, latency,
            minutes=(time.time() - started) / 60,
        )  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    publish(report, args.output)


if __name__ == "__main__":
    main()
