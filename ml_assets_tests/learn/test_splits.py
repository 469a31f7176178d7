import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from ml_assets.learn.splits import (
    HOLDOUT,
    TRAIN,
    hashed_split,
    id_numbers,
    reference_split,
    representative_rows,
    row_ids,
)
from ml_assets_tests.conftest import CANCER, DIABETES


def test_reference_split_is_the_reference_flow_split(reference):
    _, expected_holdout = train_test_split(reference, test_size=0.2, random_state=42)
    split = reference_split(DIABETES, reference)
    assert set(split[split == HOLDOUT].index) == set(expected_holdout.index)
    assert (split == TRAIN).sum() == 353


def test_row_ids_depend_on_values_only(reference):
    ids = row_ids(DIABETES, reference)
    assert ids.is_unique
    reversed_ids = row_ids(DIABETES, reference.iloc[::-1].reset_index(drop=True))
    assert list(reversed_ids) == list(ids)[::-1]
    as_text_then_back = reference.astype(str).astype(float)
    assert list(row_ids(DIABETES, as_text_then_back)) == list(ids)


def test_a_changed_value_changes_the_id(reference):
    changed = reference.head(2).copy()
    changed.loc[0, "target"] += 1
    assert row_ids(DIABETES, changed).iloc[0] != row_ids(DIABETES, reference.head(2)).iloc[0]
    assert row_ids(DIABETES, changed).iloc[1] == row_ids(DIABETES, reference.head(2)).iloc[1]


def test_hashed_split_is_stable_and_near_twenty_percent(reference):
    rng = np.random.default_rng(0)
    many = reference.sample(5000, replace=True, random_state=1).reset_index(drop=True)
    many["target"] = many["target"] + rng.normal(0, 1, len(many))
    ids = row_ids(DIABETES, many)
    split = hashed_split(DIABETES, ids)
    assert 0.17 < (split == HOLDOUT).mean() < 0.23
    # The same rows among others, in another order, keep their assignment.
    subset = ids.iloc[::7].iloc[::-1]
    assert (hashed_split(DIABETES, subset) == split.loc[subset.index]).all()


def test_id_numbers_are_the_ids_read_as_hexadecimal(reference):
    ids = row_ids(DIABETES, reference)
    # Slices and filters of an Arrow-backed column, and a column of Python strings.
    for part in (ids, ids.iloc[5:40], ids[ids.index % 3 == 1], ids.astype(object).iloc[::-1]):
        assert id_numbers(part).tolist() == [int(text, 16) for text in part]
    assert id_numbers(pd.Series([], dtype="str")).tolist() == []


@pytest.mark.parametrize("ids", [["abc"], ["0123456789abcdef", None], ["0123456789abcdefff"]])
def test_id_numbers_refuse_ids_that_are_not_sixteen_hex_digits(ids):
    with pytest.raises(ValueError, match="16 hex digits"):
        id_numbers(pd.Series(ids, dtype="str"))


def test_representative_rows_hold_every_class_of_a_table_sorted_by_its_target():
    labels = ["benign"] * 400 + ["malignant"] * 150 + ["rare"]  # as a sorted export
    table = pd.DataFrame({"target": labels, "x": range(len(labels))})
    spec = dataclasses.replace(CANCER, task=type(CANCER.task)(("benign", "malignant", "rare")))
    sample = representative_rows(spec, table, 100)
    assert len(sample) == 100
    assert set(sample["target"]) == {"benign", "malignant", "rare"}
    assert sample["x"].is_unique
    assert representative_rows(spec, table, 100)["x"].tolist() == sample["x"].tolist()  # seeded


def test_representative_rows_of_a_regression_span_a_sorted_target(reference):
    ordered = reference.sort_values(DIABETES.target, ignore_index=True)
    sample = representative_rows(DIABETES, ordered, 100)
    first_hundred = ordered[DIABETES.target].iloc[99]
    assert len(sample) == 100 and sample[DIABETES.target].max() > first_hundred
    assert representative_rows(DIABETES, ordered.head(80), 100).equals(ordered.head(80))
