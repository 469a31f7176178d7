"""`make bench-new-model`: how long `ml-assets new-model` takes to infer a model's YAML from a
large export, against its target (10 s for 1 000 000 rows); writes
docs/new-model-performance.md.

The table is made here, shaped like a real flights export: an ISO timestamp, a flight number
and a tail number (identifiers, thousands of values), a carrier, numbers with gaps, and the
delay to predict. Reading the file is timed with the inference, as the command does both.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from harness.live import REPO
from ml_assets.declare.scaffold import declaration, render

TARGET_SECONDS = 10.0
TARGET_ROWS = 1_000_000


def flights(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    departure = pd.Timestamp("2013-01-01") + pd.to_timedelta(
        rng.integers(0, 365 * 24 * 60, rows), unit="min"
    )
    distance = rng.integers(80, 4000, rows).astype(float)
    distance[rng.choice(rows, rows // 100, replace=False)] = np.nan
    return pd.DataFrame(
        {
            "time_hour": departure.strftime("%Y-%m-%dT%H:%M:%S"),
            "flight": rng.integers(1, 8000, rows),
            "tailnum": rng.choice([f"N{n:04d}" for n in range(4000)], rows),
            "carrier": rng.choice(["UA", "AA", "B6", "DL", "EV", "MQ", "US", "WN"], rows),
            "origin": rng.choice(["EWR", "JFK", "LGA"], rows),
            "distance": distance,
            "air_time_pct": rng.uniform(0, 100, rows).round(1),
            "arr_delay": rng.normal(5, 40, rows).round(0),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=TARGET_ROWS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "new-model-performance.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ml_assets_bench-") as folder:
        source = Path(folder) / "flights.csv"
        flights(args.rows).to_csv(source, index=False)
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            text = render(declaration("flights", source, "arr_delay", root=Path(folder)))
            seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    met = "met" if args.rows < TARGET_ROWS or median <= TARGET_SECONDS else "not met"
    report = "\n".join(
        [
            "# `ml-assets new-model` on a large export",
            "",
            "Measured by `make bench-new-model` (bench/new_model.py): a generated flights-like",
            f"CSV of {args.rows:,} rows and 8 columns (an ISO timestamp, two identifiers, a",
            "tail number of 4 000 values, categories, numbers with gaps), read and inferred",
            f"{args.repeats} times.",
            "",
            "| rows | median | runs | target | |",
            "|---:|---:|---|---:|---|",
            (
                f"| {args.rows:,} | {median:.2f} s | {', '.join(f'{s:.2f}' for s in seconds)} s"
                f" | ≤ {TARGET_SECONDS:g} s at {TARGET_ROWS:,} rows | {met} |"
            ),
            "",
            "The YAML it wrote:",
            "",
            "```yaml",
            text.rstrip(),
            "```",
            "",
        ]
    )
    print(report)
    args.output.write_text(report)


if __name__ == "__main__":
    main()
