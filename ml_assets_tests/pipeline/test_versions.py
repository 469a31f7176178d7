"""Versions that mean something: each asset's code_version from the parts of the declaration it
reads, data versions from content, the weekly schedule that skips when nothing changed, and the
watched reference table."""

import copy
import hashlib
import json

import dagster as dg
import pytest
import sklearn

from harness.projects import bundled_attributes
from ml_assets.cli import main
from ml_assets.declare.component import TabularModel
from ml_assets.definitions import defs
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.simulate import simulate_batch
from ml_assets.pipeline.automation import (
    TRAINING_ASSETS,
    model_automation,
    training_job,
    weekly_retraining_schedule,
)
from ml_assets.pipeline.naming import asset_key
from ml_assets.pipeline.versions import PACKAGE_VERSION, READS, code_version
from ml_assets.store.landing import LandingZone
from ml_assets.store.registry import ModelRegistry
from ml_assets_tests.conftest import DIABETES, graph_of, land, train_undeclared

pytestmark = pytest.mark.slow


def spec_of(**changes):
    """The diabetes model as declared in Python, with `section__key=value` changes."""
    attributes = copy.deepcopy(bundled_attributes("diabetes"))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = attributes
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = value
    return TabularModel(**attributes | {"estimator": attributes.pop("model")}).spec


def changed_assets(before, after) -> set[str]:
    return {asset for asset in READS if code_version(before, asset) != code_version(after, asset)}


def test_every_asset_has_the_code_version_of_what_it_reads():
    graph = defs.resolve_asset_graph()
    for asset in READS:
        version = graph.get(asset_key(DIABETES, asset)).code_version
        assert version == code_version(DIABETES, asset)
        assert version.startswith(f"{PACKAGE_VERSION}+")
    cancer = graph.get(dg.AssetKey(["breast_cancer", "candidate_model"])).code_version
    assert cancer != code_version(DIABETES, "candidate_model")


def test_a_code_version_changes_exactly_when_what_decides_the_asset_changes():
    base = spec_of()
    assert changed_assets(base, spec_of()) == set()
    trained = {"candidate_model", "model_metrics", "production_model"}
    assert changed_assets(base, spec_of(model__kind="ridge")) == trained
    ridge = spec_of(model__kind="ridge")
    assert changed_assets(ridge, spec_of(model__kind="ridge", model__params={"alpha": 2})) == (
        trained
    )
    assert changed_assets(base, spec_of(gate__threshold=2500)) == {
        "model_metrics",
        "production_model",
        "live_performance",  # judged with the gate's tolerance and resamples
    }
    every = set(READS)
    assert changed_assets(base, spec_of(columns__bmi__max=70)) == every
    assert changed_assets(base, spec_of(reference__test_size=0.25)) == {
        "reference_data", "dataset", "candidate_model", "model_metrics", "production_model",
    }  # fmt: skip
    # What only shows or schedules things decides nothing.
    assert changed_assets(base, spec_of(description="told otherwise")) == set()
    assert changed_assets(base, spec_of(columns__bmi__description="kg per m²")) == set()
    assert changed_assets(base, spec_of(schedule__cron="0 3 * * 1")) == set()
    assert changed_assets(base, spec_of(monitoring__min_labelled_rows=500)) == set()
    assert changed_assets(base, spec_of(tracking__mlflow_uri="http://127.0.0.1:5000")) == set()


def latest_tags(instance, spec, asset: str) -> dict:
    event = instance.get_latest_materialization_event(asset_key(spec, asset))
    return event.asset_materialization.tags


def test_data_versions_come_from_content(instance, landing, reference):
    assert train_undeclared(DIABETES, instance, TRAINING_ASSETS).success
    shipped = f"sklearn:diabetes:{sklearn.__version__}".encode()
    assert latest_tags(instance, DIABETES, "reference_data")["dagster/data_version"] == (
        hashlib.sha256(shipped).hexdigest()
    )
    for asset in ("dataset", "features"):
        event = instance.get_latest_materialization_event(asset_key(DIABETES, asset))
        metadata = event.asset_materialization.metadata
        assert event.asset_materialization.tags["dagster/data_version"] == (
            metadata["data_fingerprint"].value
        )
    landed = land(landing, "new.csv", simulate_batch(DIABETES, reference, rows=40, seed=3))
    expected = hashlib.sha256(landed.read_bytes()).hexdigest()
    instance.add_dynamic_partitions("diabetes_landed_files", ["new.csv"])
    run = defs.resolve_job_def("diabetes_ingestion_job").execute_in_process(
        instance=instance, partition_key="new.csv"
    )
    assert run.success
    assert latest_tags(instance, DIABETES, "raw_batches")["dagster/data_version"] == expected


@pytest.fixture
def csv_model(tmp_path, data_dir, reference):
    """A diabetes model whose reference table is a CSV file of its own."""
    table = tmp_path / "reference.csv"
    reference.to_csv(table, index=False)
    return spec_of(name="watched", reference={"path": str(table), "test_size": 0.2}), table


def schedule_tick(spec, instance):
    schedule = weekly_retraining_schedule(spec, training_job(spec))
    with dg.build_schedule_context(instance=instance) as context:
        [result] = list(schedule.evaluate_tick(context).run_requests or []) or [None]
        skipped = schedule.evaluate_tick(context).skip_message
    return result, skipped


def landing_tick(spec, instance, data_dir, cursor=None):
    """One tick of an undeclared model's landing sensor: its run requests and cursor."""
    sensor = model_automation(spec)["sensors"][0]
    zone = LandingZone(data_dir=str(data_dir))
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing": zone}
    ) as context:
        result = sensor(context)
    return result.run_requests or [], result.cursor


def test_the_weekly_schedule_retrains_only_when_something_changed(
    instance, csv_model, data_dir, reference
):
    spec, table = csv_model
    request, _ = schedule_tick(spec, instance)
    assert "no candidate has been trained yet" in request.tags["ml_assets/retrain_because"]
    assert train_undeclared(spec, instance, TRAINING_ASSETS).success

    request, skipped = schedule_tick(spec, instance)
    assert request is None
    assert skipped.startswith("nothing changed since the last candidate was trained")
    sha = hashlib.sha256(table.read_bytes()).hexdigest()
    assert f"the reference table (sha256 {sha[:12]})" in skipped
    assert "the declaration (" in skipped and f"ml_assets {PACKAGE_VERSION}" in skipped

    # The declaration edited: the gate's threshold (what the candidate is measured by).
    edited = spec_of(
        name="watched", reference={"path": str(table), "test_size": 0.2}, gate__threshold=2800
    )
    request, _ = schedule_tick(edited, instance)
    assert "the declaration <python> changed" in request.tags["ml_assets/retrain_because"]

    # The reference table edited: one value, so its bytes differ.
    edited_table = reference.copy()
    edited_table.loc[0, "age"] = 61
    edited_table.to_csv(table, index=False)
    new_sha = hashlib.sha256(table.read_bytes()).hexdigest()
    request, _ = schedule_tick(spec, instance)
    reason = request.tags["ml_assets/retrain_because"]
    assert f"the reference table {table} changed: sha256 {sha[:12]} → {new_sha[:12]}" in reason

    # Batches accepted since the last dataset.
    assert train_undeclared(spec, instance, TRAINING_ASSETS).success
    assert schedule_tick(spec, instance)[0] is None
    zone = LandingZone(data_dir=str(data_dir)).for_model(spec.name)
    land(zone, "b.csv", simulate_batch(spec, reference, rows=30, seed=4))
    [request], _ = landing_tick(spec, instance, data_dir)
    assert request.job_name == "watched_landed_file_job"
    instance.add_dynamic_partitions(f"{spec.name}_landed_files", ["b.csv"])
    assert train_undeclared(spec, instance, ["raw_batches"], partition_key="b.csv").success
    request, _ = schedule_tick(spec, instance)
    assert (
        "1 accepted batch(es) ingested since the last dataset"
        in (request.tags["ml_assets/retrain_because"])
    )


def test_an_edited_reference_table_is_noticed_by_content_and_retrained(
    instance, csv_model, data_dir, reference
):
    spec, table = csv_model
    assert train_undeclared(spec, instance, TRAINING_ASSETS).success
    requests, cursor = landing_tick(spec, instance, data_dir)
    assert requests == []
    table.touch()  # a new modification time, the same content: nothing to do
    requests, cursor = landing_tick(spec, instance, data_dir, cursor)
    assert requests == []

    edited = reference.copy()
    edited.loc[0, "bmi"] = 30.5
    edited.to_csv(table, index=False)
    [request], cursor = landing_tick(spec, instance, data_dir, cursor)
    sha = hashlib.sha256(table.read_bytes()).hexdigest()
    assert request.job_name == "watched_training_job"
    assert request.run_key == f"reference:{sha}"
    assert "changed: sha256" in request.tags["ml_assets/retrain_because"]
    assert train_undeclared(spec, instance, TRAINING_ASSETS).success
    assert latest_tags(instance, spec, "reference_data")["dagster/data_version"] == sha
    assert landing_tick(spec, instance, data_dir, cursor)[0] == []


def test_a_reference_edit_that_breaks_the_contract_is_refused_and_production_kept(
    instance, csv_model, data_dir
):
    spec, table = csv_model
    assert train_undeclared(spec, instance, TRAINING_ASSETS).success
    registry = ModelRegistry(data_dir=str(data_dir)).for_model(spec.name)
    production = registry.production().version
    table.write_text(table.read_text().replace("\n59.0,", "\n590.0,", 1))
    run = train_undeclared(spec, instance, TRAINING_ASSETS)
    assert run.success  # a refusal is an outcome
    assert run.get_asset_materialization_events() == []
    tags = instance.get_run_by_id(run.run_id).tags
    assert tags["ml_assets/refused_file"] == str(table)
    assert "column 'age'" in tags["ml_assets/reason"]
    assert registry.production().version == production


def test_status_says_whether_the_model_is_stale(instance, data_dir, capsys, monkeypatch):
    home = instance.root_directory
    monkeypatch.setenv("DAGSTER_HOME", home)
    assert train_undeclared(DIABETES, instance, TRAINING_ASSETS).success
    assert main(["status", "--model", "diabetes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stale"] == {"stale": False, "reasons": []}
    instance.add_dynamic_partitions("diabetes_landed_files", ["x.csv"])
    zone = LandingZone(data_dir=str(data_dir)).for_model("diabetes")
    land(zone, "x.csv", simulate_batch(DIABETES, load_reference_table(DIABETES), rows=30, seed=1))
    assert (
        defs.resolve_job_def("diabetes_ingestion_job")
        .execute_in_process(instance=instance, partition_key="x.csv")
        .success
    )
    assert main(["status", "--model", "diabetes", "--json"]) == 0
    stale = json.loads(capsys.readouterr().out)["stale"]
    assert stale == {
        "stale": True,
        "reasons": ["1 accepted batch(es) ingested since the last dataset"],
    }
    assert main(["status", "--model", "diabetes"]) == 0
    assert "stale: retraining would see what changed: 1 accepted batch(es)" in (
        capsys.readouterr().out
    )


def test_the_ui_marks_unsynced_exactly_what_a_yaml_edit_touched(instance, data_dir):
    # The resolver behind the UI's Unsynced badge: Dagster has no public API for it.
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._core.loader import LoadingContextForTest

    assert train_undeclared(spec_of(), instance, TRAINING_ASSETS).success

    def unsynced(spec) -> dict[str, list[str]]:
        graph = dg.Definitions(**graph_of(spec), resources=defs.resources).resolve_asset_graph()
        resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
        return {
            name: [cause.reason for cause in resolver.get_stale_causes(asset_key(spec, name))]
            for name in TRAINING_ASSETS
            if resolver.get_status(asset_key(spec, name)) == StaleStatus.STALE
        }

    assert unsynced(spec_of()) == {}
    assert unsynced(spec_of(description="said otherwise")) == {}
    edited = unsynced(spec_of(model__kind="ridge"))
    assert set(edited) == {"candidate_model", "model_metrics", "production_model"}
    assert edited["candidate_model"] == ["has a new code version"]
