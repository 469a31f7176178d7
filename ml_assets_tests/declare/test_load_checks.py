"""What loading checks against the data does not depend on the file's row order: a table
exported sorted by its target loads as the same table shuffled does, for both tasks."""

import copy

import pytest

from harness.projects import bundled_attributes
from ml_assets.learn.reference import load_reference_table
from ml_assets_tests.conftest import CANCER, DIABETES
from ml_assets_tests.declare.test_component import load


@pytest.mark.parametrize("spec", [CANCER, DIABETES], ids=lambda spec: spec.name)
def test_a_table_sorted_by_its_target_loads(tmp_path, monkeypatch, spec):
    table = load_reference_table(spec).sort_values(spec.target, kind="stable")
    path = tmp_path / f"{spec.name}_sorted.csv"
    table.to_csv(path, index=False)
    attributes = copy.deepcopy(bundled_attributes(spec.name))
    attributes["reference"] = {**attributes["reference"], "path": str(path)}
    del attributes["reference"]["sklearn"]
    attributes["model"]["params"] = {}  # as new-model writes it

    loaded = load(tmp_path, monkeypatch, attributes)[spec.name]

    assert loaded.classes == spec.classes
    assert loaded.reference.path == path
