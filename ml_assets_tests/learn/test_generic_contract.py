"""What the diabetes table never exercises: integer, category and boolean columns, missing
values, the classes of a classification; the contract, row ids, simulated batches, drift,
the pipeline and the skops allow-list on such a table."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from ml_assets.declare.component import TabularModel
from ml_assets.learn.contract import ContractViolation, validate
from ml_assets.learn.modeling import build_pipeline, model_input
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.simulate import simulate_batch
from ml_assets.learn.splits import row_ids
from ml_assets.learn.tasks import TASKS
from ml_assets.pipeline.checks import drift_check
from ml_assets.store.registry import ALLOWED_UNTRUSTED_TYPES, ModelRegistry


def shop_table(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "spend": rng.gamma(2.0, 40.0, rows).round(2),
            "visits": rng.integers(1, 30, rows),
            "channel": rng.choice(["web", "store", "phone"], rows),
            "member": rng.choice([True, False], rows),
            "segment": rng.choice(["gold", "silver", "bronze"], rows),
        }
    )
    table["segment"] = np.where(table["spend"] > 100, "gold", table["segment"])
    table = table.astype({"spend": float, "member": object, "channel": object})
    table.loc[rng.choice(rows, 15, replace=False), "spend"] = None
    table.loc[rng.choice(rows, 10, replace=False), "member"] = None
    return table


COLUMNS = {
    "spend": {"type": "number", "min": 0, "max": 2000, "nullable": True},
    "visits": {"type": "integer", "min": 0, "max": 100},
    "channel": {"type": "category"},
    "member": {"type": "boolean", "nullable": True},
    "segment": {"type": "category", "allowed": ["bronze", "silver", "gold"]},
}


def shop(tmp_path, columns=None):
    """A classification of the segment, declared in Python as its YAML would."""
    path = tmp_path / "shop.csv"
    shop_table().to_csv(path, index=False)
    return TabularModel(
        name="shop",
        task="classification",
        reference={"path": str(path), "stratify": True},
        columns=columns or COLUMNS,
        target="segment",
        estimator={"kind": "logistic_regression"},
        gate={"metric": "accuracy", "threshold": 0.5},
    ).spec


@pytest.fixture
def spec(tmp_path, data_dir):
    return shop(tmp_path)


def refused(spec, table) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        validate(spec, table, source="batch.csv")
    return caught.value


def test_the_contract_types_each_column_and_keeps_missing_values(spec):
    table = load_reference_table(spec)
    assert str(table["visits"].dtype) == "Int64"
    assert str(table["member"].dtype) == "boolean" and table["member"].isna().sum() == 10
    assert table["spend"].isna().sum() == 15
    assert spec.classes == ("bronze", "silver", "gold")  # the YAML's order


def test_whole_numbers_booleans_and_categories_are_read_as_people_write_them(spec):
    rows = pd.DataFrame(
        {
            "spend": ["12.5", None],
            "visits": ["4.0", "7"],
            "channel": ["web", "fax"],  # no `allowed`: any text
            "member": ["yes", "False"],
            "segment": ["gold", "bronze"],
        }
    )
    valid = validate(spec, rows, source="batch.csv")
    assert valid["visits"].tolist() == [4, 7] and valid["member"].tolist() == [True, False]
    assert valid["channel"].tolist() == ["web", "fax"]


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("visits", "3.5", "column 'visits': integer at rows [2]"),
        ("visits", "many", "column 'visits': coerce_dtype('float64') at rows [2]"),
        ("visits", None, "column 'visits': not_nullable at rows [2]"),
        ("member", "maybe", "column 'member': coerce_dtype('boolean') at rows [2]"),
        ("segment", "platinum", "column 'segment': isin(['bronze', 'silver', 'gold']) at rows [2]"),
        ("spend", "-1", "column 'spend': greater_than_or_equal_to(0) at rows [2]"),
    ],
)
def test_a_value_outside_the_contract_is_named_with_its_column_and_row(spec, column, value, says):
    rows = pd.DataFrame(
        {"spend": ["1", "2"], "visits": ["1", "2"], "channel": ["web", "web"],
         "member": ["true", "true"], "segment": ["gold", "gold"]}
    )  # fmt: skip
    rows.loc[1, column] = value
    assert says in str(refused(spec, rows))


def test_each_run_of_columns_of_one_kind_shares_a_transformer_in_yaml_order(spec):
    pipeline = build_pipeline(spec, "logistic_regression", {})
    transformers = [
        (name, columns) for name, _, columns in pipeline.named_steps["prepare"].transformers
    ]
    assert transformers == [
        ("numbers_1", ["spend", "visits"]),
        ("categories_2", ["channel", "member"]),
    ]
    table = load_reference_table(spec)
    fitted = pipeline.fit(model_input(spec, table), table["segment"])
    names = list(fitted.named_steps["prepare"].get_feature_names_out())
    assert names[:2] == ["numbers_1__spend", "numbers_1__visits"]
    assert names[2:5] == [
        "categories_2__channel_phone",
        "categories_2__channel_store",
        "categories_2__channel_web",
    ]


def test_row_ids_hash_text_and_gaps_too(spec):
    table = load_reference_table(spec)
    ids = row_ids(spec, table)
    assert ids.is_unique and list(row_ids(spec, table.iloc[::-1])) == list(ids)[::-1]
    changed = table.head(3).copy()
    changed.loc[0, "channel"] = "somewhere else"
    changed.loc[1, "member"] = None
    assert list(row_ids(spec, changed) == row_ids(spec, table.head(3))) == [False, False, True]


def test_simulated_batches_keep_categories_gaps_and_the_contract(spec):
    reference = load_reference_table(spec)
    batch = simulate_batch(spec, reference, rows=500, seed=2)
    validate(spec, batch, source="simulated")  # every simulated row passes the contract
    assert set(batch["channel"]) <= set(reference["channel"])
    assert 0 < batch["member"].isna().mean() < 0.1 and 0 < batch["spend"].isna().mean() < 0.15
    assert str(batch["visits"].dtype) == "Int64"


def test_drift_in_a_category_is_found_by_chi_square(spec):
    reference = load_reference_table(spec)
    check = drift_check(spec)
    same = check(simulate_batch(spec, reference, rows=300, seed=4))
    assert same.passed, same.description
    shifted = simulate_batch(spec, reference, rows=300, seed=4).assign(channel="phone")
    result = check(shifted)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["drifted_columns"].value == ["channel"]
    assert result.metadata["per_column"].value["channel"]["test"] == "chi_square"


def test_every_kind_and_encoding_saves_and_loads_within_the_skops_allow_list(tmp_path, data_dir):
    untrusted = set()
    for task in ("regression", "classification"):
        untrusted |= saved_and_loaded(tmp_path / task, data_dir, task)
    untrusted |= tuned_thresholds_saved_and_loaded(tmp_path / "thresholds", data_dir)
    assert untrusted == ALLOWED_UNTRUSTED_TYPES  # what the kinds are made of, nothing more


def tuned_thresholds_saved_and_loaded(tmp_path, data_dir) -> set[str]:
    """The types skops does not trust in a decision threshold tuned for each metric it may be
    tuned for, each saved and loaded: a two-class table (gold or not)."""
    tmp_path.mkdir()
    path = tmp_path / "gold.csv"
    table = shop_table().assign(gold=lambda t: np.where(t["segment"] == "gold", "yes", "no"))
    table.drop(columns=["segment"]).to_csv(path, index=False)
    columns = {**{n: c for n, c in COLUMNS.items() if n != "segment"}, "gold": {"type": "category"}}
    untrusted = set()
    for metric in TASKS["classification"].threshold_metrics:
        spec = TabularModel(
            name="gold",
            task="classification",
            reference={"path": str(path)},
            columns=columns,
            target="gold",
            estimator={"kind": "logistic_regression", "decision_threshold": {"tune": metric}},
            gate={"metric": "roc_auc", "threshold": 0.5},
        ).spec
        reference = load_reference_table(spec)
        model = build_pipeline(spec, "logistic_regression", {})
        model.fit(model_input(spec, reference), reference["gold"])
        untrusted |= set(sio.get_untrusted_types(data=sio.dumps(model)))
        versions = ModelRegistry(data_dir=str(data_dir)).for_model("gold")
        loaded = versions.load(versions.register(model, card={}).version)
        rows = model_input(spec, reference)
        np.testing.assert_array_equal(loaded.predict(rows), model.predict(rows))
    return untrusted


def saved_and_loaded(tmp_path, data_dir, task) -> set[str]:
    """The types skops does not trust in each kind of the task, each saved and loaded."""
    tmp_path.mkdir()
    encoded = {**COLUMNS, "channel": {"type": "category", "encoding": "target"}}
    spec = shop(tmp_path, encoded) if task == "classification" else None
    table = shop_table().assign(visits=lambda t: t["visits"].astype(float))
    untrusted = set()
    for kind in TASKS[task].kinds:
        if task == "regression":
            columns = {**encoded, "spend_target": {"type": "number"}}
            path = tmp_path / "shop.csv"
            table.assign(spend_target=table["visits"] * 3.0).to_csv(path, index=False)
            spec = TabularModel(
                name="shop",
                task="regression",
                reference={"path": str(path)},
                columns=columns,
                target="spend_target",
                estimator={"kind": kind},
                gate={"metric": "mse", "threshold": 1e9},
            ).spec
        reference = load_reference_table(spec)
        params = {
            "gradient_boosting": {"n_estimators": 5},
            "random_forest": {"n_estimators": 5},
            "lightgbm": {"n_estimators": 5},
            "hist_gradient_boosting": {"max_iter": 5},
        }.get(kind, {})
        model = build_pipeline(spec, kind, params).fit(
            model_input(spec, reference), reference[spec.target]
        )
        data = sio.dumps(model)
        untrusted |= set(sio.get_untrusted_types(data=data))
        versions = ModelRegistry(data_dir=str(data_dir)).for_model(f"shop_{task}")
        version = versions.register(model, card={})
        loaded = versions.load(version.version)
        rows = model_input(spec, reference.head(20))
        np.testing.assert_array_equal(loaded.predict(rows), model.predict(rows))
    return untrusted


def test_metrics_of_classes_declared_out_of_alphabetical_order_are_scikit_learns(spec):
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    assert spec.classes == ("bronze", "silver", "gold")  # not sorted: log loss must not care
    table = load_reference_table(spec)
    model = build_pipeline(spec, "logistic_regression", {}).fit(
        model_input(spec, table), table["segment"]
    )
    rows, actual = model_input(spec, table), table["segment"].astype(str)
    metrics = spec.task.evaluate(model, rows, actual)
    probabilities = model.predict_proba(rows)  # columns in model.classes_ order (sorted)
    assert metrics["log_loss"] == pytest.approx(
        log_loss(actual, probabilities, labels=model.classes_), rel=1e-12
    )
    assert metrics["accuracy"] == pytest.approx(accuracy_score(actual, model.predict(rows)))
    assert metrics["roc_auc"] == pytest.approx(
        roc_auc_score(actual, probabilities, multi_class="ovr", labels=model.classes_), rel=1e-12
    )


def test_hist_gradient_boosting_takes_categories_and_missing_values_natively(tmp_path):
    """Its pipeline is scikit-learn's native categorical support, rebuilt here by hand."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    spec = shop(tmp_path)
    reference = load_reference_table(spec)
    rows = model_input(spec, reference)
    rows.loc[rows.index[:7], "spend"] = np.nan  # missing values reach the estimator as NaN
    rows.loc[rows.index[:5], "channel"] = np.nan
    ours = build_pipeline(spec, "hist_gradient_boosting", {}).fit(rows, reference["segment"])
    theirs = HistGradientBoostingClassifier(
        categorical_features=["channel", "member"], random_state=42
    ).fit(rows, reference["segment"])
    unseen = rows.head(30).assign(channel=["fax"] * 30)  # a category never trained on
    for table in (rows, unseen):
        np.testing.assert_array_equal(ours.predict_proba(table), theirs.predict_proba(table))
    assert list(ours.named_steps["classifier"].is_categorical_) == [False, False, True, True]
