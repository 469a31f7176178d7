"""The reference table as a team exports it: rows without a target are left out and counted,
and the split is the one scikit-learn gives the table without them."""

import copy

import dagster as dg
import numpy as np
from sklearn.model_selection import train_test_split

from harness.projects import bundled_attributes
from ml_assets.learn.reference import load_reference_table, reference_rows
from ml_assets.learn.splits import HOLDOUT, reference_split
from ml_assets.pipeline.ingestion import ingestion_assets
from ml_assets_tests.conftest import DIABETES
from ml_assets_tests.declare.test_component import load

MISSING = [3, 10, 50, 441]


def diabetes_without_some_targets(tmp_path, monkeypatch):
    """The diabetes model declared on a CSV whose target is blank on four rows."""
    table = load_reference_table(DIABETES).astype({DIABETES.target: "float64"})
    table.loc[MISSING, DIABETES.target] = np.nan
    path = tmp_path / "diabetes_gaps.csv"
    table.to_csv(path, index=False)
    attributes = copy.deepcopy(bundled_attributes("diabetes"))
    attributes["reference"] = {"path": str(path), "test_size": 0.2, "random_state": 42}
    return load(tmp_path, monkeypatch, attributes)["diabetes"], table


def test_rows_without_a_target_are_left_out_and_counted(tmp_path, monkeypatch):
    spec, exported = diabetes_without_some_targets(tmp_path, monkeypatch)
    table, without_target = reference_rows(spec)
    assert without_target == len(MISSING)
    assert len(table) == 442 - len(MISSING)
    assert table[spec.target].notna().all()
    expected = exported.dropna(subset=[spec.target]).reset_index(drop=True)
    np.testing.assert_allclose(table[spec.features].to_numpy(), expected[spec.features].to_numpy())


def test_the_split_is_scikit_learns_of_the_table_without_them(tmp_path, monkeypatch):
    spec, exported = diabetes_without_some_targets(tmp_path, monkeypatch)
    complete = exported.dropna(subset=[spec.target]).reset_index(drop=True)
    _, holdout = train_test_split(complete, test_size=0.2, random_state=42)
    split = reference_split(spec, load_reference_table(spec))
    assert set(split[split == HOLDOUT].index) == set(holdout.index)


def test_reference_data_counts_them_on_its_materialization(tmp_path, monkeypatch):
    spec, _ = diabetes_without_some_targets(tmp_path, monkeypatch)
    with dg.build_asset_context() as context:
        [output] = list(ingestion_assets(spec)[0](context))
    assert output.metadata["rows_without_target"].value == len(MISSING)
    assert output.metadata["dagster/row_count"].value == 442 - len(MISSING)
