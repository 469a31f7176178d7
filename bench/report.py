"""The benchmark's report: medians, ratios to the plain script, and the targets, as Markdown."""

import statistics
from dataclasses import dataclass, field
from pathlib import Path

GRAPH_RATIO_SMALL = 2.5  # whole graph at 442 rows, against the plain script
GRAPH_RATIO_LARGE = 1.25  # at 1 000 000 rows
MEMORY_RATIO_LARGE = 1.5
DEFINITIONS_OVERHEAD_SECONDS = 0.3  # loading the two bundled models beyond `import dagster`
MANY_MODELS = 20
MANY_MODELS_OVERHEAD_SECONDS = 0.6  # loading 20 declared models beyond `import dagster`
# What definitions_load measures: label in the report, and the key of its runs.
LOADS = {
    "dagster": "`import dagster`",
    "bundled": "the definitions with the two bundled models (`import ml_assets.definitions`)",
    "bundled_floor": "… the same two YAML files on Dagster's floor (`bench/empty_component.py`)",
    "many": f"{MANY_MODELS} models declared (generated from the bundled two)",
    "many_floor": f"… the same {MANY_MODELS} YAML files on Dagster's floor",
}
INGESTION_GROWTH = 1.5  # a 1 000-row batch into 1M stored rows, against into 442
LATENCY_SECONDS = 20.0


@dataclass
class Measurement:
    """One size and one way of launching: (seconds, peak MiB) per run, plain and graph."""

    rows: int
    launched_by: str
    plain: list[tuple[float, float]]
    graph: list[tuple[float, float]]
    floor: list[float] = field(default_factory=list)  # Dagster's floor, run in turn with them

    @property
    def plain_seconds(self) -> float:
        return statistics.median(seconds for seconds, _ in self.plain)

    @property
    def graph_seconds(self) -> float:
        return statistics.median(seconds for seconds, _ in self.graph)

    @property
    def floor_seconds(self) -> float:
        return statistics.median(self.floor)

    @property
    def plain_memory(self) -> float:
        return max(memory for _, memory in self.plain)

    @property
    def graph_memory(self) -> float:
        return max(memory for _, memory in self.graph)

    @property
    def time_ratio(self) -> float:
        return self.graph_seconds / self.plain_seconds

    @property
    def memory_ratio(self) -> float:
        return self.graph_memory / self.plain_memory

    def line(self) -> str:
        return (
            f"| {self.rows:,} | {self.launched_by} | {self.plain_seconds:.2f} s "
            f"| {self.graph_seconds:.2f} s | **{self.time_ratio:.2f}×** "
            f"| {self.plain_memory:.0f} MiB | {self.graph_memory:.0f} MiB "
            f"| {self.memory_ratio:.2f}× |"
        )


def ingestion_label(rows: int, stored: int) -> str:
    """How the report names one ingestion measurement."""
    return f"{rows:,} rows into {stored:,} stored"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _graph_targets(measurements, smallest: int, largest: int) -> list[str]:
    """The ratio targets, judged for each way the graph was launched."""
    lines = []
    for m in (m for m in measurements if m.rows == smallest):
        lines.append(
            f"| whole graph at {smallest:,} rows ({m.launched_by}) ≤ {GRAPH_RATIO_SMALL}× the "
            f"plain script | {m.time_ratio:.2f}× | {_met(m.time_ratio <= GRAPH_RATIO_SMALL)} |"
        )
    for m in (m for m in measurements if m.rows == largest > smallest):
        lines.append(
            f"| whole graph at {largest:,} rows ({m.launched_by}) ≤ {GRAPH_RATIO_LARGE}× the "
            f"plain script's time | {m.time_ratio:.2f}× "
            f"| {_met(m.time_ratio <= GRAPH_RATIO_LARGE)} |"
        )
        lines.append(
            f"| … and ≤ {MEMORY_RATIO_LARGE}× its peak memory | {m.memory_ratio:.2f}× "
            f"| {_met(m.memory_ratio <= MEMORY_RATIO_LARGE)} |"
        )
    return lines


def _floor_lines(measurements) -> list[str]:
    """Dagster's floor at each size and launch path it was measured, and the best ratio it
    leaves reachable there."""
    rows = [
        f"| {m.rows:,} | {m.launched_by} | {m.floor_seconds:.2f} s | {m.plain_seconds:.2f} s "
        f"| **{(m.floor_seconds + m.plain_seconds) / m.plain_seconds:.2f}×** |"
        for m in measurements
        if m.floor
    ]
    if not rows:
        return []
    return [
        "## Dagster's floor",
        "",
        (
            "The same graph with no work in it (`bench/empty_graph.py`: the same assets, inputs, "
            "checks and pool, values passed in memory), launched the same way and on an instance "
            "configured the same, in turn with the runs above: what Dagster itself costs for a "
            "graph of this shape. The floor plus the plain script is the best a graph launched "
            "that way can reach without doing less work than the script."
        ),
        "",
        "| rows | launched by | Dagster's floor | plain script | best reachable ratio |",
        "|---:|---|---:|---:|---:|",
        *rows,
        "",
    ]


def _load_targets(loads: dict[str, float]) -> list[str]:
    """The two loading targets, each beside what Dagster's floor takes for the same files."""
    bare, lines = loads["dagster"], []
    for key, limit, what in (
        ("bundled", DEFINITIONS_OVERHEAD_SECONDS, "the two bundled models"),
        ("many", MANY_MODELS_OVERHEAD_SECONDS, f"{MANY_MODELS} models"),
    ):
        if key not in loads:
            continue
        floor = loads.get(f"{key}_floor")
        beside = "" if floor is None else f" (Dagster's floor {floor - bare:+.2f} s)"
        over = loads[key] - bare
        lines.append(
            f"| loading the definitions with {what} ≤ {limit} s more than `import dagster` "
            f"| {over:+.2f} s{beside} | {_met(over <= limit)} |"
        )
    return lines


def render_report(machine, repeats, measurements, definitions, ingestion, latency, minutes):
    """docs/performance.md: what was measured, on what, and against which targets.

    `definitions` holds runs of the LOADS, by key."""
    median = statistics.median
    loads = {key: median(runs) for key, runs in definitions.items()}
    ingest = {label: median(runs) for label, runs in ingestion.items()}
    smallest, largest = min(m.rows for m in measurements), max(m.rows for m in measurements)
    small_ingest = ingest[ingestion_label(1000, smallest)]
    large_ingest = ingest[ingestion_label(1000, largest)]

    lines = [
        "# Performance",
        "",
        (
            "Written by `make bench` (`python -m bench.run`); do not edit by hand. "
            f"Medians of {repeats} runs after one untimed run of each; the plain script and the "
            "graph run in turn, on the same files. Peak memory is the largest resident set of "
            f"the process that did the work. The whole benchmark took {minutes:.0f} minutes."
        ),
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in machine.items()),
        "",
        "## The whole graph against the plain script",
        "",
        (
            "The plain script (`bench/plain_script.py`) loads, cleans, splits, fits, evaluates and "
            "saves the model with skops, with no orchestrator. The graph is the diabetes model's "
            "`diabetes_training_job` (reference_data to production_model, with every check), "
            "launched by `dagster job execute` as `make materialize` does, and through "
            "`dagster dev`'s GraphQL API (launch to the run's success, through the run queue)."
        ),
        "",
        (
            "| rows | graph launched by | plain script | graph | ratio | plain peak | graph peak "
            "| memory ratio |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|",
        *(m.line() for m in measurements),
        "",
        *_floor_lines(measurements),
        "## Around the runs",
        "",
        "| what | median |",
        "|---|---:|",
        *(
            f"| {label}, in a fresh interpreter (what a reload pays) | {loads[key]:.2f} s |"
            for key, label in LOADS.items()
            if key in loads
        ),
        *(
            f"| ingesting {label} (the raw_batches step) | {s:.3f} s |"
            for label, s in ingest.items()
        ),
        (
            "| a file landed → a new production version under `dagster dev` (landed across the "
            f"sensor daemon's loop: {min(latency):.1f}–{max(latency):.1f} s) "
            f"| {median(latency):.1f} s |"
        ),
        "",
        (
            "Where a landed file's seconds go, run by run and step by step, and `make materialize` "
            "against the plain script: [latency-performance.md](latency-performance.md) "
            "(`make bench-latency`)."
        ),
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---:|---|",
        *_graph_targets(measurements, smallest, largest),
        *_load_targets(loads),
        (
            f"| ingesting 1,000 rows: not growing with the rows stored (≤ {INGESTION_GROWTH}×) "
            f"| {large_ingest / small_ingest:.2f}× "
            f"| {_met(large_ingest / small_ingest <= INGESTION_GROWTH)} |"
        ),
        (
            f"| file landed → new production version ≤ {LATENCY_SECONDS:.0f} s "
            f"| {median(latency):.1f} s | {_met(median(latency) <= LATENCY_SECONDS)} |"
        ),
        "",
    ]
    return "\n".join(lines)


def publish(report: str, output: Path) -> None:
    """Prints a bench's report and writes it to its page in docs/."""
    print(report)
    output.write_text(report)
    print(f"written to {output}")
