"""`ml-assets` on the diabetes model: simulated batches, status, versions, rollback; choosing
the model among the declared ones."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ml_assets.cli import main
from ml_assets.learn.contract import validate
from ml_assets.learn.modeling import build_pipeline, model_input
from ml_assets.learn.simulate import simulate_batch
from ml_assets.learn.splits import HOLDOUT, reference_split, row_ids
from ml_assets_tests.conftest import DIABETES, land

COLUMNS, TARGET = DIABETES.column_names, DIABETES.target
DIABETES_ARGS = ["--model", "diabetes"]


def test_simulate_batch_writes_a_valid_batch_into_landing(data_dir, capsys):
    assert main(["simulate-batch", *DIABETES_ARGS, "--rows", "25", "--seed", "4"]) == 0
    path = capsys.readouterr().out.strip()
    assert path.startswith(str(data_dir / "diabetes" / "landing"))
    table = pd.read_csv(path)
    assert list(table.columns) == COLUMNS
    assert len(validate(DIABETES, table, source=path)) == 25
    leftovers = [p.name for p in (data_dir / "diabetes" / "landing").iterdir() if p.name[0] == "."]
    assert leftovers == []  # the temporary file was renamed into place


def test_simulate_batch_parquet(data_dir, capsys):
    assert main(["simulate-batch", *DIABETES_ARGS, "--rows", "10", "--format", "parquet"]) == 0
    assert len(pd.read_parquet(capsys.readouterr().out.strip())) == 10


def test_simulated_rows_follow_the_reference(reference):
    batch = simulate_batch(DIABETES, reference, rows=2000, seed=0)
    assert simulate_batch(DIABETES, reference, rows=50, seed=7).equals(
        simulate_batch(DIABETES, reference, rows=50, seed=7)
    )
    for column in COLUMNS:
        values = batch[column]
        assert values.between(reference[column].min(), reference[column].max()).all()
        assert abs(values.mean() - reference[column].mean()) < 0.15 * reference[column].std()
    assert set(batch["sex"].unique()) <= {1.0, 2.0}
    assert (batch["bmi"] == batch["bmi"].round(1)).all()  # the YAML's decimals
    # No near-copy of a reference holdout row: it would leak into training.
    holdout_ids = set(row_ids(DIABETES, reference[reference_split(DIABETES, reference) == HOLDOUT]))
    assert not holdout_ids & set(row_ids(DIABETES, batch))


@pytest.mark.parametrize("rows", ["0", "-3", "x"])
def test_simulate_batch_refuses_bad_row_counts(rows, data_dir):
    with pytest.raises(SystemExit):
        main(["simulate-batch", *DIABETES_ARGS, "--rows", rows])


def test_with_several_models_the_model_must_be_named(data_dir, capsys):
    assert main(["status"]) == 1
    error = capsys.readouterr().err
    assert "2 models are declared; choose one with --model: " in error
    assert "diabetes" in error and "breast_cancer" in error
    assert main(["status", "--model", "penguins"]) == 1
    assert "no model named 'penguins'; the models are: " in capsys.readouterr().err


def test_list_shows_every_model(data_dir, capsys):
    assert main(["list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["diabetes"]["task"] == "regression" and rows["diabetes"]["gate"] == "mse < 3000"
    assert rows["breast_cancer"]["gate"] == "accuracy > 0.85"
    assert rows["breast_cancer"]["production"] is None
    assert main(["list", "--names"]) == 0
    assert sorted(capsys.readouterr().out.split()) == ["breast_cancer", "diabetes"]


def test_status_json_before_anything(data_dir, capsys):
    assert main(["status", *DIABETES_ARGS, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "model": "diabetes",
        "task": "regression",
        "production": None,
        "previous": None,
        "baseline": None,
        "last_decision": None,
        "stale": None,  # no Dagster instance: unknown
        "live": None,
        "files": {"landed": 0, "archived": 0, "quarantined": 0, "pending": 0},
    }


def fitted(reference):
    return build_pipeline(DIABETES, "linear", {}).fit(
        model_input(DIABETES, reference), reference[TARGET]
    )


def test_status_reports_production_and_ledger(data_dir, registry, landing, reference, capsys):
    metrics = {"mse": 2900.5, "rmse": 53.8, "mae": 42.7, "r2": 0.45}
    version = registry.register(
        fitted(reference), card={"metrics": metrics, "estimator": "LinearRegression"}
    )
    registry.promote(version.version)
    land(landing, "a.csv", reference.head(3))
    land(landing, "b.csv", reference.head(3))
    landing.archive("a.csv")

    assert main(["status", *DIABETES_ARGS, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["production"]["version"] == version.version
    assert report["production"]["metrics"] == metrics
    assert report["files"] == {"landed": 2, "archived": 1, "quarantined": 0, "pending": 1}

    assert main(["status", *DIABETES_ARGS]) == 0
    text = capsys.readouterr().out
    assert version.version in text and "2 landed = 1 archived + 0 quarantined + 1 pending" in text
    assert "MSE 2900.50" in text


def test_the_console_script_honours_the_data_dir_variable(data_dir):
    console_script = Path(sys.executable).parent / "ml-assets"
    env_run = subprocess.run(
        [str(console_script), "simulate-batch", *DIABETES_ARGS, "--rows", "3"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert env_run.stdout.strip().startswith(str(data_dir / "diabetes"))


def test_models_lists_versions_and_rollback_warns_without_an_instance(
    data_dir, registry, reference, capsys, monkeypatch, tmp_path
):
    assert main(["models", *DIABETES_ARGS]) == 0
    assert "no model versions yet" in capsys.readouterr().out
    metrics = {"mse": 2900.0, "rmse": 53.9, "mae": 43.0, "r2": 0.45}
    model = fitted(reference)
    first = registry.register(model, card={"metrics": metrics, "estimator": "LinearRegression"})
    second = registry.register(model, card={"metrics": metrics, "estimator": "LinearRegression"})
    registry.promote(first.version)
    registry.promote(second.version)
    assert main(["models", *DIABETES_ARGS]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(second.version) and lines[0].endswith("[production]")
    assert lines[1].startswith(first.version) and lines[1].endswith("[previous]")

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["rollback", *DIABETES_ARGS]) == 0
    captured = capsys.readouterr()
    assert f"production: {second.version} -> {first.version}" in captured.out
    assert "not recorded in the UI's history" in captured.err
    assert registry.production().version == first.version
    assert main(["rollback", *DIABETES_ARGS, "not-a-version"]) == 1
    assert "is not in" in capsys.readouterr().err


def test_status_checks_the_ledger_against_dagster(data_dir, landing, reference, tmp_path, capsys):
    import dagster as dg

    home = tmp_path / ".dagster_home"  # found in the working directory
    home.mkdir()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("diabetes_landed_files", ["a.csv", "b.csv"])
        instance.add_dynamic_partitions("breast_cancer_landed_files", ["c.csv"])
    land(landing, "a.csv", reference.head(3))
    report = json.loads(
        (capsys.readouterr(), main(["status", *DIABETES_ARGS, "--json"]), capsys.readouterr())[
            2
        ].out
    )
    assert report["files"]["registered"] == 2
    assert report["files"]["lost"] == ["b.csv"]
    assert main(["status", *DIABETES_ARGS]) == 1
    assert "LOST: registered but nowhere: ['b.csv']" in capsys.readouterr().out


def status_json(capsys):
    capsys.readouterr()
    assert main(["status", *DIABETES_ARGS, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_status_says_the_baseline_and_the_gates_last_decision(instance, data_dir, capsys):
    from sklearn.datasets import load_diabetes
    from sklearn.dummy import DummyRegressor
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
    from sklearn.model_selection import train_test_split

    from ml_assets_tests.test_end_to_end import materialize

    promoted = materialize(instance)
    report = status_json(capsys)  # instance_for_test is the $DAGSTER_HOME status reads
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    constant = DummyRegressor(strategy="mean").fit(X_train, y_train).predict(X_test)
    assert report["baseline"]["mse"] == pytest.approx(mean_squared_error(y_test, constant))
    assert report["baseline"]["mae"] == pytest.approx(mean_absolute_error(y_test, constant))
    assert report["baseline"]["r2"] == pytest.approx(r2_score(y_test, constant))
    decision = report["last_decision"]
    assert (decision["outcome"], decision["run_id"]) == ("promoted", promoted.run_id)
    assert set(decision["checks"]) == {
        "mse_below_threshold",
        "not_worse_than_production",
        "beats_baseline",
    }
    assert all(check["passed"] for check in decision["checks"].values())
    beats = decision["checks"]["beats_baseline"]["metadata"]
    assert beats["baseline_mse"] == pytest.approx(mean_squared_error(y_test, constant))
    assert beats["interval_high"] < 0 and beats["confidence"] == 0.95

    gate = {"ops": {"diabetes__deployment_gate": {"config": {"threshold": 100.0}}}}
    refused = materialize(instance, run_config=gate)
    decision = status_json(capsys)["last_decision"]
    assert (decision["outcome"], decision["run_id"]) == ("refused", refused.run_id)
    assert decision["checks"]["mse_below_threshold"]["passed"] is False
    assert decision["checks"]["not_worse_than_production"]["passed"] is True
    assert decision["checks"]["not_worse_than_production"]["metadata"]["difference"] == 0.0
