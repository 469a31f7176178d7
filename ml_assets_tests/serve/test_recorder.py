"""Every served prediction recorded: its id in the answer, its inputs, prediction, version and
time in Parquet under <data>/<m>/served/; flushed on a clean shutdown, at most about a second
lost when the service is killed; turned off per model or per service."""

import dataclasses
import os
import signal
import time

import pandas as pd
import pyarrow as pa
import pytest

from harness.live import LiveService, wait_for
from ml_assets.learn.served_records import record_columns
from ml_assets.serve.recorder import ServedRecorder, record_schema
from ml_assets.store.served import served_folder
from ml_assets_tests.conftest import CANCER, DIABETES
from ml_assets_tests.serve.test_app import deploy, feature_rows, predict, service


def recorded(data_dir, model: str) -> pd.DataFrame:
    """Every sealed record of a model, in the order served."""
    files = sorted(served_folder(model, str(data_dir)).glob("served-*.parquet"))
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_every_answered_prediction_is_recorded_with_its_id(data_dir):
    for spec in (DIABETES, CANCER):
        deploy(data_dir, spec)
    answers, sent = {DIABETES.name: [], CANCER.name: []}, {DIABETES.name: [], CANCER.name: []}
    with service(data_dir) as client:
        for spec in (DIABETES, CANCER):
            # small requests kept as given, a large one made columns from the model's input
            for start, count in ((0, 5), (5, 5), (10, 5), (30, 150)):
                rows = feature_rows(spec, count, start=start)
                response = predict(client, spec, rows)
                assert response.status_code == 200
                answers[spec.name] += response.json()["predictions"]
                sent[spec.name] += rows
            table = pd.DataFrame(feature_rows(spec, 4, start=20))
            response = client.post(
                f"/models/{spec.name}/predict",
                content=table.to_csv(index=False).encode(),
                headers={"Content-Type": "text/csv"},
            )
            answers[spec.name] += response.json()["predictions"]
            sent[spec.name] += feature_rows(spec, 4, start=20)
        version = response.json()["version"]
    for spec in (DIABETES, CANCER):  # the service closed: everything is sealed
        records = recorded(data_dir, spec.name)
        assert len(records) == 169
        assert records["prediction_id"].tolist() == [a["prediction_id"] for a in answers[spec.name]]
        assert records["prediction"].tolist() == [a["prediction"] for a in answers[spec.name]]
        assert records["version"].nunique() == 1
        served_at = records["served_at"]
        assert str(served_at.dt.tz) == "UTC" and served_at.is_monotonic_increasing
        inputs = pd.DataFrame(sent[spec.name])
        pd.testing.assert_frame_equal(
            records[spec.features], inputs[spec.features], check_dtype=False
        )
        for label in spec.classes:
            expected = [a["probabilities"][label] for a in answers[spec.name]]
            assert records[f"probability_{label}"].tolist() == expected
    assert version == records["version"].iloc[0]
    assert not list(served_folder("diabetes", str(data_dir)).glob(".open-*"))


def test_recording_is_off_for_a_model_that_says_so_or_a_service_that_does(data_dir):
    deploy(data_dir, DIABETES)
    quiet = dataclasses.replace(DIABETES, record_served=False)
    with service(data_dir, {DIABETES.name: quiet}) as client:
        answer = predict(client, DIABETES, feature_rows(DIABETES, 3)).json()
    assert all(len(p["prediction_id"]) == 32 for p in answer["predictions"])  # ids anyway
    with service(data_dir, record=False) as client:
        assert predict(client, DIABETES, feature_rows(DIABETES, 3)).status_code == 200
    assert not served_folder("diabetes", str(data_dir)).exists()


def answers(rows: list[dict], first: int) -> list[dict]:
    return [{"prediction_id": f"{first + i:032x}", "prediction": 1.5} for i in range(len(rows))]


def test_segments_rotate_by_size_and_every_row_is_kept_once(tmp_path):
    recorder = ServedRecorder(DIABETES, tmp_path / "served", rotate_bytes=4000)
    rows = feature_rows(DIABETES, 10)
    for flush in range(12):
        recorder.record("v1", rows, answers(rows, flush * 10))
        recorder.flush()
        recorder.rotate_if_due()
    recorder.close()
    files = sorted((tmp_path / "served").glob("served-*.parquet"))
    assert len(files) > 2  # rotated
    ids = pd.concat([pd.read_parquet(f) for f in files])["prediction_id"]
    assert sorted(ids) == [f"{i:032x}" for i in range(120)]


def test_a_column_named_like_a_record_column_is_kept_as_an_input(tmp_path):
    age = next(c for c in DIABETES.columns if c.name == "age")
    renamed = tuple(
        dataclasses.replace(c, name="version") if c is age else c for c in DIABETES.columns
    )
    spec = dataclasses.replace(DIABETES, columns=renamed)
    columns = record_columns(spec)
    assert columns["version"] == ("record", "version", "string")
    assert columns["input_version"] == ("row", "version", "float64")


def test_a_segment_cut_by_a_kill_keeps_its_whole_batches(tmp_path):
    folder = tmp_path / "served"
    recorder = ServedRecorder(DIABETES, folder)
    rows = feature_rows(DIABETES, 3)
    for flush in range(3):
        recorder.record("v1", rows, answers(rows, flush * 3))
        recorder.flush()
    [segment] = folder.glob(".open-*.arrows")
    whole = segment.read_bytes()
    recorder.record("v1", rows, answers(rows, 9))
    recorder.flush()
    cut = segment.read_bytes()[: len(whole) + (len(segment.read_bytes()) - len(whole)) // 2]
    # as if its process had died: another pid's segment, half of the last batch written
    dead = folder / segment.name.replace(f"-{os.getpid()}-", "-999999999-")
    dead.write_bytes(cut)
    segment.unlink()
    [sealed] = ServedRecorder(DIABETES, folder).recover()
    assert pd.read_parquet(sealed)["prediction_id"].tolist() == [f"{i:032x}" for i in range(9)]
    assert not dead.exists()


def test_a_live_segment_of_another_process_is_left_alone(tmp_path):
    folder = tmp_path / "served"
    recorder = ServedRecorder(DIABETES, folder)
    rows = feature_rows(DIABETES, 2)
    recorder.record("v1", rows, answers(rows, 0))
    recorder.flush()
    assert ServedRecorder(DIABETES, folder).recover() == []  # this process is alive
    recorder.close()
    assert len(list(folder.glob("served-*.parquet"))) == 1


@pytest.mark.slow
def test_a_killed_service_loses_at_most_the_last_second(data_dir, tmp_path):
    deploy(data_dir, DIABETES)
    env = {**os.environ, "ML_ASSETS_DATA_DIR": str(data_dir)}
    live = LiveService(tmp_path, env)
    live.start()
    sent = []
    try:
        for start in range(0, 40, 4):
            status, _, body = live.predict("diabetes", feature_rows(DIABETES, 4, start=start))
            assert status == 200
            sent += [p["prediction_id"] for p in body["predictions"]]
        time.sleep(1.5)  # a flush has passed since the last answer
        os.killpg(live.process.pid, signal.SIGKILL)
        live.process.wait(timeout=20)
    finally:
        live.stop()
    assert recorded(data_dir, "diabetes").empty  # nothing sealed: the process was killed
    restarted = LiveService(tmp_path, env)
    restarted.start()  # seals what the killed one left
    try:
        wait_for(
            lambda: not recorded(data_dir, "diabetes").empty,
            timeout=30,
            what="the killed service's records",
        )
    finally:
        restarted.stop()
    assert recorded(data_dir, "diabetes")["prediction_id"].tolist() == sent


def test_the_record_schema_types_inputs_as_the_contract_does():
    schema = record_schema(CANCER)
    assert schema.field("prediction").type == pa.string()
    assert schema.field("served_at").type == pa.timestamp("ms", tz="UTC")
    assert all(schema.field(f"probability_{c}").type == pa.float64() for c in CANCER.classes)
    assert schema.names[:3] == ["prediction_id", "served_at", "version"]


def test_monitoring_record_is_declared_in_the_yaml_and_decides_no_version():
    from harness.projects import bundled_attributes
    from ml_assets.declare.component import TabularModel
    from ml_assets.pipeline.versions import READS, code_version

    def declared(**monitoring):
        attributes = bundled_attributes("diabetes") | {"monitoring": monitoring}
        return TabularModel(**attributes | {"estimator": attributes.pop("model")}).spec

    recording, quiet = declared(), declared(record=False)
    assert (recording.record_served, quiet.record_served) == (True, False)
    assert all(code_version(recording, a) == code_version(quiet, a) for a in READS)
    with pytest.raises(ValueError, match="record"):
        declared(record="sometimes")
