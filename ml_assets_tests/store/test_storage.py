"""Where asset values are stored: a local folder by default, any fsspec URL by configuration."""

import io
import json
import logging

import dagster as dg
import fsspec
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from skops.io import get_untrusted_types, load

from ml_assets.definitions import defs
from ml_assets.learn.simulate import simulate_batch
from ml_assets.learn.splits import row_ids
from ml_assets.pipeline.naming import asset_key
from ml_assets.store.settings import STORAGE_VARIABLE
from ml_assets.store.storage import AssetStorage
from ml_assets_tests.conftest import DIABETES, graph_of
from ml_assets_tests.test_end_to_end import materialize, reference_mse

LANDED_FILES = "diabetes_landed_files"


def test_by_default_values_are_files_in_the_models_folder(instance, data_dir):
    assert materialize(instance).success
    storage = data_dir / "diabetes" / "storage"
    features = pd.read_parquet(storage / "features.parquet")
    assert len(features) == len(load_diabetes().target)
    assert json.loads((storage / "model_metrics.json").read_text())["candidate"][
        "mse"
    ] == pytest.approx(reference_mse(), rel=1e-9)
    assert (storage / "candidate_model.skops").stat().st_size > 0


def test_a_storage_url_sends_every_value_through_fsspec(instance, data_dir, monkeypatch):
    # memory:// is fsspec's in-process filesystem: the same code path as s3:// or gs://.
    base = "memory://ml_assets_test/storage"
    monkeypatch.setenv(STORAGE_VARIABLE, base)
    assert materialize(instance).success
    memory = fsspec.filesystem("memory")
    url = f"{base}/diabetes"  # each model's values under its name
    try:
        stored = sorted(path.rsplit("/", 1)[-1] for path in memory.ls(url, detail=False))
        assert {"candidate_model.skops", "features.parquet", "model_metrics.json"} <= set(stored)
        metrics = json.loads(memory.cat(f"{url}/model_metrics.json"))
        assert metrics["candidate"]["mse"] == pytest.approx(reference_mse(), rel=1e-9)
        model_bytes = memory.cat(f"{url}/candidate_model.skops")
        model = load(io.BytesIO(model_bytes), trusted=get_untrusted_types(data=model_bytes))
        assert hasattr(model, "predict")
        assert not (data_dir / "diabetes" / "storage").exists()
    finally:
        memory.rm("memory://ml_assets_test", recursive=True)


def store_batches(instance, data_dir, reference, count: int, stored: int) -> list[str]:
    """`count` landed_files partitions, `stored` of them with a value as ingestion leaves it."""
    keys = [f"batch-{index:03d}.csv" for index in range(count)]
    instance.add_dynamic_partitions(LANDED_FILES, keys)
    folder = data_dir / "diabetes" / "storage" / "raw_batches"
    folder.mkdir(parents=True)
    for index, key in enumerate(keys[:stored]):
        batch = simulate_batch(DIABETES, reference, rows=10, seed=index)
        batch.assign(row_id=row_ids(DIABETES, batch)).to_parquet(
            folder / f"{key}.parquet", index=False
        )
    return keys


def dataset_from_storage(instance) -> tuple[int, list]:
    """Build dataset from what is stored: its batch count and the step's own log records."""
    result = dg.materialize(
        graph_of(DIABETES)["assets"],
        selection=[asset_key(DIABETES, "reference_data"), asset_key(DIABETES, "dataset")],
        instance=instance,
        resources=defs.resources,
    )
    assert result.success
    [event] = result.get_asset_materialization_events()[1:]
    logs = [
        entry
        for entry in instance.all_logs(result.run_id)
        if entry.step_key == "diabetes__dataset" and entry.dagster_event is None
    ]
    return event.materialization.metadata["batches"].value, logs


def test_many_partitions_are_read_with_one_log_line(instance, data_dir, reference):
    # Dagster's default logs each partition it loads: one event-log write per landed file.
    store_batches(instance, data_dir, reference, count=40, stored=40)
    batches, logs = dataset_from_storage(instance)
    assert batches == 40
    about_batches = [entry.user_message for entry in logs if "raw_batches" in entry.user_message]
    assert about_batches == ["Loaded 40 partition(s) of diabetes/raw_batches"]


def test_partitions_without_a_stored_value_are_skipped_and_named(instance, data_dir, reference):
    keys = store_batches(instance, data_dir, reference, count=3, stored=2)
    batches, logs = dataset_from_storage(instance)
    assert batches == 2
    warnings = [entry.user_message for entry in logs if entry.level >= logging.WARNING]
    assert warnings == [
        f"Skipped 1 partition(s) of diabetes/raw_batches with no stored value: {keys[2]}"
    ]


def test_a_table_reads_back_as_it_was_written(reference):
    table = reference.assign(
        row_id=row_ids(DIABETES, reference),
        split="train",
        source="reference",
        rows=range(len(reference)),
    )
    manager = AssetStorage(format="parquet").create_io_manager(None)
    back = manager.from_bytes(manager.to_bytes(table), None)
    pd.testing.assert_frame_equal(back, table)
    assert back.equals(pd.read_parquet(io.BytesIO(manager.to_bytes(table))))
