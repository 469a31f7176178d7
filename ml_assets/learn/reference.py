"""The reference table of a model: a CSV or Parquet file of the team's, or a table that ships
with scikit-learn, checked against the model's contract every time it is read."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ml_assets.learn.contract import validate
from ml_assets.learn.spec import ColumnSpec, ModelSpec, ReferenceSpec
from ml_assets.learn.splits import row_ids
from ml_assets.store.files import file_sha256
from ml_assets.store.tables import read_table

if TYPE_CHECKING:
    import pandas as pd


def _raw_units(loader: Callable) -> pd.DataFrame:
    return loader(scaled=False, as_frame=True).frame


def _named_classes(loader: Callable) -> pd.DataFrame:
    """The table with its target as the class names, not their codes."""
    bunch = loader(as_frame=True)
    return bunch.frame.assign(target=bunch.target_names[bunch.target.to_numpy()])


# name -> (loader name in sklearn.datasets, how its table is made)
BUNDLED_TABLES = {
    "diabetes": ("load_diabetes", _raw_units),
    "breast_cancer": ("load_breast_cancer", _named_classes),
    "iris": ("load_iris", _named_classes),
    "wine": ("load_wine", _named_classes),
}


def bundled_table(name: str) -> pd.DataFrame:
    """A table that ships with scikit-learn: diabetes in raw units, the classification tables
    with their classes by name (`malignant`, `benign`); the target column is `target`."""
    from sklearn import datasets

    loader_name, make = BUNDLED_TABLES[name]
    return make(getattr(datasets, loader_name))


def reference_fingerprint(reference: ReferenceSpec) -> str:
    """What the reference table is, by content: the sha256 of its file's bytes; for a table
    that ships with scikit-learn, of its name and scikit-learn's version."""
    if reference.path is not None:
        return file_sha256(reference.path)
    import sklearn

    shipped = f"sklearn:{reference.sklearn}:{sklearn.__version__}"
    return hashlib.sha256(shipped.encode()).hexdigest()


def read_reference(reference: ReferenceSpec, columns: list[str]) -> pd.DataFrame:
    """The reference table as it is stored, before the contract."""
    if reference.path is not None:
        table, _ = read_table(reference.path, columns=columns)
        return table
    return bundled_table(reference.sklearn)


def load_reference_table(spec: ModelSpec) -> pd.DataFrame:
    """The model's reference table, validated by its contract (each column's type, YAML order),
    without the rows that miss their target."""
    return reference_rows(spec)[0]


def reference_rows(spec: ModelSpec) -> tuple[pd.DataFrame, int]:
    """The reference table as `load_reference_table` gives it, and how many rows without a
    target it left out: such a row can neither train nor judge a model, so it is dropped
    before the contract and the split, as `table.dropna(subset=[target])` would."""
    raw, without_target = _labelled(spec, spec.column_names)
    return validate(spec, raw, source=spec.reference.source), without_target


def _labelled(spec: ModelSpec, columns: list[str]) -> tuple[pd.DataFrame, int]:
    """The stored table's rows that have a target, and how many did not."""
    raw = read_reference(spec.reference, columns)
    without_target = 0
    if spec.target in raw.columns:  # a missing target column is the contract's to name
        missing = raw[spec.target].isna()
        without_target = int(missing.sum())
        if without_target:
            raw = raw[~missing].reset_index(drop=True)
    return raw, without_target


def reference_columns(spec: ModelSpec, columns: tuple[ColumnSpec, ...]) -> pd.DataFrame:
    """Columns of the reference table that the declaration may no longer have, typed as the
    given column specs say (as a model version took them), indexed by each reference row's id
    under today's declaration; ValueError (a ContractViolation) when the table no longer
    holds them so."""
    raw, _ = _labelled(spec, [*spec.column_names, *(column.name for column in columns)])
    ids = row_ids(spec, validate(spec, raw, source=spec.reference.source))
    as_taken = dataclasses.replace(spec, columns=columns)  # each nullable, as the version saw it
    typed = validate(as_taken, raw, source=spec.reference.source)
    return typed.set_axis(ids.to_numpy()).loc[lambda table: ~table.index.duplicated()]
