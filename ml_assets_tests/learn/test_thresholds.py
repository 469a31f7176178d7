"""Decision thresholds for two classes: a declared probability, or one tuned on the training
rows with scikit-learn's TunedThresholdClassifierCV; checked against scikit-learn's own tuned
and fixed classifiers, on an imbalanced table where the default 0.5 is useless."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import (
    FixedThresholdClassifier,
    StratifiedKFold,
    TunedThresholdClassifierCV,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml_assets import TabularModel
from ml_assets.declare.errors import DeclarationError
from ml_assets.declare.scaffold import declaration
from ml_assets.learn.modeling import build_pipeline, model_input
from ml_assets.pipeline.automation import TRAINING_ASSETS
from ml_assets.store.registry import ModelRegistry, model_from_bytes, model_to_bytes
from ml_assets_tests.conftest import train_undeclared


def claims(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """About 6 % of policies claim; two features tell them apart, but not well."""
    rng = np.random.default_rng(seed)
    age, premium = rng.normal(0, 1, rows), rng.normal(0, 1, rows)
    odds = np.exp(-3.3 + 0.9 * age + 0.7 * premium)
    claim = np.where(rng.uniform(size=rows) < odds / (1 + odds), "yes", "no")
    return pd.DataFrame({"age": age.round(4), "premium": premium.round(4), "claim": claim})


def insured(path, threshold, metric="roc_auc"):
    return TabularModel(
        name="claims",
        task="classification",
        reference={"path": str(path), "stratify": True},
        columns={
            "age": {"type": "number"},
            "premium": {"type": "number"},
            "claim": {"type": "category", "allowed": ["no", "yes"]},
        },
        target="claim",
        estimator={"kind": "logistic_regression", "decision_threshold": threshold},
        gate={"metric": metric, "threshold": 0.5},
    ).spec


def scikit_learns(table: pd.DataFrame, wrap):
    """The README's pipeline of two number columns, its classifier wrapped by `wrap`."""
    X, y = table[["age", "premium"]], table["claim"]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=42, stratify=y
    )
    # Training rows in the file's order, as the features table keeps them: the tuner's
    # shuffled folds depend on the order.
    X_train, y_train = X_train.sort_index(), y_train.sort_index()
    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    model = Pipeline(
        [
            ("prepare", ColumnTransformer([("numbers_1", numbers, ["age", "premium"])])),
            ("classifier", wrap(LogisticRegression(max_iter=1000, random_state=42))),
        ]
    )
    return model.fit(X_train, y_train), X_test, y_test


def test_a_tuned_threshold_is_scikit_learns_and_answers_the_rare_class(
    tmp_path, instance, data_dir
):
    path = tmp_path / "claims.csv"
    table = claims()
    table.to_csv(path, index=False)
    assert 0.04 < (table["claim"] == "yes").mean() < 0.08
    spec = insured(path, "tune")  # the gate's ROC AUC is no threshold's: balanced accuracy
    assert spec.decision_threshold.tuned_for == "balanced_accuracy"
    result = train_undeclared(spec, instance, TRAINING_ASSETS)
    assert result.success
    production = ModelRegistry(data_dir=str(data_dir)).for_model("claims").production()

    tuned, X_test, y_test = scikit_learns(
        table,
        lambda estimator: TunedThresholdClassifierCV(
            estimator,
            scoring="balanced_accuracy",
            cv=StratifiedKFold(5, shuffle=True, random_state=42),
            response_method="predict_proba",
        ),
    )
    expected = tuned.named_steps["classifier"]
    facts = production.card["decision_threshold"]
    assert facts["threshold"] == pytest.approx(expected.best_threshold_, rel=1e-9)
    assert (facts["positive_class"], facts["tuned_for"]) == ("yes", "balanced_accuracy")
    assert facts["tuned_score"] == pytest.approx(expected.best_score_, rel=1e-9)
    balanced = balanced_accuracy_score(y_test, tuned.predict(X_test))
    assert production.metrics["balanced_accuracy"] == pytest.approx(balanced, rel=1e-9)
    untuned, X_test, y_test = scikit_learns(table, lambda estimator: estimator)
    at_half = balanced_accuracy_score(y_test, untuned.predict(X_test))
    assert at_half < 0.56  # the rare class is hardly ever answered at 0.5
    assert balanced > 0.65  # useful class predictions
    model = ModelRegistry(data_dir=str(data_dir)).for_model("claims").load(production.version)
    np.testing.assert_array_equal(model.predict(X_test), tuned.predict(X_test))  # as served


def test_a_declared_threshold_is_scikit_learns_fixed_one(tmp_path, data_dir):
    path = tmp_path / "claims.csv"
    table = claims()
    table.to_csv(path, index=False)
    spec = insured(path, 0.15)
    fixed, X_test, _ = scikit_learns(
        table,
        lambda estimator: FixedThresholdClassifier(
            estimator, threshold=0.15, response_method="predict_proba"
        ),
    )
    X_train, _, y_train, _ = train_test_split(
        table, table["claim"], test_size=0.2, random_state=42, stratify=table["claim"]
    )
    ours = build_pipeline(spec, "logistic_regression", {})
    ours.fit(model_input(spec, X_train), y_train)
    np.testing.assert_array_equal(ours.predict(model_input(spec, X_test)), fixed.predict(X_test))
    assert spec.task.threshold_facts(ours) == {"threshold": 0.15, "positive_class": "yes"}
    reloaded = model_from_bytes(model_to_bytes(ours), "a fixed threshold")  # skops, allow-listed
    np.testing.assert_array_equal(
        reloaded.predict(model_input(spec, X_test)), fixed.predict(X_test)
    )


@pytest.mark.parametrize("metric", ["accuracy", "balanced_accuracy", "f1_macro"])
def test_a_threshold_tuned_for_each_metric_saves_and_loads(tmp_path, data_dir, metric):
    path = tmp_path / "claims.csv"
    claims(600).to_csv(path, index=False)
    spec = insured(path, {"tune": metric})
    table = claims(600)
    model = build_pipeline(spec, "logistic_regression", {})
    model.fit(model_input(spec, table), table["claim"])
    assert spec.task.threshold_facts(model)["tuned_for"] == metric
    reloaded = model_from_bytes(model_to_bytes(model), f"tuned for {metric}")
    np.testing.assert_array_equal(
        reloaded.predict(model_input(spec, table)), model.predict(model_input(spec, table))
    )


@pytest.mark.parametrize(
    ("threshold", "task_or_target", "says"),
    [
        (1.5, None, "1.5 is not a probability between 0 and 1"),
        ({"tune": "roc_auc"}, None, "accuracy, balanced_accuracy, f1_macro"),
        ({"aim": "accuracy"}, None, "{tune: <metric>}"),
        (0.3, "regression", "applies to a classification of two classes"),
        (0.3, "three classes", "applies to two classes; 'claim' has 3: no, other, yes"),
    ],
)
def test_a_threshold_that_cannot_work_is_refused(
    tmp_path, data_dir, threshold, task_or_target, says
):
    path = tmp_path / "claims.csv"
    table = claims(400)
    if task_or_target == "three classes":
        table.loc[:60, "claim"] = "other"
    table.to_csv(path, index=False)
    model = TabularModel(
        name="claims",
        task="regression" if task_or_target == "regression" else "classification",
        reference={"path": str(path)},
        columns={
            "age": {"type": "number"},
            "premium": {"type": "number"},
            "claim": {"type": "number"} if task_or_target == "regression" else {"type": "category"},
        },
        target="claim",
        estimator={
            "kind": "ridge" if task_or_target == "regression" else "logistic_regression",
            "decision_threshold": threshold,
        },
        gate={"metric": "r2" if task_or_target == "regression" else "accuracy", "threshold": 0},
    )
    with pytest.raises(DeclarationError) as caught:
        _ = model.spec
    assert caught.value.attribute == ("model", "decision_threshold")
    assert says in str(caught.value)


def test_new_model_tunes_the_threshold_of_an_imbalanced_two_class_table(tmp_path):
    path = tmp_path / "claims.csv"
    claims().to_csv(path, index=False)
    inferred = declaration("claims", path, "claim", root=tmp_path)
    assert inferred.attributes["model"]["decision_threshold"] == "tune"
    assert "the rarer class is" in inferred.notes[("model", "decision_threshold")]
    balanced = claims().assign(claim=lambda t: np.where(t["age"] > 0, "yes", "no"))
    balanced.to_csv(path, index=False)
    model = declaration("claims", path, "claim", root=tmp_path).attributes["model"]
    assert "decision_threshold" not in model
