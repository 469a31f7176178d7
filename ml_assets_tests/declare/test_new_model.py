"""A team's own tables, declared beside the bundled models: `ml-assets new-model` infers the
contract of a table with numbers, whole numbers, text categories and missing values; the
model it declares deploys, with the metrics of the pipeline the README states rebuilt with
scikit-learn alone, and scores and refuses landed rows as its contract says."""

import json
import subprocess
import uuid

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from harness.live import BIN
from harness.projects import make_project, project_env
from ml_assets.cli import main
from ml_assets.declare.project import declared_models, write_model_declaration
from ml_assets.declare.scaffold import ScaffoldError, declaration
from ml_assets.shared import shared_definitions
from ml_assets.store.landing import LandingZone
from ml_assets.store.registry import ModelRegistry
from ml_assets_tests.conftest import land
from ml_assets_tests.tables import bikes, houses

SPECIES = {  # mean bill length, bill depth, flipper length, body mass; islands
    "Adelie": (38.8, 18.3, 190, 3700, ["Biscoe", "Dream", "Torgersen"]),
    "Chinstrap": (48.8, 18.4, 196, 3733, ["Dream"]),
    "Gentoo": (47.5, 15.0, 217, 5076, ["Biscoe"]),
}


def penguins(rows: int = 344, seed: int = 0) -> pd.DataFrame:
    """A table shaped like the Palmer penguins: text categories, whole numbers, gaps."""
    rng = np.random.default_rng(seed)
    species = rng.choice(list(SPECIES), size=rows, p=[0.44, 0.2, 0.36])
    means = np.array([SPECIES[s][:4] for s in species], dtype=float)
    table = pd.DataFrame(
        {
            "island": [rng.choice(SPECIES[s][4]) for s in species],
            "bill_length_mm": (means[:, 0] + rng.normal(0, 2.8, rows)).round(1),
            "bill_depth_mm": (means[:, 1] + rng.normal(0, 1.1, rows)).round(1),
            "flipper_length_mm": (means[:, 2] + rng.normal(0, 6, rows)).round(0),
            "body_mass_g": (means[:, 3] + rng.normal(0, 450, rows)).round(-1),
            "sex": rng.choice(["female", "male"], size=rows),
            "year": rng.choice([2007, 2008, 2009], size=rows),
            "species": species,
        }
    )
    table = table.astype({"sex": object, "flipper_length_mm": "Int64", "body_mass_g": "Int64"})
    table.loc[rng.choice(rows, 11, replace=False), "sex"] = None
    for column in ("bill_length_mm", "flipper_length_mm"):
        table.loc[rng.choice(rows, 2, replace=False), column] = None
    return table


@pytest.fixture
def team(tmp_path, monkeypatch):
    """An empty project of a team's, importable, with penguins.csv and houses.csv beside it."""
    package = f"team_{uuid.uuid4().hex[:10]}"
    root = make_project(tmp_path / "project", {}, package)
    monkeypatch.syspath_prepend(str(root))
    penguins().to_csv(tmp_path / "penguins.csv", index=False)
    houses().to_csv(tmp_path / "houses.csv", index=False)
    return root, package


def columns_of(path) -> dict:
    return yaml.safe_load(path.read_text())["attributes"]


def test_the_contract_is_inferred_with_types_ranges_categories_and_gaps(tmp_path, team):
    root, _ = team
    inferred = declaration("penguins", tmp_path / "penguins.csv", "species", root=root)
    attributes, notes = inferred.attributes, inferred.notes
    columns = attributes["columns"]
    assert attributes["task"] == "classification" and attributes["model"] == {
        "kind": "logistic_regression"
    }
    islands = ["Biscoe", "Dream", "Torgersen"]
    assert columns["island"] == {"type": "category", "allowed": islands}  # never missing
    assert columns["sex"] == {"type": "category", "allowed": ["female", "male"], "nullable": True}
    assert columns["species"] == {"type": "category", "allowed": ["Adelie", "Chinstrap", "Gentoo"]}
    # Only the implausible is refused: never negative; no maximum; nullable where values miss.
    assert columns["bill_length_mm"] == {"type": "number", "min": 0, "nullable": True}
    assert columns["bill_depth_mm"] == {"type": "number", "min": 0}
    assert columns["flipper_length_mm"] == {"type": "integer", "min": 0, "nullable": True}
    assert notes[("columns", "bill_length_mm")].startswith(
        "2 missing (nullable: the pipeline imputes them); seen from"
    )
    assert notes[("columns", "island")].startswith("never missing here: a missing value is")
    shares = penguins()["species"].value_counts(normalize=True)
    assert shares.min() < 0.2  # Chinstrap: accuracy would hide it
    assert attributes["gate"] == {"metric": "balanced_accuracy", "threshold": 0.3334}
    assert "always answering the most common class scores 0.3333" in notes[("gate", "threshold")]
    assert attributes["reference"]["stratify"] is True

    regression = declaration("houses", tmp_path / "houses.csv", "price", root=root).attributes
    assert regression["task"] == "regression" and regression["model"] == {"kind": "ridge"}
    assert regression["gate"] == {"metric": "r2", "threshold": 0.0}
    assert regression["columns"]["district"]["type"] == "category"


def test_new_model_refuses_what_it_cannot_start(tmp_path, team):
    root, _ = team
    with pytest.raises(ScaffoldError, match="has no column 'kind'; its columns are: island,"):
        write_model_declaration("penguins", tmp_path / "penguins.csv", "kind", root=root)
    with pytest.raises(ScaffoldError, match="cannot name a model"):
        write_model_declaration("Penguins!", tmp_path / "penguins.csv", "species", root=root)
    path, _ = write_model_declaration("penguins", tmp_path / "penguins.csv", "species", root=root)
    with pytest.raises(ScaffoldError, match="exists; pass --force"):
        write_model_declaration("penguins", tmp_path / "penguins.csv", "species", root=root)
    assert columns_of(path)["name"] == "penguins"


def test_dg_scaffold_defs_writes_the_same_inferred_file(tmp_path, team):
    import dagster as dg

    from ml_assets.declare.component import TabularModelScaffolder
    from ml_assets.declare.scaffold import ScaffoldParams, render

    root, package = team
    folder = root / package / "defs" / "penguins"
    folder.mkdir()
    request = dg.ScaffoldRequest(
        type_name="ml_assets.TabularModel",
        target_path=folder,
        scaffold_format="yaml",
        project_root=root,
        params=ScaffoldParams(source=str(tmp_path / "penguins.csv"), target="species"),
    )
    TabularModelScaffolder().scaffold(request)
    expected = render(declaration("penguins", tmp_path / "penguins.csv", "species", root=root))
    assert (folder / "defs.yaml").read_text() == expected
    assert declared_models(root)["penguins"].task.name == "classification"


def independent(table: pd.DataFrame, target: str, estimator, stratify: bool):
    """The pipeline of the README, built with scikit-learn alone on the file as pandas reads it."""
    X, y = table.drop(columns=[target]), table[target]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=42, stratify=y if stratify else None
    )
    runs = []  # consecutive columns of one kind, in the file's order, as the README says
    for name in X.columns:
        numeric = pd.api.types.is_numeric_dtype(X[name])
        if runs and runs[-1][0] == numeric:
            runs[-1][1].append(name)
        else:
            runs.append((numeric, [name]))
    transformers = [
        (
            f"t{index}",
            Pipeline([("i", SimpleImputer(strategy="median")), ("s", StandardScaler())])
            if numeric
            else Pipeline(
                [
                    ("i", SimpleImputer(strategy="most_frequent")),
                    (
                        "e",
                        OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=50),
                    ),
                ]
            ),
            columns,
        )
        for index, (numeric, columns) in enumerate(runs)
    ]
    model = Pipeline([("p", ColumnTransformer(transformers)), ("m", estimator)])
    return model.fit(X_train, y_train), X_test, y_test


def deploy(root, package, model, instance, run_config=None):
    defs = dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=root / package), shared_definitions()
    )
    result = defs.resolve_job_def(f"{model}_training_job").execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False
    )
    return defs, result


@pytest.mark.slow
def test_a_classification_with_categories_and_gaps_deploys_as_scikit_learn_alone_would(
    tmp_path, team, instance, data_dir, monkeypatch
):
    root, package = team
    write_model_declaration("penguins", tmp_path / "penguins.csv", "species", root=root)
    defs, result = deploy(root, package, "penguins", instance)
    assert result.success
    versions = ModelRegistry(data_dir=str(data_dir)).for_model("penguins")
    production = versions.production()
    table = pd.read_csv(tmp_path / "penguins.csv")
    model, X_test, y_test = independent(
        table, "species", LogisticRegression(max_iter=1000, random_state=42), stratify=True
    )
    assert production.metrics["accuracy"] == pytest.approx(
        accuracy_score(y_test, model.predict(X_test))
    )
    assert production.metrics["log_loss"] == pytest.approx(
        log_loss(y_test, model.predict_proba(X_test)), rel=1e-6
    )
    assert [row["class"] for row in production.card["per_class"]] == [
        "Adelie",
        "Chinstrap",
        "Gentoo",
    ]
    assert "roc_curve.png" not in production.card["attachments"]  # three classes: no ROC curve

    # Rows with gaps are scored as training treated them; the CLI and the model agree.
    fresh = penguins(rows=40, seed=9).drop(columns=["species"])
    source = tmp_path / "fresh.csv"
    fresh.to_csv(source, index=False)
    output = tmp_path / "scored.csv"
    monkeypatch.chdir(root)  # the CLI is about the project it runs in
    assert main(["predict", "--model", "penguins", str(source), "--output", str(output)]) == 0
    scored = pd.read_csv(output)
    probabilities = ["probability_Adelie", "probability_Chinstrap", "probability_Gentoo"]
    np.testing.assert_allclose(
        scored[probabilities], model.predict_proba(pd.read_csv(source)), rtol=1e-6, atol=1e-9
    )
    assert list(scored["prediction"]) == list(model.predict(pd.read_csv(source)))

    # Landed rows: a missing sex is accepted, an island outside the contract is refused.
    landing = LandingZone(data_dir=str(data_dir)).for_model("penguins")
    sensor = defs.resolve_sensor_def("penguins_landing_sensor")
    batch = penguins(rows=30, seed=4)
    batch.loc[3, "sex"] = None
    land(landing, "good.csv", batch)
    land(
        landing,
        "atlantis.csv",
        batch.assign(island=lambda t: t["island"].where(t.index != 7, "Atlantis")),
    )
    with dg.build_sensor_context(
        instance=instance, resources={"landing": LandingZone(data_dir=str(data_dir))}
    ) as context:
        tick = sensor(context)
    instance.add_dynamic_partitions(
        "penguins_landed_files", tick.dynamic_partitions_requests[0].partition_keys
    )
    ingestion = defs.resolve_job_def("penguins_ingestion_job")
    good = ingestion.execute_in_process(instance=instance, partition_key="good.csv")
    refused = ingestion.execute_in_process(
        instance=instance, partition_key="atlantis.csv", raise_on_error=False
    )
    assert good.success and refused.success  # refused: quarantined, an outcome
    assert not refused.get_asset_materialization_events()
    reason = json.loads((landing.quarantine_dir / "atlantis.csv.reason.json").read_text())
    assert reason["problems"][0]["column"] == "island" and reason["problems"][0]["rows"] == [8]
    assert "Atlantis" in reason["error"]


@pytest.mark.slow
def test_a_regression_with_categories_and_gaps_deploys_as_scikit_learn_alone_would(
    tmp_path, team, instance, data_dir
):
    root, package = team
    write_model_declaration("houses", tmp_path / "houses.csv", "price", root=root)
    _, result = deploy(root, package, "houses", instance)
    assert result.success
    production = ModelRegistry(data_dir=str(data_dir)).for_model("houses").production()
    table = pd.read_csv(tmp_path / "houses.csv")
    model, X_test, y_test = independent(table, "price", Ridge(random_state=42), stratify=False)
    predicted = model.predict(X_test)
    assert production.metrics["mse"] == pytest.approx(mean_squared_error(y_test, predicted))
    assert production.metrics["r2"] == pytest.approx(r2_score(y_test, predicted))
    assert production.metrics["r2"] > 0.5


@pytest.mark.slow
def test_new_model_from_the_command_line_passes_dg_check_defs_and_trains(tmp_path, team):
    root, package = team
    data = tmp_path / "cli-data"
    env = project_env(root, DAGSTER_HOME=str(tmp_path / "home"), ML_ASSETS_DATA_DIR=str(data))
    (tmp_path / "home").mkdir()

    def run(*command):
        return subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False
        )

    created = run(
        str(BIN / "ml-assets"), "new-model", "penguins", "--from", str(tmp_path / "penguins.csv"),
        "--target", "species",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == str(root / package / "defs" / "penguins" / "defs.yaml")
    check = run(str(BIN / "dg"), "check", "defs", "--use-active-venv")
    assert check.returncode == 0, check.stdout + check.stderr
    listing = run(str(BIN / "ml-assets"), "list", "--names")
    assert listing.stdout.split() == ["penguins"]
    trained = run(
        str(BIN / "dagster"), "job", "execute", "-m", f"{package}.definitions",
        "-j", "penguins_training_job",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    status = json.loads(run(str(BIN / "ml-assets"), "status", "--json").stdout)
    assert status["model"] == "penguins" and status["production"]["metrics"]["accuracy"] > 0.9
    assert set(status["production"]["metrics"]) == {
        "accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc",
    }  # fmt: skip
    assert declared_models(root)["penguins"].classes == ("Adelie", "Chinstrap", "Gentoo")


@pytest.mark.slow
def test_a_leak_is_named_by_new_model_dg_check_defs_and_before_promotion(tmp_path, team):
    root, package = team
    bikes(1000).to_csv(tmp_path / "bikes.csv", index=False)  # no search: a quicker run
    env = project_env(root, DAGSTER_HOME=str(tmp_path / "home"), ML_ASSETS_DATA_DIR=str(tmp_path))
    (tmp_path / "home").mkdir()

    def run(*command):
        return subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False
        )

    leak = "'registered' and 'casual' together predict 'cnt' with r2 1.000"
    created = run(
        str(BIN / "ml-assets"), "new-model", "bikes", "--from", str(tmp_path / "bikes.csv"),
        "--target", "cnt",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert f"warning: {leak}" in created.stderr
    written = (root / package / "defs" / "bikes" / "defs.yaml").read_text()
    assert written.startswith(f"# Warning when loaded: {leak}")
    check = run(str(BIN / "dg"), "check", "defs", "--use-active-venv")
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"DeclarationWarning: {root / package / 'defs' / 'bikes' / 'defs.yaml'}: {leak}" in (
        check.stdout + check.stderr
    )
    trained = run(
        str(BIN / "dagster"), "job", "execute", "-m", f"{package}.definitions",
        "-j", "bikes_training_job",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    logged = trained.stdout + trained.stderr
    said = logged[logged.index("holdout_score_is_plausible: holdout R²") :].splitlines()[0]
    assert "is too good to be true (≥ 0.999): probably a leak; the model leans on" in said
    assert "'registered'" in said and "'casual'" in said
    assert logged.index("holdout_score_is_plausible") < logged.index("production is now")


def test_the_commands_say_a_declarations_warnings_in_one_line_each(
    tmp_path, team, data_dir, monkeypatch, capsys
):
    root, package = team
    bikes(1000).to_csv(tmp_path / "bikes.csv", index=False)
    monkeypatch.chdir(root)  # the CLI is about the project it runs in
    assert (
        main(["new-model", "bikes", "--from", str(tmp_path / "bikes.csv"), "--target", "cnt"]) == 0
    )
    capsys.readouterr()
    assert main(["status", "--model", "bikes"]) == 0
    err = capsys.readouterr().err
    leak = "'registered' and 'casual' together predict 'cnt' with r2 1.000"
    yaml_file = root / package / "defs" / "bikes" / "defs.yaml"
    assert f"warning: {yaml_file}: {leak}" in err
    assert "DeclarationWarning" not in err and "component.py" not in err
