"""The diabetes model's schedule and landing sensor."""

import importlib
from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from ml_assets import definitions
from ml_assets.store.landing import LandingZone
from ml_assets.store.settings import TIMEZONE_VARIABLE
from ml_assets_tests.conftest import contract_evaluations, land

PARTITIONS = "diabetes_landed_files"


def tick(instance, landing, model="diabetes"):
    """One tick of a model's landing sensor on the landing zone's data folder."""
    sensor = definitions.defs.resolve_sensor_def(f"{model}_landing_sensor")
    zone = LandingZone(data_dir=str(landing.root.parent), max_file_bytes=landing.max_file_bytes)
    with dg.build_sensor_context(instance=instance, resources={"landing": zone}) as context:
        result = sensor(context)
    if result.skip_reason is not None:  # nothing to take: the tick says why
        assert result.skip_reason.skip_message == f"no complete file in {model}'s landing folder"
        return dg.SensorResult(run_requests=[])
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result


def ingest(instance, partition_key):
    job = definitions.defs.resolve_job_def("diabetes_ingestion_job")
    return job.execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False
    )


def test_a_complete_file_becomes_a_partition_and_a_run(instance, landing, reference):
    land(landing, "a.csv", reference.head(30))
    result = tick(instance, landing)
    assert [r.partition_key for r in result.run_requests] == ["a.csv"]
    assert result.run_requests[0].run_key.startswith("a.csv:")
    assert instance.get_dynamic_partitions(PARTITIONS) == ["a.csv"]


def test_a_file_still_being_written_waits_for_a_later_tick(instance, landing, reference):
    land(landing, "growing.csv", reference.head(10), age=0)
    assert tick(instance, landing).run_requests == []
    assert instance.get_dynamic_partitions(PARTITIONS) == []
    land(landing, "growing.csv", reference.head(40), age=30)  # finished writing since
    assert [r.partition_key for r in tick(instance, landing).run_requests] == ["growing.csv"]


def test_a_duplicate_tick_asks_for_nothing_new(instance, landing, reference):
    land(landing, "a.csv", reference.head(30))
    first = tick(instance, landing)
    second = tick(instance, landing)  # before the run has taken the file
    assert second.dynamic_partitions_requests == []
    # the same run key: Dagster launches a run key once per sensor
    assert [r.run_key for r in second.run_requests] == [r.run_key for r in first.run_requests]
    assert ingest(instance, "a.csv").success
    assert tick(instance, landing).run_requests == []  # archived: nothing left to take


def test_a_bad_file_does_not_stop_the_good_ones(instance, landing, reference):
    land(landing, "good-1.csv", reference.head(30))
    land(landing, "bad.csv", b"age,sex\n1,2\n")
    land(landing, "good-2.csv", reference.tail(30))
    result = tick(instance, landing)
    assert sorted(r.partition_key for r in result.run_requests) == [
        "bad.csv",
        "good-1.csv",
        "good-2.csv",
    ]
    runs = {r.partition_key: ingest(instance, r.partition_key) for r in result.run_requests}
    assert all(run.success for run in runs.values())  # a refused file is an outcome
    ingested = {key: bool(run.get_asset_materialization_events()) for key, run in runs.items()}
    assert ingested == {"bad.csv": False, "good-1.csv": True, "good-2.csv": True}
    for key, run in runs.items():
        [evaluation] = contract_evaluations(run)
        assert (evaluation.check_name, evaluation.partition) == ("matches_data_contract", key)
        assert evaluation.passed is (key != "bad.csv")
    [refused] = contract_evaluations(runs["bad.csv"])
    assert "column 'bmi': column is missing" in refused.description
    assert landing.ledger().as_dict() == {
        "landed": 3,
        "archived": 2,
        "quarantined": 1,
        "pending": 0,
    }
    assert tick(instance, landing).run_requests == []


def test_an_unreadable_file_is_skipped_and_the_rest_proceed(
    instance, landing, reference, monkeypatch
):
    land(landing, "locked.csv", reference.head(10))
    land(landing, "fine.csv", reference.head(10))
    real = type(landing).fingerprint

    def fingerprint(self, name):
        if name == "locked.csv":
            raise PermissionError("permission denied")
        return real(self, name)

    monkeypatch.setattr(type(landing), "fingerprint", fingerprint)
    result = tick(instance, landing)
    assert [r.partition_key for r in result.run_requests] == ["fine.csv"]
    assert landing.pending_files() == ["fine.csv", "locked.csv"]  # nothing lost


def test_weekly_schedule_ticks_sunday_23_with_a_valid_run_config(instance):
    schedule = definitions.defs.resolve_schedule_def("diabetes_weekly_retraining")
    assert schedule.cron_schedule == "0 23 * * 0"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    sunday = datetime(2026, 11, 29, 23, 0, tzinfo=ZoneInfo(schedule.execution_timezone))
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=sunday) as context:
        requests = list(schedule.evaluate_tick(context).run_requests)
    assert len(requests) == 1  # nothing trained yet: something to do
    assert requests[0].tags["ml_assets/retrain_because"] == "no candidate has been trained yet"
    job = definitions.defs.resolve_job_def("diabetes_training_job")
    assert dg.validate_run_config(job, requests[0].run_config) is not None
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert selected == {
        "diabetes/reference_data",
        "diabetes/dataset",
        "diabetes/features",
        "diabetes/candidate_model",
        "diabetes/model_metrics",
        "diabetes/production_model",
    }


def test_schedule_timezone_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(TIMEZONE_VARIABLE, "America/New_York")
    try:
        reloaded = importlib.reload(definitions)
        schedule = reloaded.defs.resolve_schedule_def("diabetes_weekly_retraining")
        assert schedule.execution_timezone == "America/New_York"
    finally:
        monkeypatch.delenv(TIMEZONE_VARIABLE)
        importlib.reload(definitions)


def test_sensors_run_by_default():
    for name in (
        "diabetes_landing_sensor",
        "diabetes_retrain_after_ingestion",
        "breast_cancer_landing_sensor",
        "breast_cancer_retrain_after_ingestion",
        "retraining_automation",
        "run_failure_alert",
        "model_decision_alert",
        "dead_run_reaper",
    ):
        sensor = definitions.defs.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING, name
    landing = definitions.defs.resolve_sensor_def("diabetes_landing_sensor")
    assert landing.minimum_interval_seconds <= 10
