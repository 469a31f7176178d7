"""The limit we measure against: the reference flow as one plain scikit-learn script.

It does the work of our graph without an orchestrator: load the bundled table and the landed
Parquet batches, clean them (numbers only, complete rows, the contract's plausible ranges, no
duplicate records), split (the reference rows 80/20 with random_state=42, new rows 80/20 by
a seeded draw), fit the pipeline the diabetes YAML declares (median imputation, then
standardisation of its ten number columns; then LinearRegression), evaluate on the reference holdout, save the
model with skops. It imports nothing from ml_assets: the contract's ranges come as JSON.

    python bench/plain_script.py --batches DIR --ranges ranges.json --model OUT.skops
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def load(batches: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    reference = load_diabetes(as_frame=True, scaled=False).frame
    files = sorted(batches.glob("*.parquet"))
    landed = pd.concat([pq.read_table(f).to_pandas() for f in files]) if files else None
    return reference, landed


def clean(table: pd.DataFrame, ranges: dict[str, list[float]]) -> pd.DataFrame:
    values = table[list(ranges)].apply(pd.to_numeric, errors="coerce").astype("float64")
    keep = values.notna().all(axis=1)
    for name, (low, high) in ranges.items():
        keep &= values[name].between(low, high)
    return values[keep].drop_duplicates()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=Path, required=True)
    parser.add_argument("--ranges", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    args = parser.parse_args()
    ranges = json.loads(args.ranges.read_text())
    features = [name for name in ranges if name != "target"]

    reference, landed = load(args.batches)
    reference = clean(reference, ranges)
    train, holdout = train_test_split(reference, test_size=0.2, random_state=42)
    if landed is not None:
        landed = clean(landed, ranges)
        landed_holdout = np.random.default_rng(42).random(len(landed)) < 0.2
        train = pd.concat([train, landed[~landed_holdout]]).drop_duplicates()

    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    prepare = ColumnTransformer([("numbers_1", numbers, features)])
    model = Pipeline([("prepare", prepare), ("regressor", LinearRegression())])
    model.fit(train[features], train["target"])
    predicted = model.predict(holdout[features])
    metrics = {
        "mse": mean_squared_error(holdout["target"], predicted),
        "mae": mean_absolute_error(holdout["target"], predicted),
        "r2": r2_score(holdout["target"], predicted),
        "training_rows": len(train),
    }
    args.model.write_bytes(sio.dumps(model))
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
