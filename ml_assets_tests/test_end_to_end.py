"""The diabetes model's whole graph on a real temporary instance: the gate passing, failing,
and the landing path."""

import dagster as dg
import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from ml_assets.definitions import defs
from ml_assets.learn.simulate import simulate_batch
from ml_assets.pipeline.alerts import failure_reasons
from ml_assets.pipeline.automation import TRAINING_ASSETS
from ml_assets.pipeline.naming import asset_key
from ml_assets_tests.conftest import DIABETES, land
from ml_assets_tests.pipeline.test_automation import tick

pytestmark = pytest.mark.slow

GATE = {"ops": {"diabetes__deployment_gate": {"config": {"threshold": 100.0}}}}


def training(spec=DIABETES) -> dg.AssetSelection:
    """A model's training job's assets."""
    return dg.AssetSelection.assets(*(asset_key(spec, name) for name in TRAINING_ASSETS))


def keys(*names, spec=DIABETES) -> dg.AssetSelection:
    return dg.AssetSelection.assets(*(asset_key(spec, name) for name in names))


def materialize(instance, selection=None, run_config=None, partition_key=None):
    selection = training() if selection is None else selection
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=selection,
        instance=instance,
        resources=defs.resources,
        run_config=run_config,
        partition_key=partition_key,
        raise_on_error=False,
    )


def reference_mse() -> float:
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    return mean_squared_error(y_test, LinearRegression().fit(X_train, y_train).predict(X_test))


def evaluations(result):
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def materialized(result):
    """The asset names (without the model prefix) a run materialized."""
    return {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}


def constant_answer_mse():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    constant = DummyRegressor(strategy="mean").fit(X_train, y_train).predict(X_test)
    return mean_squared_error(y_test, constant)


def run_tags(instance, run_id):
    return instance.get_run_by_id(run_id).tags


def latest_metadata(instance, name, spec=DIABETES):
    event = instance.get_latest_materialization_event(asset_key(spec, name))
    return event.asset_materialization.metadata


def test_gate_passes_then_fails_and_production_stays(instance, registry):
    passing = materialize(instance)
    assert passing.success
    assert evaluations(passing) == {
        "no_missing_values": True,
        "unique_row_ids": True,
        "enough_rows": True,
        "target_in_plausible_range": True,
        "no_suspicious_feature": True,
        "mse_below_threshold": True,
        "not_worse_than_production": True,
        "beats_baseline": True,
        "holdout_score_is_plausible": True,
    }
    production = registry.production()
    assert production is not None
    assert production.metrics["mse"] == pytest.approx(reference_mse(), rel=1e-9)
    metadata = latest_metadata(instance, "production_model")
    assert metadata["version"].value == production.version
    # the card: each metric with its bootstrap interval, and the constant answer's value
    card = metadata["model_card"].value
    assert "| metric | this version | 95 % interval |" in card
    mse_row = next(line for line in card.splitlines() if line.startswith("| MSE |"))
    assert mse_row.endswith(f"| {constant_answer_mse():.2f} |")
    low, high = (float(end) for end in mse_row.split("|")[3].split(" to "))
    assert low < reference_mse() < high
    assert production.card["baseline_metrics"]["mse"] == pytest.approx(constant_answer_mse())
    # why it decides: permutation importance on the holdout, in the card and on model_metrics
    assert "| feature | worsening of MSE when shuffled | ± std |" in card
    assert production.card["importance"][0]["feature"] in ("s5", "bmi")
    assert (production.path / "permutation_importance.png").read_bytes().startswith(b"\x89PNG")
    importance = latest_metadata(instance, "model_metrics")["feature_importance"].value
    assert "| feature |" in importance and "permutation_importance.png" in importance
    assert metadata["holdout_mse"].value == pytest.approx(reference_mse(), rel=1e-9)
    assert latest_metadata(instance, "model_metrics")["candidate_mse"].value == pytest.approx(
        reference_mse(), rel=1e-9
    )

    # A refusal is an outcome: the run ends SUCCESS, production_model is not materialized,
    # and the run says what was decided and why.
    failing = materialize(instance, run_config=GATE)
    assert failing.success
    assert evaluations(failing)["mse_below_threshold"] is False
    assert "production_model" not in materialized(failing)
    assert "model_metrics" in materialized(failing)
    assert registry.production().version == production.version
    record = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(asset_key(DIABETES, "model_metrics"), "mse_below_threshold")
    )
    assert record.run_id == failing.run_id
    assert "not below the threshold 100" in record.event.asset_check_evaluation.description
    assert record.event.asset_check_evaluation.severity == dg.AssetCheckSeverity.WARN
    tags = run_tags(instance, failing.run_id)
    assert tags["ml_assets/decision"] == "refused"
    assert tags["ml_assets/production_version"] == production.version
    assert tags["ml_assets/reason"].startswith("mse_below_threshold: candidate holdout MSE ")
    assert "not below the threshold 100" in tags["ml_assets/reason"]
    assert failure_reasons(instance, failing.run_id) == [
        f"check mse_below_threshold failed: {record.event.asset_check_evaluation.description}"
    ]
    assert latest_metadata(instance, "production_model")["version"].value == production.version

    # A candidate swapped after it was measured is not deployed, even with the gate passed.
    promoted = materialize(instance)
    assert promoted.success
    deployed = registry.production().version
    tags = run_tags(instance, promoted.run_id)
    assert (tags["ml_assets/decision"], tags["ml_assets/production_version"]) == (
        "promoted",
        deployed,
    )
    assert tags["ml_assets/previous_version"] == production.version
    assert (
        tags["ml_assets/summary"] == latest_metadata(instance, "production_model")["summary"].value
    )
    ridge = {
        "ops": {"diabetes__candidate_model": {"config": {"kind": "ridge", "params": {"alpha": 50}}}}
    }
    assert materialize(instance, selection=keys("candidate_model"), run_config=ridge).success
    swapped = materialize(instance, selection=keys("production_model"))
    assert not swapped.success
    assert registry.production().version == deployed
    refused_again = materialize(instance, run_config=GATE)
    assert "production_model" not in materialized(refused_again)  # the gate refuses again

    # Selecting production_model alone after a refused gate does not deploy either.
    alone = materialize(instance, selection=keys("production_model"))
    assert alone.success and "production_model" not in materialized(alone)
    assert registry.production().version == deployed
    tags = run_tags(instance, alone.run_id)
    assert (tags["ml_assets/decision"], tags["ml_assets/production_version"]) == (
        "refused",
        deployed,
    )
    assert tags["ml_assets/reason"].startswith("mse_below_threshold: candidate holdout MSE ")


def retrain_tick(instance) -> list[dg.RunRequest]:
    """One evaluation of diabetes_retrain_after_ingestion: the runs it asks for."""
    sensor = defs.resolve_sensor_def("diabetes_retrain_after_ingestion")
    with dg.build_sensor_context(instance=instance) as context:
        result = sensor(context)
    return [] if isinstance(result, dg.SkipReason) else [result]


def run_request(instance, request: dg.RunRequest):
    """Executes what a sensor's run request asks for, as the daemon would."""
    return defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance,
        partition_key=request.partition_key,
        tags=request.tags,
        raise_on_error=False,
    )


def in_flight_run(instance, job="diabetes_training_job"):
    """A run of one of the model's jobs that is still going, tagged as the job tags it."""
    tags = defs.resolve_job_def(job).tags
    instance.add_run(dg.DagsterRun(job_name=job, status=dg.DagsterRunStatus.STARTED, tags=tags))


def test_a_landed_file_is_ingested_retrained_and_deployed_in_one_run(
    instance, landing, registry, reference
):
    assert materialize(instance).success
    first = registry.production().version
    assert retrain_tick(instance) == []  # nothing ingested: nothing to retrain
    landed = land(
        landing, "new.csv", simulate_batch(DIABETES, reference, rows=200, seed=10)
    ).read_bytes()
    [request] = tick(instance, landing).run_requests
    assert (request.job_name, request.partition_key) == ("diabetes_landed_file_job", "new.csv")
    run = run_request(instance, request)
    assert run.success
    assert materialized(run) == {*TRAINING_ASSETS[1:], "raw_batches", "predictions"}
    assert (landing.archive_dir / "new.csv").read_bytes() == landed
    assert latest_metadata(instance, "dataset")["dagster/row_count"].value == 442 + 200
    assert latest_metadata(instance, "dataset")["batches"].value == 1
    assert registry.production().version != first  # this batch lowers the holdout MSE
    tags = run_tags(instance, run.run_id)
    assert (tags["ml_assets/decision"], tags["ml_assets/previous_version"]) == ("promoted", first)
    assert retrain_tick(instance) == []  # retrained in its own run: nothing left to do
    assert landing.ledger().as_dict() == {
        "landed": 1,
        "archived": 1,
        "quarantined": 0,
        "pending": 0,
    }


def test_a_refused_file_stops_its_run_after_ingestion(instance, landing, registry):
    assert materialize(instance).success
    production = registry.production().version
    trained = instance.fetch_materializations(asset_key(DIABETES, "dataset"), limit=5).records
    land(landing, "bad.csv", b"age,sex\n1,2\n")
    [request] = tick(instance, landing).run_requests
    assert request.job_name == "diabetes_landed_file_job"
    run = run_request(instance, request)
    assert run.success  # a refusal is an outcome
    assert materialized(run) == set()
    assert run_tags(instance, run.run_id)["ml_assets/refused_file"] == "bad.csv"
    assert registry.production().version == production
    after = instance.fetch_materializations(asset_key(DIABETES, "dataset"), limit=5).records
    assert after == trained
    assert retrain_tick(instance) == []
    assert landing.ledger().as_dict()["quarantined"] == 1


def test_a_burst_of_files_is_ingested_each_and_retrained_once(instance, landing, reference):
    assert materialize(instance).success
    for seed in range(3):
        land(landing, f"burst-{seed}.csv", simulate_batch(DIABETES, reference, rows=50, seed=seed))
    requests = tick(instance, landing).run_requests
    assert {r.job_name for r in requests} == {"diabetes_ingestion_job"}
    assert sorted(r.partition_key for r in requests) == [f"burst-{s}.csv" for s in range(3)]
    assert all(run_request(instance, request).success for request in requests)
    [retrain] = retrain_tick(instance)
    assert retrain.run_key == retrain_tick(instance)[0].run_key  # launched once by Dagster
    assert run_request(instance, dg.RunRequest(job_name="diabetes_training_job")).success
    assert latest_metadata(instance, "dataset")["batches"].value == 3
    assert retrain_tick(instance) == []


def test_a_file_landing_while_a_run_is_going_is_retrained_after_it(instance, landing, reference):
    assert materialize(instance).success
    in_flight_run(instance, "diabetes_served_job")  # checking served rows: no bar to a file
    land(landing, "early.csv", simulate_batch(DIABETES, reference, rows=50, seed=2))
    [request] = tick(instance, landing).run_requests
    assert request.job_name == "diabetes_landed_file_job"
    assert run_request(instance, request).success
    in_flight_run(instance)
    land(landing, "late.csv", simulate_batch(DIABETES, reference, rows=50, seed=1))
    [request] = tick(instance, landing).run_requests
    assert request.job_name == "diabetes_ingestion_job"  # the going run may have read the data
    assert run_request(instance, request).success
    assert retrain_tick(instance) == []  # not while the model's run is going
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        instance.report_run_failed(run)
    assert len(retrain_tick(instance)) == 1


def test_a_file_landing_before_the_reference_table_is_ingested_alone(instance, landing, reference):
    land(landing, "early.csv", simulate_batch(DIABETES, reference, rows=50, seed=1))
    [request] = tick(instance, landing).run_requests
    assert request.job_name == "diabetes_ingestion_job"


def test_a_batch_ingested_after_the_dataset_was_built_is_not_missed(instance, landing, reference):
    land(landing, "a.csv", simulate_batch(DIABETES, reference, rows=50, seed=1))
    tick(instance, landing)
    materialize(instance, selection=keys("raw_batches"), partition_key="a.csv")
    assert len(retrain_tick(instance)) == 1
    assert materialize(instance).success  # a scheduled run takes a.csv
    assert retrain_tick(instance) == []
    land(landing, "b.csv", simulate_batch(DIABETES, reference, rows=50, seed=2))
    tick(instance, landing)
    materialize(instance, selection=keys("raw_batches"), partition_key="b.csv")
    assert len(retrain_tick(instance)) == 1  # b.csv still gets its retrain


def test_a_batch_that_makes_the_model_worse_is_not_deployed(instance, landing, registry, reference):
    assert materialize(instance).success
    champion = registry.production().version
    poisoned = simulate_batch(DIABETES, reference, rows=600, seed=11)
    poisoned["target"] = np.random.default_rng(0).permutation(poisoned["target"].to_numpy())
    land(landing, "poisoned.csv", poisoned)
    tick(instance, landing)
    assert materialize(
        instance, selection=keys("raw_batches"), partition_key="poisoned.csv"
    ).success  # well-formed: the contract accepts it
    retrain = materialize(instance)
    assert retrain.success  # refused: an outcome, not a breakage
    assert evaluations(retrain)["not_worse_than_production"] is False
    assert "production_model" not in materialized(retrain)
    assert registry.production().version == champion
    tags = run_tags(instance, retrain.run_id)
    assert (tags["ml_assets/decision"], tags["ml_assets/production_version"]) == (
        "refused",
        champion,
    )
    assert "not_worse_than_production: candidate MSE is " in tags["ml_assets/reason"]
    assert ": detectably worse" in tags["ml_assets/reason"]


def test_automation_deploys_after_a_gate_passed_in_a_partial_run(instance, registry):
    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    partial = training() - keys("production_model")
    assert materialize(instance, selection=partial).success
    assert registry.production() is None
    evaluation = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=evaluation.cursor
    )
    assert evaluation.get_num_requested(asset_key(DIABETES, "production_model")) == 1
    assert materialize(instance, selection=keys("production_model")).success
    evaluation = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=evaluation.cursor
    )
    assert evaluation.get_num_requested(asset_key(DIABETES, "production_model")) == 0


def test_automation_does_not_deploy_after_a_failed_gate(instance, registry):
    assert materialize(instance).success
    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    failing = materialize(
        instance,
        selection=keys("candidate_model", "model_metrics"),
        run_config=GATE,
    )
    assert evaluations(failing)["mse_below_threshold"] is False
    assert run_tags(instance, failing.run_id)["ml_assets/decision"] == "refused"
    evaluation = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=evaluation.cursor
    )
    assert evaluation.get_num_requested(asset_key(DIABETES, "production_model")) == 0
