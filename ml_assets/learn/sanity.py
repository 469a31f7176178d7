"""What a data scientist would warn about a model and its reference table before training
it: a gate threshold that a constant answer already meets, a feature that alone predicts the
target (probably a leak), an identifier taken for a feature.

Measured once when the YAML loads (the results are remembered with the other load checks),
on the reference split: constant answers and one-feature probes fitted on at most ten
thousand training rows, judged on the reference holdout.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ml_assets.learn.gate_statistics import constant_answer
from ml_assets.learn.modeling import input_columns, model_input
from ml_assets.learn.spec import ColumnSpec, ModelSpec
from ml_assets.learn.splits import TRAIN, reference_split, representative_rows

if TYPE_CHECKING:
    import pandas as pd

PROBE_ROWS = 10_000  # training rows each probe is fitted on
LEAK_SCORE = 0.99  # one feature alone this good (R², balanced accuracy) is no honest feature
MIN_ROWS_FOR_DISTINCT_IDS = 50  # fewer rows say little about how distinct a column is
DISTINCT_ID_SHARE = 0.95  # text this distinct is an identifier (names, codes), not a category


def identifier_reason(values: pd.Series) -> str | None:
    """Why a column looks like an identifier rather than a feature, or None: its name (`id`,
    `order_id`, `invoice_no`, `PassengerId`), increasing whole numbers (a row number), or
    text almost every value of which is distinct (names, codes)."""
    name = str(values.name)
    if re.search(r"(^|[_\s.-])(id|no)$", name.lower()) or re.search(r"[a-z](Id|ID)$", name):
        return "by its name"
    present = values.dropna()
    if len(present) < MIN_ROWS_FOR_DISTINCT_IDS:
        return None
    numbers = numbers_of(present)
    if numbers is not None:
        whole = bool((numbers % 1 == 0).all())
        if whole and numbers.is_monotonic_increasing and numbers.is_unique:
            return "a row number: increasing whole numbers"
        return None
    if present.nunique() >= DISTINCT_ID_SHARE * len(present):
        return "almost every value distinct"
    return None


def numbers_of(present: pd.Series) -> pd.Series | None:
    """A column's (present) values as float64, or None when one is not a number.

    Text is cast by Arrow at once (`pd.to_numeric` takes seconds for a million strings); what
    Arrow refuses is judged on the distinct values, and only a column of numbers Arrow cannot
    read (" 5 ") is converted one value at a time.
    """
    import pandas as pd

    if pd.api.types.is_bool_dtype(present):
        return None
    try:
        return present.astype("float64")
    except (ValueError, TypeError):
        pass
    if pd.to_numeric(pd.Series(present.unique()), errors="coerce").isna().any():
        return None
    return pd.to_numeric(present, errors="coerce")


def baseline_score(spec: ModelSpec, training: pd.DataFrame, holdout: pd.DataFrame) -> float | None:
    """The gate metric of the task's constant answer (the training mean, or the classes'
    shares), fitted on the training rows, on the holdout rows."""
    constant = constant_answer(spec, training)
    rows, target = model_input(spec, holdout), holdout[spec.target]
    return spec.task.evaluate(constant, rows, target)[spec.gate.metric.name]


def leaking_features(
    spec: ModelSpec, training: pd.DataFrame, holdout: pd.DataFrame
) -> list[tuple[str, float]]:
    """The features that alone predict the target almost perfectly on the holdout rows, with
    their score (the task's probe metric)."""
    train_input, holdout_input = model_input(spec, training), model_input(spec, holdout)
    leaks = []
    for column in spec.feature_columns:
        columns = input_columns(column)
        fitted_on, judged_on = _probe_input(column, train_input[columns], holdout_input[columns])
        probe = spec.task.probe().fit(fitted_on, training[spec.target])
        score = spec.task.evaluate(probe, judged_on, holdout[spec.target])[spec.task.probe_metric]
        if score is not None and score >= LEAK_SCORE:
            leaks.append((column.name, score))
    return leaks


def _probe_input(column: ColumnSpec, training: pd.DataFrame, holdout: pd.DataFrame):
    """Numbers as they are (trees take NaN); categories as the codes of the training values,
    -1 for a value the training rows never had."""
    import pandas as pd

    if column.numeric or column.type == "datetime":
        return training, holdout
    known = pd.Index(training[column.name].dropna().unique())
    return (
        pd.DataFrame({column.name: known.get_indexer(training[column.name])}),
        pd.DataFrame({column.name: known.get_indexer(holdout[column.name])}),
    )


def data_warnings(spec: ModelSpec, reference: pd.DataFrame) -> tuple[float | None, list[str]]:
    """The constant answer's gate metric, and what is suspicious about the features."""
    split = reference_split(spec, reference)
    training = representative_rows(spec, reference[split == TRAIN], PROBE_ROWS)
    holdout = reference[split != TRAIN]
    said = [
        f"{name!r} alone predicts {spec.target!r} with {spec.task.probe_metric} {score:.3f} on"
        " the reference holdout: probably a leak (known only with the target); leave it out"
        " of the columns, or declare it `role: id` to keep it beside the data"
        for name, score in leaking_features(spec, training, holdout)
    ]
    for column in spec.feature_columns:
        reason = identifier_reason(reference[column.name])
        if reason is not None and column.type != "datetime":
            said.append(
                f"{column.name!r} looks like an identifier ({reason}) but is a feature: declare"
                " it `role: id` to keep it out of the model"
            )
    return baseline_score(spec, training, holdout), said
