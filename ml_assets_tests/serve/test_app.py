"""The HTTP prediction service in process (FastAPI's TestClient runs its lifespan, so the
registry is really followed): readiness, the models' descriptions, predictions against
scikit-learn's own, following promotions and rollbacks, refusing a damaged version, and
every kind of bad input answered with a 4xx in the contract's words."""

import asyncio
import json
import re
import time

import httpx2
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from ml_assets.cli import main
from ml_assets.declare.component import TabularModel
from ml_assets.learn.modeling import build_pipeline, model_input, records_input
from ml_assets.learn.reference import load_reference_table
from ml_assets.serve.app import VERSION_HEADER, ServiceSettings, create_app
from ml_assets.serve.schema import request_rows
from ml_assets.store.registry import MODEL_FILE, ModelRegistry
from ml_assets_tests.conftest import CANCER, DIABETES
from ml_assets_tests.learn.test_generic_contract import shop

SPECS = {DIABETES.name: DIABETES, CANCER.name: CANCER}


def fitted(spec, kind=None, params=None, rows=None):
    reference = load_reference_table(spec)
    if rows is not None:
        reference = reference.head(rows)
    target = reference[spec.target].astype(str) if spec.classes else reference[spec.target]
    pipeline = build_pipeline(spec, kind or spec.kind.name, params or spec.params)
    return pipeline.fit(model_input(spec, reference), target)


def deploy(data_dir, spec, model=None, metrics=None) -> str:
    versions = ModelRegistry(data_dir=str(data_dir)).for_model(spec.name)
    version = versions.register(
        model or fitted(spec), card={"metrics": metrics or {}, "training_rows": 353}
    )
    versions.promote(version.version)
    return version.version


def unbounded(tmp_path):
    """y = 3x + 1, with no bounds on x."""
    path = tmp_path / "unbounded.csv"
    x = np.linspace(0, 10, 50)
    pd.DataFrame({"x": x, "y": 3 * x + 1}).to_csv(path, index=False)
    return TabularModel(
        name="unbounded",
        task="regression",
        reference={"path": str(path)},
        columns={"x": {"type": "number"}, "y": {"type": "number"}},
        target="y",
        estimator={"kind": "linear"},
        gate={"metric": "mse", "threshold": 1.0},
    ).spec


def service(data_dir, specs=None, **settings) -> TestClient:
    settings = ServiceSettings(data_dir=str(data_dir), poll_seconds=0.05, **settings)
    return TestClient(create_app(specs or SPECS, settings), raise_server_exceptions=False)


def feature_rows(spec, rows=5, start=0) -> list[dict]:
    table = load_reference_table(spec)[spec.features].iloc[start : start + rows]
    return json.loads(table.to_json(orient="records"))


def predict(client, spec, rows, **kwargs):
    return client.post(f"/models/{spec.name}/predict", json={"rows": rows}, **kwargs)


def wait_for_version(client, spec, version, seconds=2.0) -> float:
    """Seconds until the service answers with `version` (fails after `seconds`)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if predict(client, spec, feature_rows(spec, 1)).headers.get(VERSION_HEADER) == version:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"{spec.name} still not served by {version} after {seconds} s")


def wait_for_problem(client, spec, seconds=2.0) -> None:
    """Until /ready says why the production version of `spec` is not served."""
    deadline = time.monotonic() + seconds
    while client.get("/ready").json()["models"][spec.name]["problem"] is None:
        assert time.monotonic() < deadline, f"{spec.name}'s refused version went unnoticed"
        time.sleep(0.02)


def test_ready_names_what_is_missing_until_every_model_has_a_version(data_dir):
    with service(data_dir) as client:
        assert client.get("/health").json() == {"status": "ok"}
        waiting = client.get("/ready")
        assert waiting.status_code == 503
        assert waiting.json()["models"]["diabetes"] == {
            "version": None,
            "problem": "nothing of diabetes is in production yet",
        }
        refused = predict(client, DIABETES, feature_rows(DIABETES, 1))
        assert refused.status_code == 503
        assert "nothing of diabetes is in production yet" in refused.json()["detail"]
        diabetes = deploy(data_dir, DIABETES)
        wait_for_version(client, DIABETES, diabetes)
        assert client.get("/ready").status_code == 503  # breast_cancer has nothing yet
        cancer = deploy(data_dir, CANCER)
        wait_for_version(client, CANCER, cancer)
        ready = client.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["models"]["breast_cancer"]["version"] == cancer


def test_models_describe_the_version_and_the_input_schema(data_dir):
    version = deploy(data_dir, DIABETES, metrics={"mse": 2900.19, "r2": 0.45})
    with service(data_dir) as client:
        listed = {model["name"]: model for model in client.get("/models").json()}
        assert listed["diabetes"]["version"] == version
        assert listed["diabetes"]["gate_metric"] == "mse"
        assert listed["breast_cancer"]["task"] == "classification"
        assert listed["breast_cancer"]["version"] is None
        details = client.get("/models/diabetes").json()
    assert details["metrics"] == {"mse": 2900.19, "r2": 0.45}
    assert details["training_rows"] == 353
    history = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes").history()
    assert details["promoted_at"] == history[-1]["at"]
    columns = {column["name"]: column for column in details["input"]}
    assert list(columns) == DIABETES.features  # the target is not an input
    age = next(column for column in DIABETES.columns if column.name == "age")
    assert (columns["age"]["min"], columns["age"]["max"]) == (age.min, age.max)
    assert columns["sex"]["allowed"] == [1.0, 2.0]


def test_a_regression_answers_as_scikit_learn_predicts(data_dir):
    model = fitted(DIABETES)
    version = deploy(data_dir, DIABETES, model)
    rows = feature_rows(DIABETES, 40)
    with service(data_dir) as client:
        answer = predict(client, DIABETES, rows)
    assert answer.status_code == 200
    assert answer.headers[VERSION_HEADER] == version
    body = answer.json()
    assert (body["model"], body["version"]) == ("diabetes", version)
    expected = model.predict(pd.DataFrame(rows))
    np.testing.assert_array_equal([p["prediction"] for p in body["predictions"]], expected)


def test_a_classifier_answers_the_class_and_a_probability_per_class(data_dir):
    model = fitted(CANCER)
    deploy(data_dir, CANCER, model)
    rows = feature_rows(CANCER, 30)
    with service(data_dir) as client:
        predictions = predict(client, CANCER, rows).json()["predictions"]
    expected = model.predict_proba(pd.DataFrame(rows))
    classes = [str(label) for label in model.classes_]
    got = [[p["probabilities"][label] for label in classes] for p in predictions]
    np.testing.assert_array_equal(got, expected)
    assert [p["prediction"] for p in predictions] == list(model.predict(pd.DataFrame(rows)))


@pytest.mark.parametrize("spec", [DIABETES, CANCER], ids=lambda spec: spec.name)
def test_json_csv_and_the_cli_give_identical_predictions(data_dir, tmp_path, spec):
    deploy(data_dir, spec)
    rows = feature_rows(spec, 60, start=7)
    source = tmp_path / "rows.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    scored = tmp_path / "scored.csv"
    assert main(["predict", "--model", spec.name, str(source), "--output", str(scored)]) == 0
    cli = pd.read_csv(scored)
    with service(data_dir) as client:
        as_json = predict(client, spec, rows).json()["predictions"]
        as_csv = client.post(
            f"/models/{spec.name}/predict",
            content=source.read_bytes(),
            headers={"Content-Type": "text/csv"},
        ).json()["predictions"]
    ids = [p.pop("prediction_id") for p in as_json + as_csv]
    assert len(set(ids)) == 120 and all(re.fullmatch("[0-9a-f]{32}", i) for i in ids)
    assert as_json == as_csv
    assert [p["prediction"] for p in as_json] == cli["prediction"].tolist()
    for label in spec.classes:
        column = cli[spec.task.probability_column(label)].tolist()
        assert [p["probabilities"][label] for p in as_json] == column


def test_promotions_and_rollbacks_are_served_without_a_restart(data_dir):
    first = deploy(data_dir, DIABETES, fitted(DIABETES, "linear"))
    with service(data_dir) as client:
        assert predict(client, DIABETES, feature_rows(DIABETES, 1)).headers[VERSION_HEADER] == first
        second = deploy(data_dir, DIABETES, fitted(DIABETES, "ridge"))
        assert wait_for_version(client, DIABETES, second) < 2
        ModelRegistry(data_dir=str(data_dir)).for_model("diabetes").rollback()
        assert wait_for_version(client, DIABETES, first) < 2
        assert client.get("/models/diabetes").json()["version"] == first


def test_a_damaged_version_is_never_served_and_ready_says_why(data_dir, caplog):
    good = deploy(data_dir, DIABETES)
    versions = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes")
    with service(data_dir, {DIABETES.name: DIABETES}) as client:
        bad = versions.register(fitted(DIABETES, "ridge"), card={})
        (bad.path / MODEL_FILE).write_bytes(b"PK\x03\x04 not the file its card names")
        versions.promote(bad.version)
        wait_for_problem(client, DIABETES)
        ready = client.get("/ready")
        answer = predict(client, DIABETES, feature_rows(DIABETES, 1))
    assert ready.status_code == 200  # still serving: refusing all traffic would be worse
    problem = ready.json()["models"]["diabetes"]["problem"]
    assert bad.version in problem and "registry's checks" in problem and good in problem
    assert str(data_dir) not in ready.text
    assert answer.status_code == 200 and answer.headers[VERSION_HEADER] == good
    assert any("sha256" in record.getMessage() for record in caplog.records)


def test_a_version_made_for_another_contract_is_refused(tmp_path, data_dir):
    good = deploy(data_dir, DIABETES)
    versions = ModelRegistry(data_dir=str(data_dir)).for_model("diabetes")
    with service(data_dir, {DIABETES.name: DIABETES}) as client:
        versions.promote(versions.register(fitted(unbounded(tmp_path)), card={}).version)
        wait_for_problem(client, DIABETES)
        assert "cannot score a row of the contract" in client.get("/ready").text
        assert predict(client, DIABETES, feature_rows(DIABETES, 1)).headers[VERSION_HEADER] == good


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(data_dir):
    model = fitted(DIABETES)
    deploy(data_dir, DIABETES, model)
    app = create_app(SPECS, ServiceSettings(data_dir=str(data_dir), poll_seconds=0.05))
    requests = [feature_rows(DIABETES, 1 + index % 4, start=index * 4) for index in range(60)]

    async def send_all():
        async with app.router.lifespan_context(app):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://service") as client:
                return await asyncio.gather(
                    *(
                        client.post("/models/diabetes/predict", json={"rows": rows})
                        for rows in requests
                    )
                )

    answers = asyncio.run(send_all())
    for rows, answer in zip(requests, answers, strict=True):
        got = [p["prediction"] for p in answer.json()["predictions"]]
        np.testing.assert_allclose(got, model.predict(pd.DataFrame(rows)), rtol=1e-12)


ROW = {"age": 50, "sex": 1, "bmi": 25, "bp": 90, "s1": 200, "s2": 100, "s3": 50}
ROW |= {"s4": 4, "s5": 4.5, "s6": 90}


@pytest.mark.parametrize(
    ("rows", "column", "check", "at"),
    [
        ([ROW, ROW | {"age": -3}], "age", "greater_than_or_equal_to(0)", [2]),
        ([ROW | {"bmi": 81}], "bmi", "less_than_or_equal_to(80)", [1]),
        ([ROW | {"sex": 1.5}], "sex", "isin([1.0, 2.0])", [1]),
        ([ROW | {"s1": None}], "s1", "not_nullable", [1]),
        ([ROW | {"s2": "lots"}], "s2", "coerce_dtype('float64')", [1]),
        ([ROW, ROW, {k: v for k, v in ROW.items() if k != "s6"}], "s6", "column is missing", [3]),
        ([ROW | {"target": 140}], "target", "not a column of the contract", [1]),
        ([ROW | {"weight": 70}], "weight", "not a column of the contract", [1]),
        ([], None, "no data rows", []),
    ],
)
def test_bad_rows_are_a_422_naming_the_column_and_the_rows(data_dir, rows, column, check, at):
    deploy(data_dir, DIABETES)
    with service(data_dir) as client:
        answer = predict(client, DIABETES, rows)
    assert answer.status_code == 422
    body = answer.json()
    assert body["model"] == "diabetes"
    assert {"column": column, "check": check, "rows": at} in [
        {key: problem[key] for key in ("column", "check", "rows")} for problem in body["problems"]
    ]
    assert "breaks the data contract" in body["detail"]


def test_categories_booleans_integers_and_nulls_as_the_contract_reads_them(tmp_path, data_dir):
    spec = shop(tmp_path)
    model = fitted(spec)
    deploy(data_dir, spec, model)
    good = {"spend": None, "visits": "12", "channel": "web", "member": "yes"}
    with service(data_dir, {spec.name: spec}) as client:
        answer = predict(client, spec, [good, good | {"member": None, "visits": 3.0}])
        unknown = predict(client, spec, [good | {"channel": "fax"}])  # no `allowed`: imputed
        refused = predict(client, spec, [good | {"visits": 2.5, "member": "perhaps"}])
    assert answer.status_code == 200, answer.text
    expected = model.predict_proba(
        model_input(
            spec,
            pd.DataFrame(
                {
                    "spend": [np.nan, np.nan],
                    "visits": [12.0, 3.0],
                    "channel": ["web", "web"],
                    "member": [True, np.nan],
                }
            ),
        )
    )
    got = [
        [p["probabilities"][label] for label in spec.classes] for p in answer.json()["predictions"]
    ]
    np.testing.assert_allclose(
        got, expected[:, [list(model.classes_).index(c) for c in spec.classes]]
    )
    assert unknown.status_code == 200
    checks = {(p["column"], p["check"]) for p in refused.json()["problems"]}
    assert checks == {("visits", "integer"), ("member", "coerce_dtype('boolean')")}


def test_hostile_bodies_are_4xx_and_leak_nothing(data_dir):
    deploy(data_dir, DIABETES)
    url = "/models/diabetes/predict"
    with service(data_dir, max_rows=3, max_body_bytes=2000) as client:
        answers = {
            "not json": client.post(
                url, content=b"{rows: [", headers={"Content-Type": "application/json"}
            ),
            "not an object": client.post(url, json=[ROW]),
            "rows not objects": client.post(url, json={"rows": [1, 2]}),
            "too many rows": predict(client, DIABETES, [ROW] * 4),
            "too large": client.post(
                url, content=b" " * 3000, headers={"Content-Type": "application/json"}
            ),
            "form": client.post(url, data={"rows": "x"}),
            "no type": client.post(url, content=json.dumps({"rows": [ROW]}).encode()),
            "bad csv": client.post(
                url, content=b'age,sex\n"1,2\n', headers={"Content-Type": "text/csv"}
            ),
            "binary csv": client.post(
                url, content=b"\x00\x01\x02", headers={"Content-Type": "text/csv"}
            ),
            "csv extra column": client.post(
                url,
                content=pd.DataFrame([ROW | {"x": 1}]).to_csv(index=False).encode(),
                headers={"Content-Type": "text/csv"},
            ),
            "unknown model": client.post("/models/heart/predict", json={"rows": [ROW]}),
            "nan": client.post(
                url,
                content=json.dumps({"rows": [ROW | {"bmi": float("nan")}]}).encode(),
                headers={"Content-Type": "application/json"},
            ),
        }
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "not json": 422,
        "not an object": 422,
        "rows not objects": 422,
        "too many rows": 413,
        "too large": 413,
        "form": 415,
        "no type": 415,
        "bad csv": 422,
        "binary csv": 422,
        "csv extra column": 422,
        "unknown model": 404,
        "nan": 422,
    }
    assert "the models are: diabetes, breast_cancer" in answers["unknown model"].json()["detail"]
    assert "at most 3 rows" in answers["too many rows"].json()["detail"]
    for name, answer in answers.items():
        text = answer.text
        assert str(data_dir) not in text and "Traceback" not in text and "/work" not in text, name
        assert answer.json()["detail"], name


def test_a_value_that_overflows_the_model_is_refused_not_answered_as_nan(tmp_path, data_dir):
    spec = unbounded(tmp_path)
    deploy(data_dir, spec)
    with service(data_dir, {spec.name: spec}) as client:
        fine = predict(client, spec, [{"x": 2.0}])
        overflow = predict(client, spec, [{"x": 2.0}, {"x": 1e308}])
    assert fine.json()["predictions"][0]["prediction"] == pytest.approx(7.0)
    assert overflow.status_code == 422
    assert overflow.json()["problems"][0]["rows"] == [2]


def test_serve_command_line_defaults_to_loopback_and_every_model():
    from ml_assets.cli import build_parser, served_models

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.max_rows) == ("127.0.0.1", 8000, 10_000)
    assert sorted(served_models(args.models)) == ["breast_cancer", "diabetes"]


def test_serve_takes_the_models_it_is_asked_for_and_names_an_unknown_one(capsys):
    from ml_assets.cli import build_parser, main, served_models

    args = build_parser().parse_args(["serve", "--model", "diabetes"])
    assert list(served_models(args.models)) == ["diabetes"]
    both = build_parser().parse_args(["serve", "--model", "breast_cancer", "--model", "diabetes"])
    assert list(served_models(both.models)) == ["breast_cancer", "diabetes"]
    assert main(["serve", "--model", "diabetis", "--port", "1"]) == 1
    assert capsys.readouterr().err == (
        "error: no model named 'diabetis'; the models are: breast_cancer, diabetes\n"
    )


def test_ready_speaks_for_the_models_served_only(data_dir):
    version = deploy(data_dir, DIABETES)
    with service(data_dir, specs={DIABETES.name: DIABETES}) as client:
        wait_for_version(client, DIABETES, version)
        ready = client.get("/ready")
        assert ready.status_code == 200  # breast_cancer has no version, and is not served
        assert list(ready.json()["models"]) == ["diabetes"]
        assert client.get("/models/breast_cancer").status_code == 404


def test_the_model_input_of_json_rows_is_the_model_input_of_their_table(tmp_path):
    spec = shop(tmp_path)
    rows = [
        {"spend": None, "visits": 12, "channel": "web", "member": True},
        {"spend": 3.5, "visits": 0, "channel": "store", "member": None},
    ]
    pd.testing.assert_frame_equal(
        records_input(spec, rows), model_input(spec, pd.DataFrame(rows)), check_index_type=False
    )


def test_json_values_are_read_as_the_contract_reads_a_file(tmp_path):
    spec = shop(tmp_path)
    body = {"spend": "NaN", "visits": "7", "channel": 0.0, "member": "yes"}
    [row] = request_rows(spec, json.dumps({"rows": [body]}).encode())
    assert row == {"spend": None, "visits": 7, "channel": "0.0", "member": True}
    [row] = request_rows(spec, json.dumps({"rows": [body | {"channel": True}]}).encode())
    assert row["channel"] == "True"  # as pandera's str coercion makes it


def served_predictions(data_dir, spec, table: pd.DataFrame) -> list[dict]:
    """What the service answers for a table's feature columns (production version)."""
    features = table[spec.features].astype(object)
    rows = features.where(features.notna(), None).to_dict("records")  # floats at full precision
    with service(data_dir, {spec.name: spec}) as client:
        answer = predict(client, spec, rows)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]
