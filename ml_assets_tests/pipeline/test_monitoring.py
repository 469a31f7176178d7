"""What production meets: each sealed file of served predictions becomes a partition of
served_predictions, checked against the contract as declared now and against the reference."""

import dataclasses

import dagster as dg
import pandas as pd
import pytest

from ml_assets.definitions import defs
from ml_assets.learn.reference import load_reference_table
from ml_assets.pipeline.monitoring import monitoring_checks
from ml_assets.pipeline.naming import asset_key
from ml_assets.store.served import ServedRecords
from ml_assets_tests.conftest import DIABETES
from ml_assets_tests.serve.test_app import deploy, predict, service

pytestmark = pytest.mark.slow


def serve_rows(data_dir, table: pd.DataFrame) -> list[dict]:
    """Serve the table's rows (by 50) and stop the service: their answers."""
    answers = []
    with service(data_dir, {DIABETES.name: DIABETES}) as client:
        for start in range(0, len(table), 50):
            rows = table.iloc[start : start + 50].to_dict("records")
            answers += predict(client, DIABETES, rows).json()["predictions"]
    return answers


def served_tick(instance, data_dir) -> list[dg.RunRequest]:
    sensor = defs.resolve_sensor_def("diabetes_served_sensor")
    with dg.build_sensor_context(
        instance=instance, resources={"served": ServedRecords(data_dir=str(data_dir))}
    ) as context:
        result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return []
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result.run_requests


def check_served(instance, partition_key: str):
    job = defs.resolve_job_def("diabetes_served_job")
    return job.execute_in_process(instance=instance, partition_key=partition_key)


def test_served_rows_become_a_checked_partition(data_dir, instance):
    deploy(data_dir, DIABETES)
    features = load_reference_table(DIABETES)[DIABETES.features]
    answers = serve_rows(data_dir, features.iloc[:200])
    [request] = served_tick(instance, data_dir)
    assert served_tick(instance, data_dir) == []  # registered: asked for once
    run = check_served(instance, request.partition_key)
    assert run.success
    [materialization] = run.get_asset_materialization_events()
    metadata = materialization.materialization.metadata
    assert metadata["dagster/row_count"].value == 200
    table = run.output_for_node("diabetes__served_predictions")
    assert table["prediction_id"].tolist() == [a["prediction_id"] for a in answers]
    checks = {e.check_name: e for e in run.get_asset_check_evaluations()}
    assert checks["served_rows_match_contract"].passed
    assert checks["served_inputs_no_drift_from_reference"].passed  # the reference's own rows


def test_served_inputs_from_another_population_are_warned_as_drift(data_dir, instance):
    deploy(data_dir, DIABETES)
    shifted = load_reference_table(DIABETES)[DIABETES.features].iloc[:300].copy()
    shifted["bmi"] = (shifted["bmi"] + 8).clip(upper=80)
    shifted["s5"] = (shifted["s5"] + 0.3).clip(upper=9)
    serve_rows(data_dir, shifted)
    [request] = served_tick(instance, data_dir)
    run = check_served(instance, request.partition_key)
    assert run.success  # a warning, not a failure
    drift = next(
        e for e in run.get_asset_check_evaluations()
        if e.check_name == "served_inputs_no_drift_from_reference"
    )  # fmt: skip
    assert not drift.passed and drift.severity == dg.AssetCheckSeverity.WARN
    drifted = drift.metadata["drifted_columns"].value
    assert set(drifted[:2]) == {"bmi", "s5"} and "age" not in drifted
    effects = [drift.metadata["per_column"].value[c]["effect"] for c in drifted]
    assert effects == sorted(effects, reverse=True)  # the most drifted first


def test_rows_the_contract_now_refuses_are_counted(data_dir, instance):
    deploy(data_dir, DIABETES)
    features = load_reference_table(DIABETES)[DIABETES.features].iloc[:150]
    serve_rows(data_dir, features)
    [request] = served_tick(instance, data_dir)
    table = ServedRecords(data_dir=str(data_dir)).read("diabetes", request.partition_key)
    columns = tuple(
        dataclasses.replace(c, max=30.0) if c.name == "bmi" else c for c in DIABETES.columns
    )
    tightened = dataclasses.replace(DIABETES, columns=columns)
    contract, _ = monitoring_checks(tightened)
    result = contract(served_predictions=table)
    expected = int((features["bmi"] > 30).sum())  # counted by pandas, not by the contract
    assert 0 < expected < 150
    assert result.metadata["refused_rows"].value == expected
    assert result.metadata["refused_share"].value == pytest.approx(expected / 150)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["problems"].value[0]["column"] == "bmi"


def test_the_served_asset_is_in_the_models_group_with_its_checks():
    graph = defs.resolve_asset_graph()
    key = asset_key(DIABETES, "served_predictions")
    assert graph.get(key).group_name == "diabetes"
    checks = {check.name for check in graph.get_check_keys_for_assets([key])}
    assert checks == {"served_rows_match_contract", "served_inputs_no_drift_from_reference"}
