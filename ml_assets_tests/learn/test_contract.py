"""The diabetes model's data contract, compiled from its YAML; the contract of other column
types (integers, categories, booleans, missing values) is in test_generic_contract."""

import numpy as np
import pandas as pd
import pytest

from ml_assets.learn.contract import ContractViolation, validate
from ml_assets.learn.reference import load_reference_table
from ml_assets.pipeline.metadata import table_schema
from ml_assets_tests.conftest import DIABETES

COLUMNS = DIABETES.column_names


def test_reference_table_is_the_raw_diabetes_table():
    from sklearn.datasets import load_diabetes

    expected = load_diabetes(scaled=False, as_frame=True).frame
    table = load_reference_table(DIABETES)
    assert list(table.columns) == COLUMNS
    assert table.shape == (442, 11)
    np.testing.assert_array_equal(table.to_numpy(), expected[COLUMNS].to_numpy())


def test_reordered_and_extra_columns_are_normalised(reference):
    shuffled = reference.head(5)[COLUMNS[::-1]].assign(comment="x")
    valid = validate(DIABETES, shuffled, source="a.csv")
    assert list(valid.columns) == COLUMNS
    assert (valid.dtypes == "float64").all()


def test_numeric_strings_are_coerced(reference):
    as_text = reference.head(3).astype(str)
    assert validate(DIABETES, as_text, source="a.csv").equals(reference.head(3))


@pytest.mark.parametrize(
    ("column", "value", "check_word"),
    [
        ("bmi", "abc", "coerce"),
        ("age", 300, "less_than_or_equal_to"),
        ("bmi", -5, "greater_than_or_equal_to"),
        ("bp", np.nan, "not_nullable"),
        ("s5", np.inf, "less_than_or_equal_to"),
        ("sex", 3, "isin"),
    ],
)
def test_a_bad_value_names_the_file_column_and_row(reference, column, value, check_word):
    table = reference.head(10).astype(object)
    table.loc[6, column] = value
    with pytest.raises(ContractViolation) as caught:
        validate(DIABETES, table, source="batch-7.csv")
    message = str(caught.value)
    assert "batch-7.csv" in message
    assert f"column '{column}'" in message
    assert check_word in message
    assert "rows [7]" in message  # 1-based record number of index 6
    assert caught.value.problems[0]["rows"] == [7]


def test_missing_column_is_named(reference):
    with pytest.raises(ContractViolation, match=r"column 's6': column is missing"):
        validate(DIABETES, reference.drop(columns=["s6"]), source="b.csv")


def test_header_only_is_refused(reference):
    with pytest.raises(ContractViolation, match="no data rows"):
        validate(DIABETES, reference.head(0), source="empty.csv")


def test_the_schema_covers_every_column_with_its_rules():
    assert all(column.min < column.max for column in DIABETES.columns)
    schema = table_schema(DIABETES, {"row_id": ("string", "id")})
    assert [c.name for c in schema.columns] == [*COLUMNS, "row_id"]
    [bmi] = [c for c in schema.columns if c.name == "bmi"]
    assert bmi.type == "float64" and "from 10 to 80" in bmi.description
    assert bmi.constraints.nullable is False


def test_reference_lies_inside_the_plausible_ranges(reference):
    for column in DIABETES.columns:
        assert reference[column.name].between(column.min, column.max).all(), column.name
    assert isinstance(reference, pd.DataFrame)
