"""`role: id`: an identifier is kept through ingestion and answered beside every prediction
(the predictions asset, `ml-assets predict`, the HTTP service), and never learnt from."""

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from harness.projects import make_project, model_yaml
from ml_assets.cli import main
from ml_assets.declare.component import TabularModel
from ml_assets.learn.contract import validate, validate_features
from ml_assets.learn.modeling import build_pipeline, model_input
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.simulate import simulate_batch
from ml_assets.pipeline.checks import drift_check
from ml_assets.serve.app import ServiceSettings, create_app
from ml_assets_tests.learn.test_generic_contract import COLUMNS, shop_table
from ml_assets_tests.serve.test_app import deploy

IDS = {
    "order_id": {"type": "integer", "role": "id"},
    "customer": {"type": "category", "role": "id", "nullable": True},
}


def orders_table() -> pd.DataFrame:
    table = shop_table()
    table.insert(0, "order_id", np.arange(1000, 1000 + len(table)))
    customers = np.array([f"c{number % 40:03d}" for number in range(len(table))], dtype=object)
    customers[[3, 7]] = None
    table.insert(1, "customer", customers)
    return table


def declared(tmp_path, **changes):
    path = tmp_path / "orders.csv"
    orders_table().to_csv(path, index=False)
    attributes = {
        "name": "orders",
        "task": "classification",
        "reference": {"path": str(path), "stratify": True},
        "columns": {**IDS, **COLUMNS},
        "target": "segment",
        "estimator": {"kind": "logistic_regression"},
        "gate": {"metric": "accuracy", "threshold": 0.5},
    }
    return TabularModel(**{**attributes, **changes})


@pytest.fixture
def spec(tmp_path, data_dir):
    return declared(tmp_path).spec


def test_an_id_is_kept_by_the_contract_and_never_a_feature(spec):
    table = load_reference_table(spec)
    assert spec.identifiers == ["order_id", "customer"]
    assert spec.features == ["spend", "visits", "channel", "member"]
    assert list(table.columns[:2]) == ["order_id", "customer"]
    assert table["order_id"].tolist() == orders_table()["order_id"].tolist()
    assert list(model_input(spec, table).columns) == spec.features
    fitted = build_pipeline(spec, "logistic_regression", {}).fit(
        model_input(spec, table), table["segment"]
    )
    assert list(fitted.feature_names_in_) == spec.features
    assert "an identifier, never a feature" in spec.columns[0].rules


def test_an_id_needs_no_uniqueness_and_never_drifts(spec, tmp_path):
    reference = load_reference_table(spec)
    batch = simulate_batch(spec, reference, rows=200, seed=1)
    batch["order_id"] = 5  # one id for every row, far from the reference's
    batch["customer"] = "someone new"
    checked = validate(spec, batch, source="batch.csv")
    assert checked["order_id"].eq(5).all()
    result = drift_check(spec)(raw_batches=checked)
    assert "order_id" not in result.metadata["per_column"].value
    assert "customer" not in result.metadata["per_column"].value


def test_scoring_inputs_may_carry_the_ids_or_leave_them_out(spec):
    table = orders_table().drop(columns=["segment"])
    assert list(validate_features(spec, table, "in.csv").columns[:2]) == ["order_id", "customer"]
    without = validate_features(spec, table.drop(columns=["order_id", "customer"]), "in.csv")
    assert list(without.columns) == spec.features


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        (
            {"columns": {**IDS, **COLUMNS, "segment": {**COLUMNS["segment"], "role": "id"}}},
            "attributes.columns.segment.role: the target is what is learnt: not an id",
        ),
        (
            {"columns": {**IDS, "segment": COLUMNS["segment"]}},
            "attributes.columns: declare at least one feature (not an id)",
        ),
        (
            {"columns": {"prediction": IDS["order_id"], **COLUMNS}},
            "attributes.columns.prediction.role: an id is answered beside the prediction",
        ),
    ],
    ids=["target", "no feature", "answer name"],
)
def test_declarations_an_id_cannot_work_with_are_refused(tmp_path, data_dir, changes, says):
    from ml_assets.declare.errors import DeclarationError

    component = declared(tmp_path, **changes)
    with pytest.raises(DeclarationError) as caught:
        component._check_declaration()
    attribute = ".".join(("attributes", *map(str, caught.value.attribute)))
    assert f"{attribute}: {caught.value}".startswith(says)


def test_the_service_answers_each_prediction_with_the_ids_its_row_gave(spec, data_dir):
    version = deploy(data_dir, spec)
    rows = orders_table().drop(columns=["segment"]).head(3)
    records = json.loads(rows.to_json(orient="records"))
    records[2].pop("customer")
    settings = ServiceSettings(data_dir=str(data_dir), poll_seconds=0.05)
    with TestClient(create_app({spec.name: spec}, settings)) as client:
        answer = client.post("/models/orders/predict", json={"rows": records}).json()
        assert answer["version"] == version
        given = [{k: v for k, v in p.items() if k in IDS} for p in answer["predictions"]]
        assert given == [
            {"order_id": 1000, "customer": "c000"},
            {"order_id": 1001, "customer": "c001"},
            {"order_id": 1002},
        ]
        csv = client.post(
            "/models/orders/predict",
            content=orders_table().drop(columns=["segment"]).head(4).to_csv(index=False),
            headers={"Content-Type": "text/csv"},
        ).json()
        assert [p["order_id"] for p in csv["predictions"]] == [1000, 1001, 1002, 1003]
        assert [p["customer"] for p in csv["predictions"]] == ["c000", "c001", "c002", None]
        assert [p["prediction"] for p in csv["predictions"][:3]] == [
            p["prediction"] for p in answer["predictions"]
        ]
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        assert "order_id" in schema["orders_prediction"]["properties"]
        assert "order_id" not in schema["orders_prediction"].get("required", [])


def test_predict_writes_the_ids_beside_the_predictions(spec, data_dir, tmp_path, monkeypatch):
    attributes = declared(tmp_path).model_dump(mode="json", exclude_unset=True)
    attributes["model"] = attributes.pop("estimator")
    root = make_project(tmp_path / "project", {"orders": model_yaml(attributes)}, "team_orders")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(root)  # the CLI is about the project it runs in
    deploy(data_dir, spec)
    source, output = tmp_path / "new_orders.csv", tmp_path / "scored.csv"
    orders_table().drop(columns=["segment"]).head(5).to_csv(source, index=False)
    assert main(["--data-dir", str(data_dir), "predict", "--model", "orders", str(source),
                 "--output", str(output)]) == 0  # fmt: skip
    scored = pd.read_csv(output)
    assert scored["order_id"].tolist() == [1000, 1001, 1002, 1003, 1004]
    assert {"prediction", "probability_gold"} <= set(scored.columns)
