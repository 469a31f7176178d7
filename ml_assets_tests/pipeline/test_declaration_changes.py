"""A declaration that changes never breaks a model: columns removed, added or retyped, the gate
still compares the candidate with production on the same reference holdout rows (rescored,
from its predictions at promotion, or on columns read again from the reference table) and says
which; production's figures are checked against scikit-learn scoring the version itself."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from ml_assets import TabularModel
from ml_assets.cli import main
from ml_assets.learn.champion import PREDICTIONS_FILE, recorded_inputs
from ml_assets.pipeline.automation import TRAINING_ASSETS
from ml_assets.store.registry import ModelRegistry
from ml_assets_tests.conftest import train_undeclared
from ml_assets_tests.tables import bikes, houses

COLUMNS = {
    "area_m2": {"type": "number", "min": 0, "nullable": True},
    "rooms": {"type": "integer", "min": 0},
    "district": {"type": "category"},
    "price": {"type": "number"},
}


def houses_with_floors(rows: int = 400, seed: int = 1) -> pd.DataFrame:
    """The houses of new-model's tests, each on a floor the price does not depend on."""
    return houses(rows, seed).assign(floor=np.random.default_rng(seed).integers(0, 12, rows))


def declared(path, columns):
    return TabularModel(
        name="houses",
        task="regression",
        reference={"path": str(path)},
        columns=columns,
        target="price",
        estimator={"kind": "ridge"},
        gate={"metric": "mse", "threshold": 1e12},
    ).spec


def gate_descriptions(result) -> dict[str, str]:
    return {e.check_name: e.description for e in result.get_asset_check_evaluations()}


def reference_holdout(path) -> pd.DataFrame:
    table = pd.read_csv(path)
    return train_test_split(table, test_size=0.2, random_state=42)[1]


@pytest.fixture
def first_version(tmp_path, instance, data_dir):
    """houses.csv, and a first version trained on all four declared columns, in production."""
    path = tmp_path / "houses.csv"
    houses_with_floors().to_csv(path, index=False)
    result = train_undeclared(declared(path, COLUMNS), instance, TRAINING_ASSETS)
    assert result.success
    versions = ModelRegistry(data_dir=str(data_dir)).for_model("houses")
    return path, versions, versions.production()


def test_a_version_keeps_what_it_takes_and_its_predictions_at_promotion(first_version):
    path, versions, production = first_version
    assert production.card["inputs"] == recorded_inputs(declared(path, COLUMNS))
    assert [entry["name"] for entry in production.card["inputs"]] == [
        "area_m2",
        "rooms",
        "district",
    ]
    kept = pd.read_parquet(production.path / PREDICTIONS_FILE)
    holdout = reference_holdout(path)
    model = versions.load(production.version)
    assert len(kept) == len(holdout)
    np.testing.assert_allclose(
        np.sort(kept["prediction"].to_numpy()),
        np.sort(model.predict(holdout[["area_m2", "rooms", "district"]])),
    )


def test_removing_a_column_rescores_production_on_it_read_from_the_reference(
    first_version, instance
):
    path, versions, production = first_version
    without_rooms = {name: rules for name, rules in COLUMNS.items() if name != "rooms"}
    result = train_undeclared(declared(path, without_rooms), instance, TRAINING_ASSETS)
    assert result.success  # decided, not crashed
    said = gate_descriptions(result)["not_worse_than_production"]
    assert (
        "rescored on the same 80 reference holdout rows, its rooms read from the reference" in said
    )
    holdout = reference_holdout(path)
    model = versions.load(production.version)
    expected = mean_squared_error(
        holdout["price"], model.predict(holdout[["area_m2", "rooms", "district"]])
    )
    [metrics] = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "model_metrics"
    ]
    assert metrics["production_mse"].value == pytest.approx(expected, rel=1e-9)
    assert "its rooms read from the reference table" in metrics["production_compared"].value


def test_adding_a_column_rescores_production_as_it_is(first_version, instance):
    path, versions, production = first_version
    more = {**COLUMNS, "floor": {"type": "integer", "min": 0}}
    result = train_undeclared(declared(path, more), instance, TRAINING_ASSETS)
    assert result.success
    said = gate_descriptions(result)["not_worse_than_production"]
    assert said.endswith(
        f"(production version {production.version}, rescored on the same 80 reference holdout rows)"
    )
    newer = versions.production()
    assert newer.version != production.version  # a better model, with the floor
    assert [entry["name"] for entry in newer.card["inputs"]][-1] == "floor"


def test_retyping_a_column_reads_it_again_as_production_took_it(first_version, instance):
    path, _, _ = first_version
    retyped = {**COLUMNS, "rooms": {"type": "category"}}
    result = train_undeclared(declared(path, retyped), instance, TRAINING_ASSETS)
    assert result.success
    said = gate_descriptions(result)["not_worse_than_production"]
    assert "its rooms read from the reference table" in said


def test_production_the_registry_cannot_load_is_compared_by_its_predictions_at_promotion(
    first_version, instance
):
    path, _, production = first_version
    expected = production.metrics["mse"]
    model_file = production.path / "model.skops"
    model_file.write_bytes(model_file.read_bytes()[:-10])  # as if a library change broke it
    result = train_undeclared(declared(path, COLUMNS), instance, TRAINING_ASSETS)
    assert result.success
    said = gate_descriptions(result)["not_worse_than_production"]
    assert "its predictions at its promotion, by row id, on the same 80 reference holdout" in said
    [metrics] = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "model_metrics"
    ]
    assert metrics["production_mse"].value == pytest.approx(expected, rel=1e-9)


def test_a_column_neither_declared_nor_in_the_reference_is_not_compared_and_said(
    first_version, instance, tmp_path
):
    path, _, production = first_version
    houses_with_floors().drop(columns=["rooms"]).to_csv(
        path, index=False
    )  # the reference loses it too
    without_rooms = {name: rules for name, rules in COLUMNS.items() if name != "rooms"}
    result = train_undeclared(declared(path, without_rooms), instance, TRAINING_ASSETS)
    assert result.success
    said = gate_descriptions(result)["not_worse_than_production"]
    assert said.startswith(
        f"production version {production.version} not compared: it takes rooms, which neither"
    )
    assert said.endswith("the threshold and the constant answer judge the candidate")


def test_predict_gives_an_older_version_what_the_file_has_and_the_rest_as_missing(
    first_version, tmp_path, data_dir, capsys, monkeypatch
):
    path, versions, production = first_version
    without_rooms = {name: rules for name, rules in COLUMNS.items() if name != "rooms"}
    spec = declared(path, without_rooms)
    monkeypatch.setattr("ml_assets.cli.chosen_model", lambda name: spec)
    model = versions.load(production.version)
    rows = houses_with_floors(20, seed=9)
    for given, rooms in ((rows, rows["rooms"]), (rows.drop(columns=["rooms"]), np.nan)):
        source = tmp_path / "new.csv"
        given.to_csv(source, index=False)
        assert main(["--data-dir", str(data_dir), "predict", "--model", "houses", str(source)]) == 0
        out, err = capsys.readouterr()
        scored = pd.read_csv(pd.io.common.StringIO(out))
        expected = model.predict(rows[["area_m2", "district"]].assign(rooms=rooms))
        np.testing.assert_allclose(scored["prediction"], expected, rtol=1e-12)
        assert ("given as missing (imputed)" in err) is (given is not rows)


def test_the_service_answers_with_an_older_version_after_a_column_is_removed(
    first_version, data_dir
):
    from ml_assets_tests.serve.test_app import served_predictions

    path, versions, production = first_version
    without_rooms = {name: rules for name, rules in COLUMNS.items() if name != "rooms"}
    spec = declared(path, without_rooms)
    rows = houses_with_floors(15, seed=4)
    answers = served_predictions(data_dir, spec, rows)  # JSON rows of today's contract
    model = versions.load(production.version)
    expected = model.predict(rows[["area_m2", "district"]].assign(rooms=np.nan))
    np.testing.assert_allclose([answer["prediction"] for answer in answers], expected, rtol=1e-9)


def test_dropping_a_leak_lets_an_honest_candidate_replace_the_leaky_production(
    tmp_path, instance, data_dir
):
    path = tmp_path / "bikes.csv"
    bikes(1000).to_csv(path, index=False)

    def rentals(columns):
        return TabularModel(
            name="rentals",
            task="regression",
            reference={"path": str(path)},
            columns=columns,
            target="cnt",
            estimator={"kind": "ridge"},
            gate={"metric": "r2", "threshold": 0.0},
        ).spec

    leaky = {name: {"type": "number"} for name in ("hr", "temp", "casual", "registered", "cnt")}
    assert train_undeclared(rentals(leaky), instance, TRAINING_ASSETS).success
    versions = ModelRegistry(data_dir=str(data_dir)).for_model("rentals")
    leaked = versions.production()
    assert leaked.card["too_good"].startswith("holdout R² 0.9999")
    assert leaked.card["too_good"].endswith("on 200 rows is too good to be true (≥ 0.999)")
    honest = {name: leaky[name] for name in ("hr", "temp", "cnt")}
    result = train_undeclared(rentals(honest), instance, TRAINING_ASSETS)
    assert result.success
    said = gate_descriptions(result)["not_worse_than_production"]
    assert said.startswith(
        f"production version {leaked.version} not compared: it was promoted with holdout R² 0.9999"
    )
    assert "(a suspected leak), and takes casual, registered, which the declaration" in said
    assert versions.production().version != leaked.version  # the honest model is promoted
