"""The bundled classification model (scikit-learn's breast cancer table, gated on accuracy >
0.85): its metrics against scikit-learn's own, the gate passing and failing, a batch of
shuffled labels never deployed, predictions with one probability per class, a class the
reference never had refused, and the gate's warnings."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml_assets import TabularModel
from ml_assets.cli import main, status_report
from ml_assets.declare.load_checks import DeclarationWarning
from ml_assets.definitions import defs
from ml_assets.learn.reference import bundled_table, load_reference_table
from ml_assets.learn.simulate import simulate_batch
from ml_assets.pipeline.automation import TRAINING_ASSETS
from ml_assets.pipeline.checks import (
    gate_config_class,
    not_worse_result,
    threshold_result,
)
from ml_assets.pipeline.naming import asset_key
from ml_assets.store.landing import LandingZone
from ml_assets.store.registry import ModelRegistry
from ml_assets_tests.conftest import CANCER, land, train_undeclared
from ml_assets_tests.pipeline.gate_inputs import measured
from ml_assets_tests.pipeline.test_automation import tick
from ml_assets_tests.serve.test_app import served_predictions
from ml_assets_tests.test_end_to_end import evaluations, keys, materialize, materialized, training

pytestmark = pytest.mark.slow

GateConfig = gate_config_class(CANCER)
CLASSES = ["benign", "malignant"]


def cancer_keys(*names):
    return keys(*names, spec=CANCER)


@pytest.fixture
def cancer_landing(data_dir):
    return LandingZone(data_dir=str(data_dir)).for_model(CANCER.name)


@pytest.fixture
def cancer_registry(data_dir):
    return ModelRegistry(data_dir=str(data_dir)).for_model(CANCER.name)


def train(instance, run_config=None):
    return materialize(instance, selection=training(CANCER), run_config=run_config)


def independent_holdout_metrics() -> dict:
    """The YAML's model rebuilt with scikit-learn alone, from the issue's description."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    X, y = bunch.data, bunch.target_names[bunch.target]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=42, stratify=y
    )
    prepare = ColumnTransformer(
        [
            (
                name,
                Pipeline([("i", SimpleImputer(strategy="median")), ("s", StandardScaler())]),
                [name],
            )
            for name in X.columns
        ]
    )
    model = Pipeline([("p", prepare), ("m", LogisticRegression(max_iter=1000, C=1.0))])
    model.fit(X_train, y_train)
    predicted, probabilities = model.predict(X_test), model.predict_proba(X_test)
    assert list(model.classes_) == CLASSES
    return {
        "accuracy": accuracy_score(y_test, predicted),
        "balanced_accuracy": balanced_accuracy_score(y_test, predicted),
        "f1_macro": f1_score(y_test, predicted, average="macro"),
        "log_loss": log_loss(y_test, probabilities),
        "roc_auc": roc_auc_score(y_test == "malignant", probabilities[:, 1]),
    }


def test_the_reference_table_has_its_classes_by_name():
    table = load_reference_table(CANCER)
    assert CANCER.classes == tuple(CLASSES)
    assert sorted(table["target"].unique()) == CLASSES
    assert table.shape == bundled_table("breast_cancer").shape == (569, 31)


def test_the_gate_passes_with_scikit_learns_own_metrics_and_the_card_shows_the_classes(
    instance, cancer_registry
):
    result = train(instance)
    assert result.success
    assert evaluations(result)["accuracy_above_threshold"] is True
    production = cancer_registry.production()
    expected = independent_holdout_metrics()
    for name, value in expected.items():
        assert production.metrics[name] == pytest.approx(value, rel=1e-6), name
    assert production.metrics["accuracy"] > 0.85
    card = production.card
    assert card["task"] == "classification" and card["holdout_rows"] == 114
    assert [row["class"] for row in card["per_class"]] == CLASSES
    assert sum(row["support"] for row in card["per_class"]) == 114
    assert {"confusion_matrix.png", "roc_curve.png", "permutation_importance.png"} <= set(
        card["attachments"]
    )
    metadata = instance.get_latest_materialization_event(asset_key(CANCER, "production_model"))
    markdown = metadata.asset_materialization.metadata["model_card"].value
    assert "| malignant |" in markdown and markdown.count("data:image/png;base64,") == 3
    assert "| feature | worsening of accuracy when shuffled | ± std |" in markdown
    assert "| log loss |" in markdown and "| ROC AUC |" in markdown


def test_a_gate_that_fails_keeps_production(instance, cancer_registry):
    assert train(instance).success
    deployed = cancer_registry.production().version
    strict = {"ops": {"breast_cancer__deployment_gate": {"config": {"threshold": 0.99}}}}
    failing = train(instance, strict)
    assert failing.success  # a refusal is an outcome
    assert evaluations(failing)["accuracy_above_threshold"] is False
    tags = instance.get_run_by_id(failing.run_id).tags
    assert (tags["ml_assets/decision"], tags["ml_assets/production_version"]) == (
        "refused",
        deployed,
    )
    assert "not above the threshold 0.99" in tags["ml_assets/reason"]
    assert "production_model" not in materialized(failing)
    assert cancer_registry.production().version == deployed
    record = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(asset_key(CANCER, "model_metrics"), "accuracy_above_threshold")
    )
    assert "not above the threshold 0.99" in record.event.asset_check_evaluation.description


def ingest(instance, landing, name, table):
    land(landing, name, table)
    tick(instance, landing, model=CANCER.name)
    return materialize(instance, selection=cancer_keys("raw_batches"), partition_key=name)


def test_a_batch_of_shuffled_labels_is_never_deployed(instance, cancer_landing, cancer_registry):
    assert train(instance).success
    champion = cancer_registry.production().version
    reference = load_reference_table(CANCER)
    batch = simulate_batch(CANCER, reference, rows=400, seed=5)
    batch["target"] = np.random.default_rng(0).permutation(batch["target"].to_numpy())
    assert ingest(instance, cancer_landing, "shuffled.csv", batch).success  # well-formed
    # Even a gate that forgives a lot of accuracy keeps it out: its log loss got worse.
    forgiving = {"ops": {"breast_cancer__deployment_gate": {"config": {"tolerance_absolute": 0.2}}}}
    retrain = train(instance, forgiving)
    assert evaluations(retrain)["accuracy_above_threshold"] is True
    assert evaluations(retrain)["not_worse_than_production"] is False
    assert "production_model" not in materialized(retrain)
    assert cancer_registry.production().version == champion
    record = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(asset_key(CANCER, "model_metrics"), "not_worse_than_production")
    )
    description = record.event.asset_check_evaluation.description
    assert "candidate accuracy is" in description  # within the forgiving tolerance
    assert "candidate log loss is" in description and "higher, 95 % interval +" in description
    gate = forgiving["ops"]["breast_cancer__deployment_gate"]["config"]
    better = train(
        instance,
        {"ops": {"breast_cancer__deployment_gate": {"config": {**gate, "promote_when": "better"}}}},
    )
    assert evaluations(better)["not_worse_than_production"] is False
    assert cancer_registry.production().version == champion


def test_predictions_carry_a_probability_per_class_and_match_the_cli(
    instance, cancer_landing, cancer_registry, tmp_path, capsys
):
    assert train(instance).success
    model = cancer_registry.load(cancer_registry.production().version)
    batch = simulate_batch(CANCER, load_reference_table(CANCER), rows=60, seed=8)
    ingestion = defs.resolve_job_def("breast_cancer_ingestion_job")
    land(cancer_landing, "fresh.csv", batch)
    tick(instance, cancer_landing, model=CANCER.name)
    assert ingestion.execute_in_process(instance=instance, partition_key="fresh.csv").success
    stored = pd.read_parquet(cancer_landing.root / "storage" / "predictions" / "fresh.csv.parquet")
    features = batch.drop(columns=["target"])
    expected = model.predict_proba(features)
    np.testing.assert_allclose(stored[["probability_benign", "probability_malignant"]], expected)
    np.testing.assert_allclose(stored.filter(like="probability_").sum(axis=1), 1.0)
    assert list(stored["prediction"]) == list(model.predict(features))
    served = served_predictions(cancer_landing.root.parent, CANCER, batch)  # the service agrees
    assert [p["prediction"] for p in served] == stored["prediction"].tolist()
    for label in CLASSES:
        column = stored[f"probability_{label}"].tolist()
        assert [p["probabilities"][label] for p in served] == column
    scored = instance.get_latest_materialization_event(asset_key(CANCER, "predictions"))
    live = scored.asset_materialization.metadata
    assert live["live_accuracy"].value == pytest.approx(
        accuracy_score(batch["target"], model.predict(features))
    )

    source = tmp_path / "new.csv"
    features.to_csv(source, index=False)
    output = tmp_path / "scored.csv"
    assert main(["predict", "--model", "breast_cancer", str(source), "--output", str(output)]) == 0
    written = pd.read_csv(output)
    assert list(written["prediction"]) == list(stored["prediction"])
    np.testing.assert_allclose(
        written[["probability_benign", "probability_malignant"]],
        stored[["probability_benign", "probability_malignant"]],
        rtol=1e-12,
    )


def test_a_class_the_reference_never_had_is_refused_in_the_users_values(instance, cancer_landing):
    batch = simulate_batch(CANCER, load_reference_table(CANCER), rows=20, seed=3)
    batch.loc[[4, 9], "target"] = "borderline"
    result = ingest(instance, cancer_landing, "new_class.csv", batch)
    assert result.success and not result.get_asset_materialization_events()  # an outcome
    [evaluation] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "matches_data_contract"
    ]
    assert (
        "column 'target': isin(['benign', 'malignant']) at rows [5, 10]" in evaluation.description
    )
    assert "values ['borderline', 'borderline']" in evaluation.description
    assert cancer_landing.whereabouts("new_class.csv") == "quarantined"


def test_the_gate_warns_on_a_tiny_holdout_and_a_metric_at_its_best():
    perfect = measured(
        CANCER, {"accuracy": 1.0, "log_loss": 0.02}, {"accuracy": 1.0, "log_loss": 0.01},
        versus={"accuracy": (0.0, 0.0), "log_loss": (0.005, 0.015)}, rows=30,
    )  # fmt: skip
    for result in (
        threshold_result(CANCER, perfect, GateConfig()),
        not_worse_result(CANCER, perfect, GateConfig()),
    ):
        warnings = result.metadata["warnings"].value
        assert any("30 rows (under 50)" in warning for warning in warnings)
        assert any("at its best possible value" in warning for warning in warnings)
        assert "Warning:" in result.description
    refused = not_worse_result(CANCER, perfect, GateConfig())
    assert not refused.passed  # accuracy ties at 1.0, but the log loss is detectably worse
    allowed = not_worse_result(CANCER, perfect, GateConfig(log_loss_tolerance_relative=1.5))
    assert allowed.passed  # 0.015 worse is allowed


@pytest.mark.parametrize(
    ("interval", "config", "passed"),
    [
        ((-0.03, 0.03), GateConfig(), True),
        ((-0.04, -0.005), GateConfig(), False),  # detectably lower
        ((-0.04, -0.005), GateConfig(tolerance_absolute=0.02), True),  # may fall by 0.02
        ((-0.06, -0.025), GateConfig(tolerance_absolute=0.02), False),
        ((-0.02, 0.005), GateConfig(tolerance_relative=-0.01), False),  # must improve by 1 %
        ((0.0, 0.03), GateConfig(tolerance_relative=-0.01), True),
        ((0.005, 0.03), GateConfig(promote_when="better"), True),
        ((-0.005, 0.03), GateConfig(promote_when="better"), False),
    ],
)
def test_a_score_gate_points_the_other_way(interval, config, passed):
    candidate = 0.95 + sum(interval) / 2
    metrics = measured(
        CANCER, {"accuracy": candidate, "log_loss": 0.1}, {"accuracy": 0.95, "log_loss": 0.1},
        versus={"accuracy": interval}, rows=114,
    )  # fmt: skip
    assert not_worse_result(CANCER, metrics, config).passed is passed
    assert threshold_result(CANCER, metrics, config).passed is (candidate > 0.85)


def imbalanced_table(rows: int, signal: bool, seed: int = 0) -> pd.DataFrame:
    """3 % positives; a feature that tells them apart, or nothing but noise."""
    rng = np.random.default_rng(seed)
    positive = rng.random(rows) < 0.03
    score = rng.normal(0, 1, rows) + (4.0 * positive if signal else 0.0)
    return pd.DataFrame(
        {
            "score": score.round(4),
            "noise": rng.normal(0, 1, rows).round(4),
            "fraud": np.where(positive, "yes", "no"),
        }
    )


def fraud_model(path):
    return TabularModel(
        name="fraud",
        task="classification",
        reference={"path": str(path), "stratify": True},
        columns={
            "score": {"type": "number"},
            "noise": {"type": "number"},
            "fraud": {"type": "category", "allowed": ["no", "yes"]},
        },
        target="fraud",
        estimator={"kind": "logistic_regression"},
        gate={"metric": "accuracy", "threshold": 0.85},
    ).spec


@pytest.mark.parametrize("signal", [False, True], ids=["majority_answer", "real_signal"])
def test_an_imbalanced_table_gated_on_accuracy_needs_to_beat_the_constant_answer(
    signal, tmp_path, instance, data_dir
):
    path = tmp_path / "fraud.csv"
    table = imbalanced_table(3000, signal)
    table.to_csv(path, index=False)
    with pytest.warns(DeclarationWarning, match="a constant answer already scores accuracy"):
        spec = fraud_model(path)
    result = train_undeclared(spec, instance, TRAINING_ASSETS)
    assert result.success
    verdicts = evaluations(result)
    assert verdicts["accuracy_above_threshold"] is True  # 0.85 is no bar at 97 % "no"
    assert verdicts["beats_baseline"] is signal
    assert ("production_model" in materialized(result)) is signal
    [baseline] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "beats_baseline"
    ]
    train, holdout = train_test_split(
        table, test_size=0.2, random_state=42, stratify=table["fraud"]
    )
    constant = DummyClassifier(strategy="prior").fit(train[["score"]], train["fraud"])
    majority = accuracy_score(holdout["fraud"], constant.predict(holdout[["score"]]))
    assert baseline.metadata["baseline_accuracy"].value == pytest.approx(majority)
    assert "a constant answer already scores accuracy" in baseline.description
    if not signal:
        assert "not detectably better" in baseline.description


def test_a_declared_search_trains_the_best_trial_and_status_names_it(tmp_path, instance, data_dir):
    from sklearn.datasets import load_breast_cancer

    path = tmp_path / "cells.csv"
    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, -1]]
    frame = frame.rename(columns=lambda name: name.replace(" ", "_"))
    frame["target"] = np.where(frame["target"] == 1, "benign", "malignant")
    frame.to_csv(path, index=False)
    columns = {name: {"type": "number"} for name in frame.columns[:-1]}
    spec = TabularModel(
        name="cells",
        task="classification",
        reference={"path": str(path), "stratify": True},
        columns={**columns, "target": {"type": "category", "allowed": ["benign", "malignant"]}},
        target="target",
        estimator={
            "search": {
                "kinds": ["logistic_regression", "hist_gradient_boosting"],
                "budget_seconds": 6,
                "cv_folds": 3,
            }
        },
        gate={"metric": "accuracy", "threshold": 0.8},
    ).spec
    assert spec.kind.name == "logistic_regression"  # without a kind: the first searched
    result = train_undeclared(spec, instance, TRAINING_ASSETS)
    [candidate] = [
        event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key == asset_key(spec, "candidate_model")
    ]
    chosen = candidate["chosen"].value
    assert chosen["kind"] in ("logistic_regression", "hist_gradient_boosting")
    assert candidate["model_kind"].value == chosen["kind"]
    assert candidate["trials"].value >= 1
    assert "| 1 | " in candidate["leaderboard"].value
    assert candidate["search_seconds"].value > 0
    version = ModelRegistry(data_dir=str(data_dir)).for_model("cells").production()
    assert version.card["model_choice"] == chosen
    production = status_report(spec, str(data_dir))["production"]  # status --json's
    assert (production["kind"], production["params"]) == (chosen["kind"], chosen["params"])
    no_search = {"ops": {"cells__candidate_model": {"config": {"budget_seconds": 0}}}}
    # the Launchpad's budget: 0 trains the declared kind without a search
    skipped = train_undeclared(spec, instance, ["candidate_model"], no_search)
    [metadata] = [
        event.materialization.metadata for event in skipped.get_asset_materialization_events()
    ]
    assert metadata["chosen"].value == {"kind": "logistic_regression", "params": {}}
    assert "leaderboard" not in metadata
    assert candidate["search_outcome"].value == "best_trial"
    # A budget no trial can finish in, as on a busy machine: the run goes on with a candidate.
    hurried = {"ops": {"cells__candidate_model": {"config": {"budget_seconds": 1e-6}}}}
    result = train_undeclared(spec, instance, ["candidate_model"], hurried)
    assert result.success
    [metadata] = [
        event.materialization.metadata for event in result.get_asset_materialization_events()
    ]
    assert metadata["search_outcome"].value == "fallback"
    assert metadata["chosen"].value["params"] == {}
    assert "no trial finished its 3 folds" in metadata["search_reason"].value
    assert metadata["trials_finished"].value == 0
