"""`ml_assets.TabularModel`: a YAML file that cannot work is refused when the definitions
load, naming the file, the line, the attribute and what is allowed; one that can becomes
its model's definitions, beside the others."""

import copy
import subprocess
import uuid

import pytest

from harness.live import BIN, REPO
from harness.projects import bundled_attributes, make_project, model_yaml, project_env
from ml_assets.declare.component import TabularModel
from ml_assets.declare.errors import InvalidModelFile
from ml_assets.declare.project import declared_models
from ml_assets.pipeline.naming import asset_key
from ml_assets_tests.conftest import DIABETES


def project(tmp_path, monkeypatch, *models: dict):
    """A team's project declaring the given models (one folder each); its package name."""
    package = f"team_{uuid.uuid4().hex[:10]}"
    root = make_project(
        tmp_path / "project",
        {f"{index}_{model['name']}": model_yaml(model) for index, model in enumerate(models)},
        package,
    )
    monkeypatch.syspath_prepend(str(root))
    return root, package


def load(tmp_path, monkeypatch, *models: dict):
    root, package = project(tmp_path, monkeypatch, *models)
    return declared_models(root / package)


def diabetes(**changes) -> dict:
    """The bundled diabetes YAML's attributes with some changed (`gate__metric=...`)."""
    attributes = copy.deepcopy(bundled_attributes("diabetes"))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = attributes
        for part in parents:
            node = node[part]
        node[last] = value
    return attributes


def refusal(tmp_path, monkeypatch, attributes) -> str:
    with pytest.raises(InvalidModelFile) as caught:
        load(tmp_path, monkeypatch, attributes)
    message = str(caught.value)
    assert "defs.yaml:" in message and str(tmp_path) in message  # the file and its line
    return message


@pytest.mark.parametrize(
    ("changes", "attribute", "says"),
    [
        ({"task": "regresion"}, "attributes.task", "'regression' or 'classification'"),
        (
            {"model__kind": "svm"},
            "attributes.model.kind",
            (
                "'svm' is not a regression model kind; use one of: linear, ridge,"
                " gradient_boosting, random_forest, hist_gradient_boosting, lightgbm"
            ),
        ),
        (
            {"gate__metric": "accuracy"},
            "attributes.gate.metric",
            "'accuracy' is not a regression metric; use one of: mse, rmse, mae, r2",
        ),
        ({"gate__metric": "auc"}, "attributes.gate.metric", "use one of: mse, rmse, mae, r2"),
        ({"target": "progression"}, "attributes.target", "'progression' is not a column"),
        (
            {"model__params": {"alpha": 1.0}},
            "attributes.model.params",
            "sklearn.linear_model.LinearRegression does not take alpha; it takes: copy_X,",
        ),
        (
            {"model__kind": "ridge", "model__params": {"alpha": -1.0}},
            "attributes.model.params",
            (
                "with these parameters cannot be fitted on 100 training rows of the reference"
                " (drawn at random, every class): The 'alpha' parameter of Ridge must be"
            ),
        ),
        (
            {"reference": {"path": "data/nowhere.csv"}},
            "attributes.reference.path",
            "no such file: ",
        ),
        (
            {"columns__bmi__max": 30},
            "attributes.reference",
            (
                "the reference table breaks its own contract: scikit-learn's diabetes table"
                " breaks the data contract:\n  column 'bmi': less_than_or_equal_to(30) at rows ["
            ),
        ),
        (
            {"columns__bmi__type": "text"},
            "attributes.columns.bmi.type",
            "'number', 'integer', 'category', 'boolean' or 'datetime'",
        ),
        ({"name": "Diabetes"}, "attributes.name", "cannot name a model"),
        ({"reference__stratify": True}, "attributes.reference.stratify", "classification"),
        ({"gate__tolerance_relative": -2}, "attributes.gate.tolerance_relative", "give > -1"),
        (
            {"gate__log_loss_tolerance_relative": 0.1},
            "attributes.gate.log_loss_tolerance_relative",
            "applies to a model whose guard metric is log_loss; a regression's are: mae",
        ),
        ({"gate__promote_when": "always"}, "attributes.gate.promote_when", "'not_worse' or"),
        (
            {"model__search": {"kinds": ["svm"], "budget_seconds": 10}},
            "attributes.model.search.kinds",
            "'svm': give kinds of a regression: linear, ridge,",
        ),
        (
            {"model__search": {"kinds": ["ridge"], "budget_seconds": 0}},
            "attributes.model.search.budget_seconds",
            "give a positive number of seconds",
        ),
        (
            {
                "model__search": {
                    "kinds": ["ridge"],
                    "budget_seconds": 10,
                    "space": {"ridge": {"depth": [1, 3]}},
                }
            },
            "attributes.model.search.space.ridge",
            "sklearn.linear_model.Ridge does not take depth",
        ),
        (
            {
                "model__search": {
                    "kinds": ["ridge"],
                    "budget_seconds": 10,
                    "space": {"ridge": {"alpha": [5, 1]}},
                }
            },
            "attributes.model.search.space.ridge.alpha",
            "with low < high",
        ),
        ({"gate__confidence": 95}, "attributes.gate.confidence", "give one from 0.5 to below 1"),
        ({"gate__bootstrap_resamples": 50}, "attributes.gate.bootstrap_resamples", "from 200"),
        ({"schedule__cron": "every sunday"}, "attributes.schedule.cron", "not a cron schedule"),
        ({"columns__target__nullable": True}, "attributes.columns.target.nullable", "nullable"),
        (
            {"columns__sex__allowed": ["male"]},
            "attributes.columns.sex.allowed",
            "a number column allows numbers only",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_file_that_cannot_work_is_refused_at_load(
    tmp_path, monkeypatch, changes, attribute, says
):
    message = refusal(tmp_path, monkeypatch, diabetes(**changes))
    assert f" - {attribute}: " in message
    assert says in message


def test_a_classification_target_must_be_a_category(tmp_path, monkeypatch):
    attributes = diabetes(task="classification", model__kind="logistic_regression")
    attributes["gate"] = {"metric": "accuracy", "threshold": 0.85}
    message = refusal(tmp_path, monkeypatch, attributes)
    assert "attributes.columns.target.type: a classification target is a category column" in message


def test_an_unknown_attribute_is_refused_with_its_line(tmp_path, monkeypatch):
    attributes = diabetes()
    attributes["modle"] = {"kind": "linear"}
    with pytest.raises(InvalidModelFile, match="modle") as caught:
        load(tmp_path, monkeypatch, attributes)
    assert "0_diabetes/defs.yaml:" in str(caught.value)


def test_two_models_with_one_name_are_refused(tmp_path, monkeypatch):
    with pytest.raises(InvalidModelFile, match="both declare the model 'diabetes'") as caught:
        load(tmp_path, monkeypatch, diabetes(), diabetes(description="a copy"))
    assert str(caught.value).count("defs.yaml") == 2


def test_models_side_by_side_get_their_own_names(tmp_path, monkeypatch):
    models = load(
        tmp_path, monkeypatch, diabetes(), diabetes(name="diabetes_ridge", model__kind="ridge")
    )
    assert sorted(models) == ["diabetes", "diabetes_ridge"]
    assert asset_key(models["diabetes_ridge"], "features").path == ["diabetes_ridge", "features"]
    assert models["diabetes_ridge"].named("training_job") == "diabetes_ridge_training_job"


def test_a_python_instance_resolves_like_the_yaml():
    attributes = bundled_attributes("diabetes")
    component = TabularModel(**attributes | {"estimator": attributes.pop("model")})
    assert component.spec.column_names == DIABETES.column_names
    assert component.spec.gate.metric.threshold_check == "mse_below_threshold"


def test_the_load_checks_are_remembered_and_redone_when_the_file_changes(tmp_path, monkeypatch):
    table = tmp_path / "table.csv"
    from ml_assets.learn.reference import load_reference_table

    load_reference_table(DIABETES).to_csv(table, index=False)
    attributes = diabetes(reference={"path": str(table)})
    load(tmp_path / "first", monkeypatch, attributes)
    broken = table.read_text().replace("\n59.0,", "\n590.0,", 1)
    table.write_text(broken)
    message = refusal(tmp_path / "second", monkeypatch, attributes)
    assert "column 'age': less_than_or_equal_to(120)" in message


@pytest.mark.slow
def test_dg_lists_the_component():
    import json

    listed = subprocess.run(
        [str(BIN / "dg"), "list", "components", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    keys = {item["key"] for item in json.loads(listed.stdout)["items"]}
    assert "ml_assets.TabularModel" in keys


@pytest.mark.slow
def test_dagster_definitions_validate_and_dg_check_defs_refuse_a_bad_file(tmp_path):
    root, package = tmp_path / "project", f"team_{uuid.uuid4().hex[:10]}"
    make_project(root, {"diabetes": model_yaml(diabetes(gate__metric="accuracy"))}, package)
    env = project_env(root, DAGSTER_HOME=str(tmp_path), ML_ASSETS_DATA_DIR=str(tmp_path / "data"))
    validate = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-m", f"{package}.definitions"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    check = subprocess.run(
        [str(BIN / "dg"), "check", "defs", "--use-active-venv"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    for result in (validate, check):
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert f"{root / package / 'defs' / 'diabetes' / 'defs.yaml'}:" in output
        assert "attributes.gate.metric: 'accuracy' is not a regression metric" in output
        assert "use one of: mse, rmse, mae, r2" in output
