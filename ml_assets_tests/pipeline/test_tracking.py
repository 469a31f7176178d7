"""Every candidate tracked in MLflow, and the gate moving MLflow's `champion` alias, against a
real `mlflow server` (SQLite, artifacts in a temporary folder, loopback), read back through
MlflowClient: the gate's figures against scikit-learn's, the decision and its sentence, the
registered versions, `models:/<m>@champion` predicting as `ml-assets predict`; an unreachable
server changes no decision."""

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from harness.live import LiveMlflow, free_port
from ml_assets.definitions import defs
from ml_assets.learn.modeling import model_input
from ml_assets.store.mlflow_mirror import TRACKING_URI_VARIABLE
from ml_assets.store.registry import ModelRegistry
from ml_assets_tests.conftest import DIABETES, train_undeclared

pytestmark = pytest.mark.slow

GATE_FAILS = {"ops": {"diabetes__deployment_gate": {"config": {"threshold": 100.0}}}}
TRAINING_ASSETS = (
    "reference_data", "dataset", "features", "candidate_model", "model_metrics",
    "production_model",
)  # fmt: skip


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    with LiveMlflow(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


def train(instance, run_config=None):
    job = defs.resolve_job_def("diabetes_training_job")
    return job.execute_in_process(instance=instance, run_config=run_config)


def tracked_runs(server, model="diabetes"):
    client = MlflowClient(tracking_uri=server.url)
    experiment = client.get_experiment_by_name(f"ml_assets/{model}")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def reference_flow_mse() -> float:
    """The tutorial's holdout MSE, computed here with scikit-learn alone."""
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    return mean_squared_error(y_test, LinearRegression().fit(X_train, y_train).predict(X_test))


def test_a_candidate_is_an_mlflow_run_with_the_gates_figures_and_decision(
    mlflow_server, data_dir, instance, monkeypatch, tmp_path
):
    monkeypatch.setenv(TRACKING_URI_VARIABLE, mlflow_server.url)
    result = train(instance)
    assert result.success
    [run] = [
        r for r in tracked_runs(mlflow_server) if r.data.tags["dagster.run_id"] == result.run_id
    ]
    measured = result.output_for_node("diabetes__model_metrics")
    assert measured["mlflow_run_id"] == run.info.run_id
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    assert metrics["candidate_mse"] == pytest.approx(reference_flow_mse())
    assert metrics["baseline_mse"] == pytest.approx(measured["baseline"]["mse"])
    interval = measured["statistics"]["candidate"]["mse"]
    assert (metrics["candidate_mse_low"], metrics["candidate_mse_high"]) == pytest.approx(
        (interval["low"], interval["high"])
    )
    assert metrics["holdout_rows"] == 89
    assert params["estimator"] == "LinearRegression"
    assert params["gate.metric"] == "mse" and float(params["gate.threshold"]) == 3000.0
    production = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes").production()
    assert tags["ml_assets.decision"] == "promoted"
    assert tags["ml_assets.version"] == production.version
    assert tags["ml_assets.data_version"] == measured["data_fingerprint"]
    assert run.info.status == "FINISHED"
    client = MlflowClient(tracking_uri=mlflow_server.url)
    files = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"metrics.md", "permutation_importance.png", "model_card.md"} <= files
    table = client.download_artifacts(run.info.run_id, "metrics.md", str(tmp_path))
    assert f"| MSE | {reference_flow_mse():.2f} |" in Path(table).read_text()


def test_a_refused_candidate_is_tracked_as_refused_with_the_gates_sentence(
    mlflow_server, instance, monkeypatch
):
    monkeypatch.setenv(TRACKING_URI_VARIABLE, mlflow_server.url)
    result = train(instance, GATE_FAILS)
    assert result.success  # a refusal is an outcome
    [run] = [
        r for r in tracked_runs(mlflow_server) if r.data.tags["dagster.run_id"] == result.run_id
    ]
    reason = instance.get_run_by_id(result.run_id).tags["ml_assets/reason"]
    assert run.data.tags["ml_assets.decision"] == "refused"
    assert run.data.tags["ml_assets.reason"] == reason
    assert "ml_assets.version" not in run.data.tags


def test_an_unreachable_mlflow_server_changes_no_decision(data_dir, instance, monkeypatch, capfd):
    monkeypatch.setenv(TRACKING_URI_VARIABLE, f"http://127.0.0.1:{free_port()}")  # nobody there
    result = train(instance)
    assert result.success
    assert result.output_for_node("diabetes__model_metrics")["mlflow_run_id"] is None
    assert ModelRegistry(data_dir=str(data_dir)).for_model("diabetes").production() is not None
    said = capfd.readouterr().err
    assert "MLflow: the candidate was not tracked" in said


def test_a_model_declares_its_own_tracking_server(mlflow_server, instance):
    spec = dataclasses.replace(DIABETES, name="tracked", mlflow_uri=mlflow_server.url)
    assert train_undeclared(spec, instance, TRAINING_ASSETS).success
    [run] = tracked_runs(mlflow_server, "tracked")
    assert run.data.tags["ml_assets.model"] == "tracked"


def test_without_mlflow_nothing_is_tracked_and_mlflow_is_not_imported(instance):
    import subprocess
    import sys

    result = train(instance)
    assert result.output_for_node("diabetes__model_metrics")["mlflow_run_id"] is None
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, ml_assets.definitions; print('mlflow' in sys.modules)"],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert loaded.stdout.strip() == "False"


def test_a_classifiers_second_candidate_carries_mcnemars_test(mlflow_server, instance, monkeypatch):
    monkeypatch.setenv(TRACKING_URI_VARIABLE, mlflow_server.url)
    job = defs.resolve_job_def("breast_cancer_training_job")
    for _ in range(2):
        assert job.execute_in_process(instance=instance).success
    first, second = tracked_runs(mlflow_server, "breast_cancer")[-2:]
    assert "versus_production_mcnemar_p_value" not in first.data.metrics  # nothing to compare
    assert second.data.metrics["versus_production_mcnemar_p_value"] == 1.0  # the same model
    assert second.data.metrics["versus_production_accuracy_value"] == 0.0
    assert second.data.params["estimator.C"] == "1.0"


def champion(server, model="diabetes"):
    client = MlflowClient(tracking_uri=server.url)
    found = client.get_model_version_by_alias(model, "champion")
    return found.version, found.tags["ml_assets.version"]


def test_the_gate_moves_mlflows_champion_and_only_the_gate(
    mlflow_server, data_dir, instance, monkeypatch, tmp_path
):
    import mlflow.sklearn

    from ml_assets.cli import main
    from ml_assets.learn.reference import load_reference_table

    monkeypatch.setenv(TRACKING_URI_VARIABLE, mlflow_server.url)
    versions = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes")
    first = train(instance)
    ours = versions.production().version
    number, tagged = champion(mlflow_server)
    assert tagged == ours
    metadata = first.get_asset_materialization_events()[-1].materialization.metadata
    assert metadata["mlflow_model_version"].value == number
    # Loadable by MLflow's name: the very pipeline production serves.
    loaded = mlflow.sklearn.load_model("models:/diabetes@champion")
    rows = load_reference_table(DIABETES).iloc[:25]
    rows.drop(columns="target").to_csv(tmp_path / "rows.csv", index=False)
    assert main(["predict", "--model", "diabetes", str(tmp_path / "rows.csv"),
                 "--output", str(tmp_path / "out.csv")]) == 0  # fmt: skip
    predicted = pd.read_csv(tmp_path / "out.csv")["prediction"]
    expected = loaded.predict(model_input(DIABETES, rows))
    assert predicted.to_numpy() == pytest.approx(expected)
    # A refused candidate is tracked, not registered: champion stays.
    assert train(instance, GATE_FAILS).success
    assert champion(mlflow_server) == (number, ours)
    # A new promotion moves it; a rollback moves it back.
    assert train(instance).success
    newer = versions.production().version
    assert champion(mlflow_server)[1] == newer != ours
    assert main(["rollback", "--model", "diabetes"]) == 0
    assert champion(mlflow_server) == (number, ours)


def test_a_server_stopped_mid_run_changes_no_decision_and_sync_catches_up(
    data_dir, instance, monkeypatch, tmp_path, capsys
):
    from ml_assets.cli import main

    root = tmp_path / "mlflow"
    server = LiveMlflow(root)
    server.start()
    monkeypatch.setenv(TRACKING_URI_VARIABLE, server.url)
    try:
        measured = train_undeclared(DIABETES, instance, TRAINING_ASSETS[:-1])
        assert measured.success
    finally:
        server.stop()  # gone before the gate's decision is deployed
    deployed = train_undeclared(DIABETES, instance, ["production_model"])
    assert deployed.success
    ours = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes").production().version
    with LiveMlflow(root) as restarted:  # the same stores, another port
        monkeypatch.setenv(TRACKING_URI_VARIABLE, restarted.url)
        assert champion_or_none(restarted) is None  # nothing was registered while it was down
        assert main(["mlflow-sync", "--model", "diabetes"]) == 0
        assert f"registered {ours} as MLflow version 1 of diabetes" in capsys.readouterr().out
        assert champion(restarted) == ("1", ours)
        assert main(["mlflow-sync", "--model", "diabetes"]) == 0  # nothing twice
        said = capsys.readouterr().out
        assert "registered" not in said and "champion of diabetes is MLflow version 1" in said
        client = MlflowClient(tracking_uri=restarted.url)
        assert len(client.search_model_versions("name = 'diabetes'")) == 1


def champion_or_none(server, model="diabetes"):
    from mlflow.exceptions import MlflowException

    try:
        return champion(server, model)
    except MlflowException:
        return None


def test_a_searched_candidate_carries_its_trials_as_child_runs_and_its_data(
    mlflow_server, instance, tmp_path
):
    from ml_assets.learn.spec import SearchSpec

    spec = dataclasses.replace(
        DIABETES,
        name="searched",
        mlflow_uri=mlflow_server.url,
        search=SearchSpec(kinds=("ridge",), budget_seconds=3.0, cv_folds=3),
    )
    result = train_undeclared(spec, instance, TRAINING_ASSETS)
    assert result.success
    candidate = next(
        event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key.path[-1] == "candidate_model"
    )
    trials = candidate["search_trials"].value
    client = MlflowClient(tracking_uri=mlflow_server.url)
    [parent] = [
        r for r in tracked_runs(mlflow_server, "searched") if "dagster.run_id" in r.data.tags
    ]
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == len(trials) == candidate["trials"].value > 0
    by_name = {child.info.run_name: child for child in children}
    for trial in trials:
        child = by_name[f"trial {trial['number']} ridge"]
        assert child.data.params["kind"] == "ridge"
        assert child.data.params["alpha"] == str(trial["params"]["alpha"])
        if trial["mean"] is not None:
            assert child.data.metrics["cv_mean"] == pytest.approx(trial["mean"])
    files = {artifact.path for artifact in client.list_artifacts(parent.info.run_id)}
    assert "leaderboard.md" in files
    [data] = parent.inputs.dataset_inputs
    fingerprint = result.output_for_node("searched__model_metrics")["data_fingerprint"]
    assert data.dataset.digest == fingerprint[:32]
    assert data.dataset.name == "searched/features"
