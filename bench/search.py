"""`make bench-search`: a declared search against every kind with its defaults, on the
reference holdout; and the search's wall time against its budget. Writes
docs/search-performance.md.

Two tables: a generated 50 000-row regression with numbers and categories (an interaction
and a threshold the linear kinds cannot see), and scikit-learn's diabetes. Each default kind
is fitted on the training rows and scored on the reference holdout; the search (the README
example's kinds, `budget_seconds`) chooses on the training rows alone and its choice is scored
on the same holdout. The models are built by our pipeline, as `candidate_model` builds them.
The search is over the README example's kinds: a random forest of 400 trees takes longer
than a minute on 40 000 rows, fold by fold.
"""

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from harness.live import REPO
from ml_assets import TabularModel
from ml_assets.declare.project import declared_models
from ml_assets.learn.modeling import build_pipeline, model_input
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.search import search, shown_params
from ml_assets.learn.spec import SearchSpec
from ml_assets.learn.splits import HOLDOUT, TRAIN, reference_split

BUDGET_SECONDS = 60.0
SEARCHED_KINDS = ("hist_gradient_boosting", "lightgbm", "ridge")  # as the README's example
ROWS = 50_000


def shop_sales(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice([f"r{n:02d}" for n in range(30)], rows)
    channel = rng.choice(["web", "store", "phone", "partner"], rows)
    price = rng.gamma(3.0, 10.0, rows).round(2)
    visits = rng.integers(0, 60, rows).astype(float)
    discount = rng.uniform(0, 0.5, rows).round(3)
    region_effect = dict(zip(sorted(set(region)), rng.normal(0, 20, 30), strict=True))
    sales = (
        40
        + np.vectorize(region_effect.get)(region)
        + 1.5 * visits * (channel == "web")
        + np.where(price > 35, -25.0, 10.0)
        + 60 * discount * (visits > 20)
        + rng.normal(0, 10, rows)
    )
    return pd.DataFrame(
        {"region": region, "channel": channel, "price": price, "visits": visits,
         "discount": discount, "sales": sales.round(2)}
    )  # fmt: skip


def sales_model(path: Path):
    return TabularModel(
        name="sales",
        task="regression",
        reference={"path": str(path)},
        columns={
            "region": {"type": "category"},
            "channel": {"type": "category"},
            "price": {"type": "number", "min": 0},
            "visits": {"type": "number", "min": 0},
            "discount": {"type": "number", "min": 0, "max": 1},
            "sales": {"type": "number"},
        },
        target="sales",
        estimator={"kind": "ridge"},
        gate={"metric": "rmse", "threshold": 1e9},
    ).spec


def compare(spec, budget: float) -> list[str]:
    """One row per default kind and one for the search: holdout RMSE, seconds."""
    reference = load_reference_table(spec)
    split = reference_split(spec, reference)
    train, holdout = reference[split == TRAIN], reference[split == HOLDOUT]
    rows, target = model_input(spec, train), train[spec.target]
    metric = spec.task.metrics["rmse"]

    def holdout_rmse(kind: str, params: dict) -> tuple[float, float]:
        started = time.perf_counter()
        model = build_pipeline(spec, kind, params).fit(rows, target)
        seconds = time.perf_counter() - started
        return spec.task.evaluate(model, model_input(spec, holdout), holdout[spec.target])[
            metric.name
        ], seconds

    lines, defaults = [], []
    for kind in spec.task.kinds:
        value, seconds = holdout_rmse(kind, {})
        defaults.append(value)
        lines.append(f"| {kind} (defaults) | {value:.3f} | fit {seconds:.1f} s | |")
    searched = dataclasses.replace(
        spec, search=SearchSpec(kinds=SEARCHED_KINDS, budget_seconds=budget)
    )
    found = search(searched, rows, target, budget)
    value, seconds = holdout_rmse(found.kind, found.params)
    held = "held" if found.seconds <= 1.1 * budget else "not held"
    beats = "beats" if value < min(defaults) else "does not beat"
    params = shown_params(found.params)
    lines.append(
        f"| **search**: {found.kind} ({params}), {len(found.trials)} trials | {value:.3f} |"
        f" search {found.seconds:.1f} s of {budget:g} s ({held}), then fit {seconds:.1f} s |"
        f" {beats} the best default |"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=BUDGET_SECONDS)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "search-performance.md")
    args = parser.parse_args()
    sections = []
    with tempfile.TemporaryDirectory(prefix="ml_assets_bench-") as folder:
        path = Path(folder) / "sales.csv"
        shop_sales(args.rows).to_csv(path, index=False)
        tables = (
            (f"a generated regression of {args.rows:,} rows", sales_model(path)),
            ("scikit-learn's diabetes (442 rows)", declared_models()["diabetes"]),
        )
        for title, spec in tables:
            lines = compare(spec, args.budget)
            print(title, *lines, sep="\n", flush=True)
            sections += [
                f"## {title}", "",
                "| model | holdout RMSE | time | |", "|---|---:|---|---|", *lines, "",
            ]  # fmt: skip
    args.output.write_text(
        "\n".join(
            [
                "# The declared search against the default kinds",
                "",
                "Measured by `make bench-search` (bench/search.py) on this 2-core machine: each",
                "kind with its defaults, then a search over "
                + ", ".join(SEARCHED_KINDS)
                + " with a",
                f"{args.budget:g} s budget (5 folds of the training rows), all scored on the",
                "reference holdout the gate uses. Targets: the search beats the best default",
                "kind's holdout RMSE on the large table; the budget is held within 10 %.",
                "",
                *sections,
            ]
        )
    )
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
