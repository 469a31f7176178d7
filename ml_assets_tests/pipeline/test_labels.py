"""Delayed labels: files in <data>/<m>/labels/ keyed by prediction_id or by the id columns,
joined with the predictions they label (served, or of a landed batch); a file with a key given
twice, a key no prediction has, or a target the contract refuses is quarantined byte for byte,
its rows named."""

import dataclasses
import json
import time

import dagster as dg
import pandas as pd
import pytest

from ml_assets.definitions import defs
from ml_assets.learn.contract import ContractViolation
from ml_assets.learn.labels import joined_labels
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.simulate import simulate_batch
from ml_assets.learn.spec import ColumnSpec
from ml_assets.store.landing import LandingZone
from ml_assets_tests.conftest import DIABETES, land
from ml_assets_tests.pipeline.test_automation import tick
from ml_assets_tests.pipeline.test_monitoring import check_served, serve_rows, served_tick
from ml_assets_tests.serve.test_app import deploy, feature_rows, predict, service

pytestmark = pytest.mark.slow


def labels_zone(data_dir):
    return LandingZone(data_dir=str(data_dir)).labels_for_model("diabetes")


def take_labels(instance, data_dir):
    """One tick of the labels sensor, then each run it asks for."""
    sensor = defs.resolve_sensor_def("diabetes_labels_sensor")
    resources = {"landing": LandingZone(data_dir=str(data_dir))}
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return []
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    job = defs.resolve_job_def("diabetes_labels_job")
    return [
        job.execute_in_process(
            instance=instance, partition_key=request.partition_key, raise_on_error=False
        )
        for request in result.run_requests
    ]


@pytest.fixture
def served(data_dir, instance):
    """60 reference rows served and checked; their answers and true targets."""
    deploy(data_dir, DIABETES)
    reference = load_reference_table(DIABETES).iloc[:60]
    answers = serve_rows(data_dir, reference[DIABETES.features])
    [request] = served_tick(instance, data_dir)
    assert check_served(instance, request.partition_key).success
    return answers, reference[DIABETES.target].tolist()


def test_labels_keyed_by_prediction_id_join_the_predictions_they_label(data_dir, instance, served):
    answers, targets = served
    labels = pd.DataFrame(
        {"prediction_id": [a["prediction_id"] for a in answers[:40]], "target": targets[:40]}
    )
    landed = land(labels_zone(data_dir), "labels-1.csv", labels.sample(frac=1, random_state=0))
    data = landed.read_bytes()
    [run] = take_labels(instance, data_dir)
    assert run.success
    joined = run.output_for_node("diabetes__labels").set_index("prediction_id")
    assert len(joined) == 40
    for answer, target in zip(answers[:40], targets[:40], strict=True):
        row = joined.loc[answer["prediction_id"]]
        assert (row["label"], row["prediction"]) == (target, answer["prediction"])
    assert (labels_zone(data_dir).archive_dir / "labels-1.csv").read_bytes() == data
    checks = {check.check_name: check for check in run.get_asset_check_evaluations()}
    assert checks["labels_match_their_predictions"].passed
    assert checks["live_not_degraded"].passed  # 40 labelled rows: shown, not judged


def test_a_landed_batchs_predictions_can_be_labelled_too(data_dir, instance, landing, served):
    batch = simulate_batch(DIABETES, load_reference_table(DIABETES), rows=30, seed=5)
    land(landing, "batch.csv", batch)
    tick(instance, landing)
    assert (
        defs.resolve_job_def("diabetes_ingestion_job")
        .execute_in_process(instance=instance, partition_key="batch.csv")
        .success
    )
    scored = pd.read_parquet(landing.root / "storage" / "predictions" / "batch.csv.parquet")
    labels = scored[["prediction_id"]].assign(target=scored["target"] + 1)
    land(labels_zone(data_dir), "late.csv", labels)
    [run] = take_labels(instance, data_dir)
    joined = run.output_for_node("diabetes__labels")
    assert sorted(joined["label"]) == sorted(scored["target"] + 1)
    assert set(joined["version"]) == set(scored["version"])


def test_a_label_file_that_cannot_be_joined_is_quarantined_with_its_rows(
    data_dir, instance, served
):
    answers, targets = served
    ids = [a["prediction_id"] for a in answers]
    labels = pd.DataFrame(
        {
            "prediction_id": [ids[0], ids[1], ids[1], "f" * 32, ids[2]],
            "target": [targets[0], targets[1], targets[1], 100.0, 5000.0],  # 5000: over max
        }
    )
    landed = land(labels_zone(data_dir), "bad-labels.csv", labels)
    data = landed.read_bytes()
    [run] = take_labels(instance, data_dir)
    assert run.success  # a refusal is an outcome
    assert run.get_asset_materialization_events() == []
    zone = labels_zone(data_dir)
    assert (zone.quarantine_dir / "bad-labels.csv").read_bytes() == data
    reason = json.loads((zone.quarantine_dir / "bad-labels.csv.reason.json").read_text())
    problems = {problem["check"]: problem["rows"] for problem in reason["problems"]}
    assert problems == {"less_than_or_equal_to(1000)": [5]}  # the target first: nothing else
    tags = instance.get_run_by_id(run.run_id).tags
    assert tags["ml_assets/refused_file"] == "bad-labels.csv"

    plausible = labels.assign(target=[*targets[:3], 100.0, targets[2]])
    land(labels_zone(data_dir), "keys.csv", plausible)
    [run] = take_labels(instance, data_dir)
    reason = json.loads((zone.quarantine_dir / "keys.csv.reason.json").read_text())
    problems = {problem["check"]: problem["rows"] for problem in reason["problems"]}
    assert problems == {"the same key twice": [2, 3], "no prediction has this key": [4]}


def with_customer(spec):
    customer = ColumnSpec(name="customer", type="integer", role="id", nullable=True)
    return dataclasses.replace(spec, columns=(customer, *spec.columns))


def test_labels_keyed_by_ids_take_the_latest_prediction_of_each():
    spec = with_customer(DIABETES)
    predictions = pd.DataFrame(
        {
            "prediction_id": ["a", "b", "c"],
            "served_at": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-01-15"], utc=True),
            "version": ["v1", "v2", "v1"],
            "customer": [17.0, 17.0, 18.0],  # as the records type an integer id
            "prediction": [1.0, 2.0, 3.0],
        }
    )
    labels = pd.DataFrame({"customer": ["17", "18"], "target": [10, 20]})  # as a CSV reads
    joined = joined_labels(spec, labels, predictions, "ids.csv").set_index("prediction_id")
    assert joined["label"].to_dict() == {"b": 10, "c": 20}  # 17: the one served last
    with pytest.raises(ContractViolation, match="no key: give prediction_id or the id columns"):
        joined_labels(spec, labels.drop(columns="customer"), predictions, "none.csv")


def test_a_label_for_a_row_served_a_second_ago_is_joined_before_its_file_is_sealed(
    data_dir, instance
):
    deploy(data_dir, DIABETES)
    rows = feature_rows(DIABETES, rows=20)
    with service(data_dir, {DIABETES.name: DIABETES}) as client:
        answers = predict(client, DIABETES, rows).json()["predictions"]
        open_segments = lambda: list((data_dir / "diabetes" / "served").glob(".open-*.arrows"))
        deadline = time.monotonic() + 10
        while not any(segment.stat().st_size > 0 for segment in open_segments()):
            assert time.monotonic() < deadline, "the recorder wrote nothing in 10 s"
            time.sleep(0.1)
        time.sleep(1.5)  # a flush since the answer
        labels = pd.DataFrame(
            {"prediction_id": [a["prediction_id"] for a in answers], "target": range(20)}
        )
        land(labels_zone(data_dir), "quick.csv", labels)
        [run] = take_labels(instance, data_dir)
        assert open_segments()  # not sealed: the service is still running
    assert run.success and run.get_asset_materialization_events()
    joined = run.output_for_node("diabetes__labels").set_index("prediction_id")
    for answer, target in zip(answers, range(20), strict=True):
        assert joined.loc[answer["prediction_id"], "label"] == target
        assert joined.loc[answer["prediction_id"], "prediction"] == answer["prediction"]
    [live] = run.output_for_node("diabetes__live_performance")["versions"]
    assert (live["served_rows"], live["labelled_rows"]) == (20, 20)  # recorded, not yet sealed
