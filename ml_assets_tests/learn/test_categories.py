"""Category columns with many values: `max_categories` (default 50) and `min_frequency` make
rarer values share one "infrequent" column, `encoding: target` uses scikit-learn's
TargetEncoder; each pipeline is the one the README states, rebuilt here with scikit-learn."""

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder

from ml_assets.declare.component import TabularModel
from ml_assets.learn.modeling import build_pipeline, model_input
from ml_assets.learn.reference import load_reference_table
from ml_assets.store.registry import ModelRegistry


def rentals_table(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Rents by city (120 cities, a long tail), plan and size."""
    rng = np.random.default_rng(seed)
    cities = np.array([f"city_{rank:03d}" for rank in range(120)], dtype=object)
    weights = 1.0 / np.arange(1, 121)
    city = rng.choice(cities, rows, p=weights / weights.sum())
    plan = rng.choice(["basic", "plus", "premium"], rows)
    size = rng.uniform(20, 120, rows).round(1)
    city_effect = {name: effect for name, effect in zip(cities, rng.normal(0, 200, 120))}
    rent = (
        10 * size
        + np.array([city_effect[c] for c in city])
        + np.select([plan == "plus", plan == "premium"], [100, 250], 0)
        + rng.normal(0, 50, rows)
    )
    return pd.DataFrame({"city": city, "plan": plan, "size": size, "rent": rent.round(2)})


def rentals(tmp_path, city: dict | None = None, plan: dict | None = None):
    path = tmp_path / "rentals.csv"
    rentals_table().to_csv(path, index=False)
    return TabularModel(
        name="rentals",
        task="regression",
        reference={"path": str(path)},
        columns={
            "city": {"type": "category", **(city or {})},
            "plan": {"type": "category", **(plan or {})},
            "size": {"type": "number", "min": 0},
            "rent": {"type": "number"},
        },
        target="rent",
        estimator={"kind": "ridge"},
        gate={"metric": "rmse", "threshold": 1000},
    ).spec


def fitted_both(spec, expected_prepare):
    """Our pipeline and the one rebuilt with scikit-learn, fitted on the same rows."""
    table = load_reference_table(spec)
    rows, target = model_input(spec, table), table["rent"]
    ours = build_pipeline(spec, "ridge", {}).fit(rows, target)
    theirs = Pipeline([("prepare", expected_prepare), ("regressor", Ridge(random_state=42))]).fit(
        rows, target
    )
    return ours, theirs, rows


def one_hot(max_categories=50, min_frequency=None) -> Pipeline:
    encoder = OneHotEncoder(
        handle_unknown="infrequent_if_exist",
        max_categories=max_categories,
        min_frequency=min_frequency,
    )
    return Pipeline([("impute", SimpleImputer(strategy="most_frequent")), ("encode", encoder)])


NUMBERS = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])


def test_a_category_with_many_values_keeps_fifty_columns_by_default(tmp_path, data_dir):
    spec = rentals(tmp_path)
    expected = ColumnTransformer(
        [("categories_1", one_hot(), ["city", "plan"]), ("numbers_2", NUMBERS, ["size"])]
    )
    ours, theirs, rows = fitted_both(spec, expected)
    encoder = ours.named_steps["prepare"].named_transformers_["categories_1"]["encode"]
    assert len(encoder.categories_[0]) == 120
    assert len(encoder.get_feature_names_out()) == 50 + 3  # 49 cities and "infrequent", plans
    assert "x0_infrequent_sklearn" in encoder.get_feature_names_out()
    np.testing.assert_allclose(ours.predict(rows), theirs.predict(rows), rtol=1e-12)
    unseen = rows.head(2).assign(city=["a city never seen", "city_119"])
    np.testing.assert_allclose(ours.predict(unseen), theirs.predict(unseen), rtol=1e-12)


def test_max_categories_and_min_frequency_are_the_encoders(tmp_path, data_dir):
    spec = rentals(tmp_path, city={"max_categories": 10, "min_frequency": 25})
    expected = ColumnTransformer(
        [
            ("categories_1", one_hot(10, 25), ["city"]),
            ("categories_2", one_hot(), ["plan"]),
            ("numbers_3", NUMBERS, ["size"]),
        ]
    )
    ours, theirs, rows = fitted_both(spec, expected)
    encoder = ours.named_steps["prepare"].named_transformers_["categories_1"]["encode"]
    assert len(encoder.get_feature_names_out()) <= 10
    np.testing.assert_allclose(ours.predict(rows), theirs.predict(rows), rtol=1e-12)


def test_target_encoding_is_scikit_learns_target_encoder(tmp_path, data_dir):
    spec = rentals(tmp_path, city={"encoding": "target"})
    target_encoded = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", TargetEncoder(cv=KFold(5, shuffle=True, random_state=42))),
            ("scale", StandardScaler()),
        ]
    )
    expected = ColumnTransformer(
        [
            ("target_encoded_1", target_encoded, ["city"]),
            ("categories_2", one_hot(), ["plan"]),
            ("numbers_3", NUMBERS, ["size"]),
        ]
    )
    ours, theirs, rows = fitted_both(spec, expected)
    np.testing.assert_allclose(ours.predict(rows), theirs.predict(rows), rtol=1e-12)
    versions = ModelRegistry(data_dir=str(data_dir)).for_model(spec.name)
    version = versions.register(ours, card={"metrics": {}, "training_rows": len(rows)})
    np.testing.assert_array_equal(versions.load(version.version).predict(rows), ours.predict(rows))


@pytest.mark.parametrize(
    ("column", "says"),
    [
        ({"max_categories": 1}, "max_categories is 2 or more"),
        ({"min_frequency": 2.5}, "min_frequency is a count (1, 2, ...) or a share"),
        ({"min_frequency": 0}, "min_frequency is a count"),
    ],
)
def test_settings_that_cannot_work_are_refused(tmp_path, data_dir, column, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        rentals(tmp_path, city=column)


def test_encoding_settings_apply_to_category_columns_only(tmp_path, data_dir):
    path = tmp_path / "rentals.csv"
    rentals_table().to_csv(path, index=False)
    with pytest.raises(ValueError, match="max_categories applies to category columns only"):
        TabularModel(
            name="rentals",
            task="regression",
            reference={"path": str(path)},
            columns={
                "city": {"type": "category"},
                "size": {"type": "number", "max_categories": 5},
                "rent": {"type": "number"},
            },
            target="rent",
            estimator={"kind": "ridge"},
            gate={"metric": "rmse", "threshold": 1000},
        )
