"""Where asset values are stored: a local folder by default, any fsspec URL by configuration."""

import io
import json

import fsspec
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from skops.io import get_untrusted_types, load

from ml_assets.settings import STORAGE_VARIABLE
from ml_assets_tests.test_end_to_end import materialize, reference_mse


def test_by_default_values_are_files_under_the_data_folder(instance, data_dir):
    assert materialize(instance).success
    storage = data_dir / "storage"
    features = pd.read_parquet(storage / "features.parquet")
    assert len(features) == len(load_diabetes().target)
    assert json.loads((storage / "model_metrics.json").read_text())["candidate"][
        "mse"
    ] == pytest.approx(reference_mse(), rel=1e-9)
    assert (storage / "candidate_model.skops").stat().st_size > 0


def test_a_storage_url_sends_every_value_through_fsspec(instance, data_dir, monkeypatch):
    # memory:// is fsspec's in-process filesystem: the same code path as s3:// or gs://.
    url = "memory://ml_assets_test/storage"
    monkeypatch.setenv(STORAGE_VARIABLE, url)
    assert materialize(instance).success
    memory = fsspec.filesystem("memory")
    try:
        stored = sorted(path.rsplit("/", 1)[-1] for path in memory.ls(url, detail=False))
        assert {"candidate_model.skops", "features.parquet", "model_metrics.json"} <= set(stored)
        metrics = json.loads(memory.cat(f"{url}/model_metrics.json"))
        assert metrics["candidate"]["mse"] == pytest.approx(reference_mse(), rel=1e-9)
        model_bytes = memory.cat(f"{url}/candidate_model.skops")
        model = load(io.BytesIO(model_bytes), trusted=get_untrusted_types(data=model_bytes))
        assert hasattr(model, "predict")
        assert not (data_dir / "storage").exists()
    finally:
        memory.rm("memory://ml_assets_test", recursive=True)
