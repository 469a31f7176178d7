"""Simulated batches: new rows drawn from the reference data's distribution, in raw units."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from ml_assets.contract import COLUMNS, column_rules
from ml_assets.splits import TRAIN, reference_split

JITTER = 0.05  # noise as a fraction of each column's standard deviation
DISCRETE_BELOW = 70  # columns with fewer distinct reference values keep them as they are


def simulate_batch(reference: pd.DataFrame, rows: int, seed: int | None = None) -> pd.DataFrame:
    """A smoothed bootstrap of the reference training rows: resample rows, add small noise.

    Resampling whole rows keeps the relations between columns (and with the target); the
    noise makes the rows new. Discrete columns (sex, age, s3, s4, s6) keep their sampled
    values, so their distributions stay those of the reference. Only training rows are
    drawn, so no near-copy of a holdout row can reach training. Values stay inside the
    reference range and are rounded like it.
    """
    if rows < 1:
        raise ValueError("a batch needs at least one row")
    rng = np.random.default_rng(seed)
    training = reference[COLUMNS][reference_split(reference) == TRAIN]
    picked = training.iloc[rng.integers(0, len(training), size=rows)]
    batch = picked.reset_index(drop=True).astype("float64")
    for rule in column_rules():
        column = reference[rule.name]
        if column.nunique() >= DISCRETE_BELOW:
            noise = rng.normal(0.0, JITTER * column.std(), size=rows)
            batch[rule.name] = (batch[rule.name] + noise).clip(column.min(), column.max())
        batch[rule.name] = batch[rule.name].round(rule.decimals)
    return batch


def batch_file_name(seed: int | None, suffix: str = ".csv") -> str:
    """A unique, sortable name for a simulated batch."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"batch-{stamp}{'' if seed is None else f'-seed{seed}'}{suffix}"
