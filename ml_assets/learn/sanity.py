"""What a data scientist would warn about a model and its reference table before training
it: a gate threshold that a constant answer already meets, a feature that alone predicts the
target, or a few features that together do (probably a leak), an identifier taken for a
feature.

Measured once when the YAML loads (the results are remembered with the other load checks),
on the reference split: constant answers, one-feature trees and linear models of up to three
features, fitted on at most ten thousand training rows, judged on the reference holdout.
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
MAX_LEAKING_SET = 3  # features a linear model is given together, chosen one at a time
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


def leaking_sets(
    spec: ModelSpec, training: pd.DataFrame, holdout: pd.DataFrame, alone: set[str]
) -> list[tuple[tuple[str, ...], float]]:
    """Sets of up to three numeric features (datetime parts count as their feature) that a
    linear model of them alone predicts the target with almost perfectly (R², or for a
    classification balanced accuracy of the class scored highest), with that score.

    Chosen one at a time (forward selection): the best feature, then the one that adds the
    most to it, then a third; a sum, a difference or a change of units of features is found
    this way (a tree of one feature cannot see a sum). Features that leak alone (`alone`) are
    left out, so that what they hide is found too. Least squares with an intercept, missing
    values as the training median.
    """
    import numpy as np

    candidates = [
        column
        for column in spec.feature_columns
        if (column.numeric or column.type == "datetime") and column.name not in alone
    ]
    if len(candidates) < 2:
        return []
    train_input, holdout_input = model_input(spec, training), model_input(spec, holdout)
    medians = train_input.median(numeric_only=True)
    blocks = {
        column.name: (
            train_input[input_columns(column)].fillna(medians).to_numpy(dtype="float64"),
            holdout_input[input_columns(column)].fillna(medians).to_numpy(dtype="float64"),
        )
        for column in candidates
    }
    answer = _linear_answer(spec, training[spec.target], holdout[spec.target])
    chosen: list[str] = []
    for _ in range(min(MAX_LEAKING_SET, len(blocks))):
        scored = []
        for name in blocks:
            if name in chosen:
                continue
            names = [*chosen, name]
            fit = np.hstack([blocks[n][0] for n in names])
            judge = np.hstack([blocks[n][1] for n in names])
            scored.append((answer(fit, judge), name))
        score, best = max(scored, key=lambda entry: np.nan_to_num(entry[0], nan=-np.inf))
        chosen.append(best)
        if score >= LEAK_SCORE:
            return [(tuple(chosen), float(score))]
    return []


def _linear_answer(spec: ModelSpec, training_target: pd.Series, holdout_target: pd.Series):
    """A function (training matrix, holdout matrix) -> the probe metric on the holdout of a
    least-squares fit: R² for a number; for classes, balanced accuracy of the class whose
    one-hot column the fit scores highest."""
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score, r2_score

    def least_squares(fit: np.ndarray, judge: np.ndarray, targets: np.ndarray) -> np.ndarray:
        ones = np.ones((len(fit), 1))
        coefficients, *_ = np.linalg.lstsq(np.hstack([fit, ones]), targets, rcond=None)
        return np.hstack([judge, np.ones((len(judge), 1))]) @ coefficients

    if not spec.task.predicts_classes:
        targets = training_target.to_numpy(dtype="float64")
        return lambda fit, judge: r2_score(holdout_target, least_squares(fit, judge, targets))
    classes = np.asarray(spec.classes, dtype=object)
    one_hot = (training_target.astype(str).to_numpy()[:, None] == classes[None, :]).astype(float)
    actual = holdout_target.astype(str).to_numpy()
    return lambda fit, judge: balanced_accuracy_score(
        actual, classes[least_squares(fit, judge, one_hot).argmax(axis=1)]
    )


def data_warnings(spec: ModelSpec, reference: pd.DataFrame) -> tuple[float | None, list[str]]:
    """The constant answer's gate metric, and what is suspicious about the features."""
    split = reference_split(spec, reference)
    training = representative_rows(spec, reference[split == TRAIN], PROBE_ROWS)
    holdout = reference[split != TRAIN]
    alone = leaking_features(spec, training, holdout)
    said = [
        f"{name!r} alone predicts {spec.target!r} with {spec.task.probe_metric} {score:.3f} on"
        " the reference holdout: probably a leak (known only with the target); leave it out"
        " of the columns, or declare it `role: id` to keep it beside the data"
        for name, score in alone
    ]
    for names, score in leaking_sets(spec, training, holdout, {name for name, _ in alone}):
        who = (
            f"{names[0]!r} alone predicts"
            if len(names) == 1
            else f"{_listed(names)} together predict"
        )
        said.append(
            f"{who} {spec.target!r} with {spec.task.probe_metric} {score:.3f} on the reference"
            " holdout (a linear model of them alone): probably a leak (the target computed from"
            " them, or they from it); leave them out of the columns, or declare them `role: id`"
            " to keep them beside the data"
        )
    for column in spec.feature_columns:
        reason = identifier_reason(reference[column.name])
        if reason is not None and column.type != "datetime":
            said.append(
                f"{column.name!r} looks like an identifier ({reason}) but is a feature: declare"
                " it `role: id` to keep it out of the model"
            )
    return baseline_score(spec, training, holdout), said


def _listed(names: tuple[str, ...]) -> str:
    """`'a' and 'b'`, `'a', 'b' and 'c'`."""
    quoted = [repr(name) for name in names]
    return ", ".join(quoted[:-1]) + f" and {quoted[-1]}"
