"""Live performance: after each label file, every version's metrics on its labelled rows,
compared with scikit-learn's on the same joined rows, against its own at promotion; the
production version found degraded warns and tags the run; each prediction counts once."""

import json

import dagster as dg
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error

from harness.live import WebhookReceiver
from ml_assets.cli import main
from ml_assets.definitions import defs
from ml_assets.learn.reference import load_reference_table
from ml_assets.pipeline.alerts import model_decision_alert
from ml_assets.store.registry import ModelRegistry
from ml_assets.store.settings import ALERT_KINDS_VARIABLE, WEBHOOK_VARIABLE
from ml_assets_tests.conftest import DIABETES, land
from ml_assets_tests.pipeline.test_labels import labels_zone, take_labels
from ml_assets_tests.pipeline.test_monitoring import check_served, serve_rows, served_tick

pytestmark = pytest.mark.slow


@pytest.fixture
def served(data_dir, instance):
    """The diabetes model trained and promoted as the pipeline does; the reference's 442 rows
    served and read: the version, the answers and the true targets."""
    assert defs.resolve_job_def("diabetes_training_job").execute_in_process(instance=instance)
    version = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes").production()
    reference = load_reference_table(DIABETES)
    answers = serve_rows(data_dir, reference[DIABETES.features])
    [request] = served_tick(instance, data_dir)
    assert check_served(instance, request.partition_key).success
    return version, answers, reference[DIABETES.target].to_numpy()


def live_of(run, version):
    [entry] = [
        entry
        for entry in run.output_for_node("diabetes__live_performance")["versions"]
        if entry["version"] == version
    ]
    return entry


def after_success(instance, run, sensor):
    """What a run-status sensor does when the run's success reaches it."""
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=run.get_run_success_event(),
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),
    )
    return sensor(context)


def land_labels(data_dir, name, answers, targets):
    labels = pd.DataFrame(
        {"prediction_id": [a["prediction_id"] for a in answers], "target": targets}
    )
    land(labels_zone(data_dir), name, labels)


def test_live_metrics_are_scikit_learns_on_the_labelled_rows(data_dir, instance, served):
    version, answers, targets = served
    land_labels(data_dir, "labels-1.csv", answers[:300], targets[:300])
    [run] = take_labels(instance, data_dir)
    assert run.success
    entry = live_of(run, version.version)
    predicted = [a["prediction"] for a in answers[:300]]
    assert entry["served_rows"] == 442 and entry["labelled_rows"] == 300
    assert entry["metrics"]["mse"] == pytest.approx(mean_squared_error(targets[:300], predicted))
    assert entry["metrics"]["mae"] == pytest.approx(mean_absolute_error(targets[:300], predicted))
    # at promotion: the version's own holdout, as its card says
    assert entry["at_promotion"]["metrics"]["mse"] == pytest.approx(version.metrics["mse"])
    assert entry["at_promotion"]["rows"] == version.card["holdout_rows"]
    versus = entry["versus_promotion"]["mse"]
    assert versus["value"] == pytest.approx(entry["metrics"]["mse"] - version.metrics["mse"])
    assert versus["low"] < versus["value"] < versus["high"]
    assert entry["degraded"] is False
    [check] = run.get_asset_check_evaluations()[-1:]
    assert check.check_name == "live_not_degraded" and check.passed
    assert "ml_assets/degraded" not in instance.get_run_by_id(run.run_id).tags
    metadata = next(
        event.materialization.metadata
        for event in run.get_asset_materialization_events()
        if event.asset_key.path[-1] == "live_performance"
    )
    assert metadata["live_mse"].value == pytest.approx(entry["metrics"]["mse"])
    assert metadata["labelled_rows"].value == 300
    table = metadata["live_against_promotion"].value
    assert "| version | served | labelled | live MSE | 95 % interval | at promotion |" in table
    mse = f"{entry['metrics']['mse']:.2f}"
    assert f"| `{version.version}` | 442 | 300 | {mse} |" in table
    retrain = defs.resolve_sensor_def("diabetes_retrain_when_degraded")
    assert isinstance(after_success(instance, run, retrain), dg.SkipReason)


def test_status_shows_each_version_live_newest_first(
    data_dir, instance, served, capsys, monkeypatch
):
    version, answers, targets = served
    monkeypatch.setenv("DAGSTER_HOME", instance.root_directory)
    land_labels(data_dir, "labels-1.csv", answers[:200], targets[:200])
    [run] = take_labels(instance, data_dir)
    entry = live_of(run, version.version)
    # a newer version answers; none of its rows is labelled yet: it shows, and so does the first
    assert defs.resolve_job_def("diabetes_training_job").execute_in_process(instance=instance)
    newer = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes").production().version
    serve_rows(data_dir, load_reference_table(DIABETES)[DIABETES.features].iloc[:30])
    [request] = served_tick(instance, data_dir)
    assert check_served(instance, request.partition_key).success
    assert main(["status", "--model", "diabetes", "--json"]) == 0
    live = json.loads(capsys.readouterr().out)["live"]
    assert [e["version"] for e in live] == [newer, version.version]
    assert live[0]["served_rows"] == 30 and live[0]["labelled_rows"] == 0
    assert live[0]["metrics"] is None and live[0]["degraded"] is False
    assert live[1]["served_rows"] == 442 and live[1]["labelled_rows"] == 200
    predicted = [a["prediction"] for a in answers[:200]]
    assert live[1]["metrics"]["mse"] == pytest.approx(mean_squared_error(targets[:200], predicted))
    for field in ("intervals", "at_promotion", "degraded"):
        assert live[1][field] == entry[field]
    assert main(["status", "--model", "diabetes"]) == 0
    said = capsys.readouterr().out
    assert f"live {version.version}: 442 served, 200 labelled: live MSE is" in said
    assert f"live {newer}: 30 served, 0 labelled: no labelled rows yet" in said


def test_a_degraded_production_version_is_alerted_and_retrained_at_once(
    data_dir, instance, served, monkeypatch
):
    version, answers, targets = served
    land_labels(data_dir, "late.csv", answers[:150], targets[:150] + 120.0)  # the world moved
    [run] = take_labels(instance, data_dir)
    assert run.success  # a degraded model is a finding, not a breakage
    entry = live_of(run, version.version)
    assert entry["degraded"] is True
    assert entry["versus_promotion"]["mse"]["low"] > 0
    [check] = [c for c in run.get_asset_check_evaluations() if c.check_name == "live_not_degraded"]
    assert not check.passed and check.severity.value == "WARN"
    assert check.description.startswith(f"production {version.version}: live MSE is")
    assert "degraded: detectably worse" in check.description
    tags = instance.get_run_by_id(run.run_id).tags
    assert tags["ml_assets/degraded"] == version.version
    assert tags["ml_assets/reason"] == check.description
    monkeypatch.delenv(ALERT_KINDS_VARIABLE, raising=False)  # degraded is posted by default
    with WebhookReceiver() as receiver:
        monkeypatch.setenv(WEBHOOK_VARIABLE, receiver.url)
        after_success(instance, run, model_decision_alert)
    [alert] = receiver.received
    live, promoted = entry["metrics"]["mse"], entry["at_promotion"]["metrics"]["mse"]
    assert alert["kind"] == "degraded" and alert["version"] == version.version
    assert (alert["metric"], alert["live"], alert["at_promotion"]) == ("mse", live, promoted)
    assert alert["difference"] == entry["versus_promotion"]["mse"]
    assert alert["text"].startswith(f"diabetes: production {version.version}: live MSE")
    request = after_success(
        instance, run, defs.resolve_sensor_def("diabetes_retrain_when_degraded")
    )
    assert request.run_key == f"degraded-{run.run_id}"
    assert request.tags["ml_assets/retrain_because"] == check.description
    retrained = defs.resolve_job_def("diabetes_training_job").execute_in_process(
        instance=instance, tags=request.tags
    )
    assert retrained.success  # through the gate: decided one way or the other
    dataset = retrained.output_for_node("diabetes__dataset")
    learnt = dataset[dataset["source"] == "labels"]
    assert sorted(learnt["target"]) == sorted(targets[:150] + 120.0)  # what production met
    assert len(dataset) == 442 + 150
    assert instance.get_run_by_id(retrained.run_id).tags["ml_assets/decision"] in (
        "promoted",
        "refused",
    )


def test_a_prediction_labelled_twice_counts_once_with_its_latest_label(data_dir, instance, served):
    version, answers, targets = served
    runs = []
    for name, shift in (("first.csv", 120.0), ("again.csv", 0.0), ("again-copy.csv", 0.0)):
        land_labels(data_dir, name, answers[:120], targets[:120] + shift)  # corrected, twice
        runs += take_labels(instance, data_dir)
    assert [run.success for run in runs] == [True] * 3
    assert live_of(runs[0], version.version)["degraded"] is True
    entry = live_of(runs[-1], version.version)
    predicted = [a["prediction"] for a in answers[:120]]
    assert entry["labelled_rows"] == 120
    assert entry["metrics"]["mse"] == pytest.approx(mean_squared_error(targets[:120], predicted))
    assert json.loads(json.dumps(entry))["degraded"] is False


def test_a_restarted_dagster_takes_nothing_twice_and_loses_nothing(data_dir, instance, served):
    version, answers, targets = served
    land_labels(data_dir, "labels-1.csv", answers[:100], targets[:100])
    [run] = take_labels(instance, data_dir)
    before = live_of(run, version.version)
    with dg.DagsterInstance.from_ref(instance.get_ref()) as restarted:  # the same storage
        assert take_labels(restarted, data_dir) == []
        assert served_tick(restarted, data_dir) == []
        land_labels(data_dir, "labels-2.csv", answers[100:160], targets[100:160])
        [later] = take_labels(restarted, data_dir)
        entry = live_of(later, version.version)
    assert (before["labelled_rows"], entry["labelled_rows"]) == (100, 160)
    assert entry["served_rows"] == before["served_rows"] == 442
    predicted = [a["prediction"] for a in answers[:160]]
    assert entry["metrics"]["mse"] == pytest.approx(mean_squared_error(targets[:160], predicted))
