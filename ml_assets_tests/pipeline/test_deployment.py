"""The diabetes model's registry in use: promote → load → predict → rollback, through Dagster
and the CLI."""

import io
import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_squared_error

from ml_assets.cli import main
from ml_assets.definitions import defs
from ml_assets.learn.simulate import simulate_batch
from ml_assets.pipeline.deployment import gate_refusal
from ml_assets.pipeline.naming import asset_key
from ml_assets.store.registry import ModelRegistry
from ml_assets.store.storage import AssetStorage
from ml_assets_tests.conftest import DIABETES, asset, land
from ml_assets_tests.pipeline.test_automation import tick
from ml_assets_tests.serve.test_app import served_predictions
from ml_assets_tests.test_end_to_end import keys, materialize, reference_mse

pytestmark = pytest.mark.slow

FEATURES, TARGET = DIABETES.features, DIABETES.target
FOLLOW_ANY = {
    "ops": {"diabetes__deployment_gate": {"config": {"threshold": 4000, "tolerance_relative": 0.5}}}
}
MODEL = ["--model", "diabetes"]


@pytest.fixture
def home_instance(tmp_path, monkeypatch):
    """A real instance in $DAGSTER_HOME, where the CLI records rollbacks too."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def latest_production_metadata(instance):
    event = instance.get_latest_materialization_event(asset_key(DIABETES, "production_model"))
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def cli_json(capsys, *args):
    capsys.readouterr()
    assert main([*args, *MODEL, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_promote_predict_rollback_round_trip(
    home_instance, landing, registry, reference, tmp_path, capsys
):
    instance = home_instance
    assert materialize(instance).success
    first = registry.production().version
    metadata = latest_production_metadata(instance)
    assert metadata["rollback"] is False and metadata["version"] == first
    assert metadata["model_card"].count("data:image/png;base64,") == 3  # with importance

    # A batch lands: ingestion scores it with the production model of that moment.
    batch = simulate_batch(DIABETES, reference, rows=300, seed=21)
    land(landing, "batch.csv", batch)
    tick(instance, landing)
    ingestion = defs.resolve_job_def("diabetes_ingestion_job").execute_in_process(
        instance=instance, partition_key="batch.csv"
    )
    assert ingestion.success
    scored = instance.get_latest_materialization_event(asset_key(DIABETES, "predictions"))
    live_mse = scored.asset_materialization.metadata["live_mse"].value
    expected = mean_squared_error(batch[TARGET], registry.load(first).predict(batch[FEATURES]))
    assert live_mse == pytest.approx(expected)
    assert scored.asset_materialization.metadata["production_version"].value == first
    stored = pd.read_parquet(landing.root / "storage" / "predictions" / "batch.csv.parquet")
    served = served_predictions(landing.root.parent, DIABETES, batch)  # the service agrees
    assert [p["prediction"] for p in served] == stored["prediction"].tolist()
    # Each scored row has an id and its version, as a served row has: labels can find it.
    assert stored["prediction_id"].str.fullmatch("[0-9a-f]{32}").all()
    assert stored["prediction_id"].is_unique and (stored["version"] == first).all()

    # A retrain on more data, with a gate that lets it through.
    assert materialize(instance, run_config=FOLLOW_ANY).success
    second = registry.production().version
    assert second != first
    card = registry.get(second).card
    assert card["champion_version"] == first
    assert card["model_config"] == {"kind": "linear", "params": {}}
    assert card["model"] == "diabetes" and card["task"] == "regression"
    assert card["training_rows"] > 353
    assert card["run_id"] and card["data_fingerprint"]
    change = card["metrics"]["mse"] - card["champion_metrics"]["mse"]
    assert latest_production_metadata(instance)["summary"] == (
        f"MSE {card['metrics']['mse']:.2f}, {'−' if change < 0 else '+'}{abs(change):.2f} vs the"
        f" previous version, {card['training_rows']} training rows"
    )

    models = cli_json(capsys, "models")
    assert [m["version"] for m in models] == [second, first]
    assert [m["production"] for m in models] == [True, False]
    assert [m["previous"] for m in models] == [False, True]
    assert models[0]["metrics"]["mse"] == pytest.approx(card["metrics"]["mse"])

    # Predict a fresh batch: the CLI gives what the version's own model gives.
    fresh = simulate_batch(DIABETES, reference, rows=40, seed=99).drop(columns=[TARGET])
    fresh.insert(0, "patient", [f"p{i}" for i in range(40)])
    source = tmp_path / "fresh.csv"
    fresh.to_csv(source, index=False)
    output = tmp_path / "scored.parquet"
    assert main(["predict", *MODEL, str(source), "--output", str(output)]) == 0
    written = pd.read_parquet(output)
    assert list(written["patient"]) == list(fresh["patient"])  # other columns are kept
    np.testing.assert_allclose(
        written["prediction"], registry.load(second).predict(fresh[FEATURES])
    )
    capsys.readouterr()
    assert main(["predict", *MODEL, str(source), "--version", first]) == 0
    stdout_scores = pd.read_csv(io.StringIO(capsys.readouterr().out))
    np.testing.assert_allclose(
        stdout_scores["prediction"], registry.load(first).predict(fresh[FEATURES]), rtol=1e-12
    )

    # Roll back from the CLI: production is the first again, and the UI history says so.
    assert main(["rollback", *MODEL]) == 0
    assert registry.production().version == first
    metadata = latest_production_metadata(instance)
    assert metadata["rollback"] is True
    assert (metadata["previous_version"], metadata["version"]) == (second, first)
    assert metadata["summary"] == (
        f"rolled back from {second}: MSE {reference_mse():.2f}, 353 training rows"
    )
    assert cli_json(capsys, "status")["production"]["version"] == first

    # Roll forward again through the Dagster job, with the version in its config.
    job = defs.resolve_job_def("diabetes_rollback_production")
    result = job.execute_in_process(
        instance=instance,
        run_config={"ops": {"diabetes_roll_back": {"config": {"version": second}}}},
    )
    assert result.success
    assert registry.production().version == second
    metadata = latest_production_metadata(instance)
    assert metadata["rollback"] is True and metadata["version"] == second

    # One flipped byte in the model file: loading refuses, with a clear message.
    model_file = registry.get(second).path / "model.skops"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["predict", *MODEL, str(source)]) == 1
    assert "refusing a changed file" in capsys.readouterr().err


def test_rollback_job_refuses_an_unknown_version(home_instance, registry):
    assert materialize(home_instance).success
    production = registry.production().version
    result = defs.resolve_job_def("diabetes_rollback_production").execute_in_process(
        instance=home_instance,
        run_config={
            "ops": {"diabetes_roll_back": {"config": {"version": "20990101T000000000000Z-x"}}}
        },
        raise_on_error=False,
    )
    assert not result.success
    assert registry.production().version == production


def test_predictions_wait_for_a_production_model(data_dir, reference):
    with dg.build_asset_context(partition_key="a.csv") as context:
        scored = asset("predictions")(
            context, raw_batches=reference.head(5), registry=ModelRegistry(data_dir=str(data_dir))
        )
        assert list(scored) == []


def test_predict_refuses_bad_input_naming_column_and_rows(registry, reference, tmp_path, capsys):
    bad = reference.head(6).drop(columns=[TARGET]).astype(object)
    bad.loc[2, "bmi"] = "heavy"
    source = tmp_path / "bad.csv"
    bad.to_csv(source, index=False)
    assert main(["predict", *MODEL, str(source)]) == 1
    error = capsys.readouterr().err
    assert str(source) in error and "column 'bmi'" in error and "rows [3]" in error
    missing = tmp_path / "missing.csv"
    reference.head(3).drop(columns=["s5"]).to_csv(missing, index=False)
    assert main(["predict", *MODEL, str(missing)]) == 1
    assert "column 's5': column is missing" in capsys.readouterr().err


def test_predict_without_a_model_or_with_a_bad_file(registry, reference, tmp_path, capsys):
    source = tmp_path / "ok.csv"
    reference.head(3).to_csv(source, index=False)
    assert main(["predict", *MODEL, str(source)]) == 1
    assert "nothing of diabetes is in production" in capsys.readouterr().err
    assert main(["predict", *MODEL, str(tmp_path / "nope.csv")]) == 1
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["predict", *MODEL, str(text)]) == 1
    assert "notes.txt: unsupported file type" in capsys.readouterr().err


def test_a_concurrent_runs_unevaluated_gate_does_not_hide_this_runs_evaluation(
    instance, registry, tmp_path
):
    assert materialize(instance).success
    # Another run plans the gate but never evaluates it (its model_metrics cannot be read).
    unreadable = AssetStorage(format="json", base_dir=str(tmp_path / "elsewhere"))
    other = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.checks_for_assets(asset_key(DIABETES, "model_metrics")),
        instance=instance,
        resources={**defs.resources, "json_io_manager": unreadable},
        raise_on_error=False,
    )
    assert not other.success
    latest = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(asset_key(DIABETES, "model_metrics"), "mse_below_threshold")
    )
    assert latest.event.asset_check_evaluation is None  # the newest execution is that plan
    assert gate_refusal(DIABETES, instance) is None


def test_production_model_alone_is_refused_when_the_gate_never_ran_on_the_latest_metrics(
    instance, registry
):
    assert materialize(instance).success
    metrics_only = keys("model_metrics").without_checks()
    assert materialize(instance, selection=metrics_only).success
    assert "not evaluated on the latest model_metrics" in gate_refusal(DIABETES, instance)
