"""`make bench-threads`: the same search on an idle machine and beside one competing process,
with our thread rule (`ML_ASSETS_THREADS` unset: half the cores) and with the libraries'
default (a thread per core). Writes docs/threads-performance.md.

The work is fixed: each kind's defaults cross-validated in 5 folds, as the first round of every
declared search (`learn/search.py`, with no parameter to search, so it ends after that round),
over hist_gradient_boosting, lightgbm and ridge on the generated regression of
`bench/search.py` at the sizes of the tables that failed (1 168, 4 658 and 43 000 training
rows). The competing process is one CPU-bound Python loop, started and stopped by its pid.
Target: with our rule, busy ≤ 1.5 × idle.
"""

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.search import sales_model, shop_sales
from harness.live import REPO
from ml_assets.learn.modeling import model_input
from ml_assets.learn.search import search
from ml_assets.learn.spec import SearchSpec
from ml_assets.store.settings import DATA_DIR_VARIABLE, THREADS_VARIABLE

KINDS = ("hist_gradient_boosting", "lightgbm", "ridge")
SIZES = (1_168, 4_658, 43_000)
TARGET_RATIO = 1.5


def searched_spec(path: Path):
    """bench/search.py's sales model, searching nothing but each kind's defaults."""
    space = {kind: {} for kind in KINDS}  # nothing to search: the defaults' round alone
    return dataclasses.replace(sales_model(path), search=SearchSpec(KINDS, 1e9, space=space))


def defaults_round(spec, table) -> float:
    started = time.perf_counter()
    found = search(spec, model_input(spec, table), table[spec.target], 1e9)
    assert all(trial.status == "finished" for trial in found.trials), found.trials
    return time.perf_counter() - started


def measure(spec, table, threads: str | None, busy: bool, repeats: int) -> float:
    """The median seconds of the defaults' round, with ML_ASSETS_THREADS as given."""
    if threads is None:
        os.environ.pop(THREADS_VARIABLE, None)
    else:
        os.environ[THREADS_VARIABLE] = threads
    competitor = None
    if busy:
        competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
    try:
        return statistics.median(defaults_round(spec, table) for _ in range(repeats))
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "threads-performance.md")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    rows = []
    with tempfile.TemporaryDirectory(prefix="ml_assets_bench-") as folder:
        os.environ[DATA_DIR_VARIABLE] = folder  # the load checks' memory, thrown away
        for size in args.sizes:
            path = Path(folder) / f"sales_{size}.csv"
            shop_sales(size).to_csv(path, index=False)
            spec = searched_spec(path)
            table = shop_sales(size)
            seconds = {
                (label, busy): measure(spec, table, threads, busy, args.repeats)
                for label, threads in (("rule", None), ("default", str(cores)))
                for busy in (False, True)
            }
            rule = seconds[("rule", True)] / seconds[("rule", False)]
            default = seconds[("default", True)] / seconds[("default", False)]
            met = "met" if rule <= TARGET_RATIO else "not met"
            rows.append(
                f"| {size:,} | {seconds[('rule', False)]:.2f} s | {seconds[('rule', True)]:.2f} s"
                f" | **{rule:.2f}×** ({met}) | {seconds[('default', False)]:.2f} s"
                f" | {seconds[('default', True)]:.2f} s | {default:.2f}× |"
            )
            print(rows[-1], flush=True)
    threads = max(1, cores // 2)
    summary = (
        f"Measured by `make bench-threads` (bench/threads.py) on this machine ({cores} cores):"
        f" the first round of a search (the defaults of {', '.join(KINDS)}, 5 folds each) on a"
        " generated regression, idle and beside one CPU-bound process, median of"
        f" {args.repeats}. Our rule gives each estimator {threads} thread(s) here (half the"
        f" cores); the libraries' default is {cores} (one per core). Target: with our rule,"
        f" busy ≤ {TARGET_RATIO}× idle."
    )
    header = (
        "| training rows | rule, idle | rule, busy | busy / idle | default, idle"
        " | default, busy | busy / idle |"
    )
    lines = ["# Threads on a busy machine", "", summary, "", header, "|---:" * 7 + "|", *rows]
    args.output.write_text("\n".join(lines) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
