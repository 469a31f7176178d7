"""Hostile files landed together, through the real sensor and ingestion: each one is archived
or quarantined as decided, byte for byte, and the ledger adds up."""

import json
import os

import dagster as dg
import pytest

from ml_assets.definitions import defs
from ml_assets.pipeline.automation import LANDED_AS_TAG
from ml_assets.pipeline.naming import asset_key
from ml_assets.store.landing import REASON_SUFFIX, LandingZone
from ml_assets_tests.conftest import DIABETES, contract_evaluations, land
from ml_assets_tests.pipeline.hostile import ARCHIVED, QUARANTINED, corpus, csv, good
from ml_assets_tests.pipeline.test_automation import tick

pytestmark = pytest.mark.slow

SIZE_LIMIT = 100_000


def ingest(instance, landing, key):
    zone = LandingZone(data_dir=str(landing.root.parent), max_file_bytes=landing.max_file_bytes)
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets(asset_key(DIABETES, "raw_batches")),
        partition_key=key,
        instance=instance,
        resources={**defs.resources, "landing": zone},
        raise_on_error=False,
    )


def ingest_everything(instance, landing):
    """One sensor tick, then the run it asks for each file; {landed name: (key, result)}."""
    outcomes = {}
    for request in tick(instance, landing).run_requests:
        outcomes[request.tags[LANDED_AS_TAG]] = (
            request.partition_key,
            ingest(instance, landing, request.partition_key),
        )
    return outcomes


def test_every_hostile_file_is_archived_or_quarantined_and_nothing_is_lost(
    instance, data_dir, tmp_path
):
    landing = LandingZone(data_dir=str(data_dir), max_file_bytes=SIZE_LIMIT).for_model("diabetes")
    cases = corpus()
    for case in cases:
        land(landing, case.name, case.content)
    outside = tmp_path / "outside.csv"
    outside.write_bytes(csv(good()))
    link = landing.landing / "link_outside.csv"
    os.symlink(outside, link)
    os.utime(link, (1e9, 1e9), follow_symlinks=False)  # landed long ago: settled
    land(landing, "too_big.csv", csv(good(3000)))
    (landing.landing / "a_directory").mkdir()

    outcomes = ingest_everything(instance, landing)
    assert len(outcomes) == len(cases) + 2  # the directory is not a file: left alone

    for case in cases:
        key, result = outcomes[case.name[:200]]
        where = landing.whereabouts(key)
        assert where == case.outcome, f"{case.name!r} ended {where}, expected {case.outcome}"
        assert result.success, case.name  # a refused file is an outcome, not a breakage
        folder = landing.archive_dir if where == ARCHIVED else landing.quarantine_dir
        assert (folder / key).read_bytes() == case.content, f"{case.name!r} changed"
        if where == QUARANTINED:
            reason = json.loads((folder / f"{key}{REASON_SUFFIX}").read_text())
            assert reason["file"] == key and reason["error"].startswith(key)
            assert case.says in reason["error"], (case.name, reason["error"])
            [check] = contract_evaluations(result)
            assert check.passed is False and check.partition == key
        elif case.says:
            [materialization] = result.get_asset_materialization_events()
            notes = materialization.materialization.metadata["normalised"].value
            assert any(case.says in note for note in notes), (case.name, notes)

    link_key, _ = outcomes["link_outside.csv"]
    assert (landing.quarantine_dir / link_key).is_symlink()
    assert outside.read_bytes() == csv(good())  # never touched
    big_key, _ = outcomes["too_big.csv"]
    assert landing.whereabouts(big_key) == QUARANTINED

    registered = set(instance.get_dynamic_partitions("diabetes_landed_files"))
    ledger = landing.ledger(registered)
    assert ledger.lost == []
    assert ledger.pending == 0
    assert ledger.landed == len(registered) == len(cases) + 2
    assert ledger.archived == sum(case.outcome == ARCHIVED for case in cases)
    assert (landing.landing / "a_directory").is_dir()
    assert tick(instance, landing).run_requests == []  # the sensor goes on, with nothing to do


def test_the_same_name_landing_twice_keeps_both_batches(instance, data_dir):
    landing = LandingZone(data_dir=str(data_dir)).for_model("diabetes")
    land(landing, "again.csv", csv(good(10, seed=1)))
    [(first_key, first)] = ingest_everything(instance, landing).values()
    land(landing, "again.csv", csv(good(10, seed=2)))
    [(second_key, second)] = ingest_everything(instance, landing).values()
    assert first.success and second.success
    assert first_key == "again.csv" and second_key != first_key
    assert (landing.archive_dir / first_key).read_bytes() == csv(good(10, seed=1))
    assert (landing.archive_dir / second_key).read_bytes() == csv(good(10, seed=2))
    training = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets(
            asset_key(DIABETES, "reference_data"), asset_key(DIABETES, "dataset")
        ),
        instance=instance,
        resources=defs.resources,
    )
    dataset = training.asset_materializations_for_node("diabetes__dataset")[0]
    assert dataset.metadata["batches"].value == 2
    assert dataset.metadata["dagster/row_count"].value == 442 + 20
