"""Simulated batches: new rows drawn from a model's reference table, any column type."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from ml_assets.learn.spec import ColumnSpec, ModelSpec
from ml_assets.learn.splits import TRAIN, reference_split

JITTER = 0.05  # noise as a fraction of each column's standard deviation
DISCRETE_BELOW = 70  # numeric columns with fewer distinct reference values keep them as they are
MAX_DECIMALS = 6


def decimals_of(values: pd.Series) -> int:
    """How many decimals a column's values carry (at most six)."""
    numbers = values.dropna().astype(float).to_numpy()
    for decimals in range(MAX_DECIMALS):
        if np.allclose(numbers.round(decimals), numbers, rtol=0, atol=1e-9):
            return decimals
    return MAX_DECIMALS


def _numbers(column: ColumnSpec, sampled: pd.Series, reference: pd.Series, rng, rows: int):
    values = sampled.astype("float64")
    source = reference.astype("float64")
    if source.nunique() >= DISCRETE_BELOW:
        noise = rng.normal(0.0, JITTER * source.std(), size=rows)
        values = (values + noise).clip(source.min(), source.max())
    decimals = 0 if column.type == "integer" else column.decimals
    values = values.round(decimals_of(source) if decimals is None else decimals)
    return values.astype("Int64") if column.type == "integer" else values


def simulate_batch(
    spec: ModelSpec, reference: pd.DataFrame, rows: int, seed: int | None = None
) -> pd.DataFrame:
    """A smoothed bootstrap of the reference training rows: resample rows, add small noise.

    Resampling whole rows keeps the relations between columns (and with the target), and the
    share of missing values; the noise makes the rows new. Categories, booleans and discrete
    numbers keep their sampled values, so their distributions stay those of the reference.
    Only training rows are drawn, so no near-copy of a holdout row can reach training.
    Numbers stay inside the reference range and are rounded like it (or to `decimals`).
    """
    if rows < 1:
        raise ValueError("a batch needs at least one row")
    rng = np.random.default_rng(seed)
    training = reference[spec.column_names][reference_split(spec, reference) == TRAIN]
    batch = training.iloc[rng.integers(0, len(training), size=rows)].reset_index(drop=True)
    for column in spec.columns:
        if column.numeric:
            batch[column.name] = _numbers(
                column, batch[column.name], reference[column.name], rng, rows
            )
    return batch


def batch_file_name(seed: int | None, suffix: str = ".csv") -> str:
    """A unique, sortable name for a simulated batch."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"batch-{stamp}{'' if seed is None else f'-seed{seed}'}{suffix}"
