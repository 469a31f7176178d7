"""Every JSON the product writes or answers is strict JSON: a metric undefined on some rows is
null, never NaN (which `json.loads` of most languages refuses). The breast cancer model with a
landed batch of one class (its ROC AUC is undefined: scikit-learn answers NaN), a refused file,
and a card written with NaN by an older version."""

import json
import math

import pytest

from ml_assets.cli import main
from ml_assets.definitions import defs
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.simulate import simulate_batch
from ml_assets.pipeline.naming import asset_key
from ml_assets.store.files import finite, strict_json
from ml_assets.store.landing import LandingZone
from ml_assets.store.registry import CARD_FILE, HISTORY_FILE, ModelRegistry
from ml_assets_tests.conftest import CANCER, land
from ml_assets_tests.serve.test_app import service


def strictly(text: str):
    """The document, refusing NaN and ±Infinity as a strict parser does; and re-dumped strict."""

    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    document = json.loads(text, parse_constant=refuse)
    json.dumps(document, allow_nan=False)
    return document


def test_a_float_that_is_not_finite_is_null():
    document = {"a": math.nan, "b": [1.5, math.inf, {"c": -math.inf}], "d": "NaN", "e": None}
    assert strictly(strict_json(document)) == {"a": None, "b": [1.5, None, {"c": None}],
                                               "d": "NaN", "e": None}  # fmt: skip
    assert finite((math.nan, 2.0)) == [None, 2.0]


def test_every_json_output_is_strict(instance, data_dir, capsys):
    assert (
        defs.resolve_job_def("breast_cancer_training_job")
        .execute_in_process(instance=instance)
        .success
    )
    landing = LandingZone(data_dir=str(data_dir)).for_model(CANCER.name)
    batch = simulate_batch(CANCER, load_reference_table(CANCER), rows=40, seed=3)
    land(landing, "benign.csv", batch.assign(target="benign"))  # one class: no ROC AUC
    land(landing, "broken.csv", b"mean radius,target\nlarge,benign\n")
    instance.add_dynamic_partitions(CANCER.named("landed_files"), ["benign.csv", "broken.csv"])
    ingestion = defs.resolve_job_def(CANCER.named("ingestion_job"))
    for key in ("benign.csv", "broken.csv"):
        assert ingestion.execute_in_process(instance=instance, partition_key=key).success
    scored = instance.get_latest_materialization_event(
        asset_key(CANCER, "predictions")
    ).asset_materialization.metadata
    assert "live_accuracy" in scored and "live_roc_auc" not in scored  # undefined: left out

    versions = ModelRegistry(data_dir=str(data_dir)).for_model(CANCER.name)
    production = versions.production()
    old_card = {**production.card, "metrics": {**production.metrics, "roc_auc": math.nan}}
    (production.path / CARD_FILE).write_text(json.dumps(old_card))  # as older versions wrote
    home = instance.root_directory

    for command in (["status", "--json"], ["models", "--json"], ["list", "--json"]):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DAGSTER_HOME", home)
            model = [] if command[0] == "list" else ["--model", CANCER.name]
            assert main(["--data-dir", str(data_dir), command[0], *model, *command[1:]]) == 0
        document = strictly(capsys.readouterr().out)
        if command[0] == "status":
            assert document["production"]["metrics"]["roc_auc"] is None

    model_folder = data_dir / CANCER.name
    written = [
        *model_folder.rglob("*.json"),
        *(model_folder / "quarantine").glob("*.reason.json"),
    ]
    assert any(path.name.endswith(".reason.json") for path in written)
    assert any(path.name == "model_metrics.json" for path in written)
    for path in written:
        if path.name != CARD_FILE or path.parent != production.path:  # the old one, made above
            strictly(path.read_text())
    for line in (model_folder / "models" / HISTORY_FILE).read_text().splitlines():
        strictly(line)

    with service(data_dir, {CANCER.name: CANCER}) as client:
        rows = json.loads(batch.drop(columns=["target"]).head(3).to_json(orient="records"))
        answers = [
            client.get("/ready"),
            client.get("/models"),
            client.get(f"/models/{CANCER.name}"),
            client.post(f"/models/{CANCER.name}/predict", json={"rows": rows}),
            client.post(f"/models/{CANCER.name}/predict", json={"rows": []}),  # a refusal
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200, 422]
    for answer in answers:
        strictly(answer.text)
    assert strictly(answers[2].text)["metrics"]["roc_auc"] is None
