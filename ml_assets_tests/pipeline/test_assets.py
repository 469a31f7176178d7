"""Each asset of the diabetes model called as a plain function, the way Dagster University
tests them."""

import hashlib
import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

from ml_assets.learn.modeling import build_pipeline, model_input
from ml_assets.pipeline.deployment import gate_refusal
from ml_assets.pipeline.run_config import model_config_class
from ml_assets.pipeline.training import data_fingerprint
from ml_assets.store.landing import REASON_SUFFIX, LandingZone
from ml_assets.store.mlflow_mirror import MlflowMirror
from ml_assets.store.registry import ModelRegistry
from ml_assets_tests.conftest import DIABETES, asset, land

COLUMNS, FEATURES, TARGET = DIABETES.column_names, DIABETES.features, DIABETES.target
ModelConfig = model_config_class(DIABETES)


def read_reference_data(reference_asset) -> dg.Output:
    with dg.build_asset_context() as context:
        [output] = list(reference_asset(context))
    return output


def test_reference_data_carries_counts_schema_and_preview(reference):
    output = read_reference_data(asset("reference_data"))
    assert output.value.equals(reference)
    assert output.metadata["dagster/row_count"].value == 442
    assert [c.name for c in output.metadata["dagster/column_schema"].schema.columns] == COLUMNS
    preview = output.metadata["preview"].value
    assert preview.splitlines()[0].split("|")[1].strip() == "age"
    assert len(preview.splitlines()) == 2 + 5  # header, rule and five rows


def ingest(data_dir, name):
    """Run raw_batches for one file; return its output after checking its contract result."""
    with dg.build_asset_context(partition_key=name) as context:
        output, check = list(
            asset("raw_batches")(context, landing=LandingZone(data_dir=str(data_dir)))
        )
    assert check.passed and check.check_name == "matches_data_contract"
    return output


def test_a_good_batch_is_validated_and_archived(data_dir, landing, reference):
    path = land(landing, "good.csv", reference.head(20)[COLUMNS[::-1]])
    original = path.read_bytes()
    output = ingest(data_dir, "good.csv")
    assert list(output.value.columns) == [*COLUMNS, "row_id"]
    expected_ids = [
        hashlib.sha256(row.round(9).tobytes()).hexdigest()[:16]
        for row in reference.head(20)[COLUMNS].to_numpy(dtype="float64")
    ]
    assert output.value["row_id"].tolist() == expected_ids
    assert len(output.value) == 20
    assert (landing.archive_dir / "good.csv").read_bytes() == original
    assert landing.pending_files() == []
    assert output.metadata["file"].value == "good.csv"
    assert landing.archive_dir == data_dir / "diabetes" / "archive"


def refuse(instance, data_dir, name):
    """Run raw_batches for a file its contract refuses: the run, its one check result."""
    instance.add_dynamic_partitions("diabetes_landed_files", [name])
    result = dg.materialize(
        [asset("raw_batches")],
        partition_key=name,
        instance=instance,
        resources={"landing": LandingZone(data_dir=str(data_dir))},
    )
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "matches_data_contract" and not check.passed
    return result, check


def test_a_bad_batch_is_quarantined_with_a_reason(instance, data_dir, landing, reference):
    bad = reference.head(20).astype(object)
    bad.loc[[3, 4], "bmi"] = "abc"
    path = land(landing, "bad.csv", bad)
    original = path.read_bytes()
    result, check = refuse(instance, data_dir, "bad.csv")
    assert result.success  # a refusal is an outcome: the file is not ingested, nothing broke
    assert result.get_asset_materialization_events() == []
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert "bad.csv" in check.description
    assert "column 'bmi'" in check.description and "rows [4, 5]" in check.description
    assert (landing.quarantine_dir / "bad.csv").read_bytes() == original
    reason = json.loads((landing.quarantine_dir / f"bad.csv{REASON_SUFFIX}").read_text())
    assert reason["problems"][0]["column"] == "bmi"
    assert reason["problems"][0]["rows"] == [4, 5]
    assert landing.ledger().as_dict() == {
        "landed": 1,
        "archived": 0,
        "quarantined": 1,
        "pending": 0,
    }
    tags = instance.get_run_by_id(result.run_id).tags
    assert tags["ml_assets/refused_file"] == "bad.csv" and tags["ml_assets/model"] == "diabetes"
    assert tags["ml_assets/reason"].startswith("bad.csv refused: column 'bmi'")


def test_a_refusal_is_one_line_for_the_console(instance, data_dir, landing, reference, capsys):
    bad = reference.head(20).astype(object)
    bad.loc[[3, 4], "bmi"] = "abc"
    bad.loc[6, "age"] = 300
    land(landing, "bad.csv", bad)
    capsys.readouterr()
    refuse(instance, data_dir, "bad.csv")
    logged = capsys.readouterr().err.splitlines()
    assert [line for line in logged if " - ERROR - " in line] == []  # no failure, no trace
    assert not [line for line in logged if "Traceback" in line or "Stack Trace" in line]
    [warning] = [line for line in logged if " - WARNING - " in line]  # the reason file: the rest
    assert warning.endswith(
        "bad.csv refused: column 'bmi': coerce_dtype('float64') at rows [4, 5] (and 1 more);"
        f" quarantined as bad.csv, every problem in bad.csv{REASON_SUFFIX}"
    )
    reason = json.loads((landing.quarantine_dir / f"bad.csv{REASON_SUFFIX}").read_text())
    assert [problem["column"] for problem in reason["problems"]] == ["bmi", "age"]


def test_an_unreadable_batch_is_quarantined(instance, data_dir, landing):
    land(landing, "garbage.csv", bytes(range(256)) * 4)
    refuse(instance, data_dir, "garbage.csv")
    assert (landing.quarantine_dir / "garbage.csv").read_bytes() == bytes(range(256)) * 4


def build_dataset(reference, batches):
    return asset("dataset")(reference_data=reference, raw_batches=batches, labels={}).value


def test_dataset_without_batches_is_the_reference_with_its_split(reference):
    table = build_dataset(reference, {})
    _, holdout = train_test_split(reference, test_size=0.2, random_state=42)
    assert len(table) == 442
    assert set(table.index[table["split"] == "holdout"]) == set(holdout.index)
    assert (table["source"] == "reference").all()


def test_dataset_deduplicates_and_keeps_assignments_stable(reference):
    before = build_dataset(reference, {})
    new_rows = reference.head(30).assign(target=lambda t: t["target"] + 1000 - 999)
    batches = {"b.csv": pd.concat([new_rows, reference.head(5), new_rows.head(3)])}
    after = build_dataset(reference, batches)
    assert len(after) == 442 + 30  # copies of reference rows and repeated rows are dropped
    merged = before.merge(after, on="row_id", suffixes=("_before", "_after"))
    assert len(merged) == 442
    assert (merged["split_before"] == merged["split_after"]).all()
    assert (after.loc[after["source"] == "b.csv", "row_id"].isin(after["row_id"])).all()


def test_dataset_keeps_the_first_of_rows_repeated_across_batches(reference):
    first = reference.iloc[:40].assign(target=lambda t: t["target"] + 1)
    second = pd.concat(
        [first.iloc[:3], reference.iloc[40:60].assign(target=lambda t: t["target"] + 2)]
    )
    result = asset("dataset")(
        reference_data=reference, raw_batches={"b.csv": second, "a.csv": first}, labels={}
    )
    table = result.value
    assert len(table) == 442 + 40 + 20
    assert table["row_id"].is_unique
    assert (table["source"].value_counts()[["reference", "a.csv", "b.csv"]] == [442, 40, 20]).all()
    assert result.metadata["duplicate_rows_dropped"].value == 3


def test_a_repeated_reference_row_keeps_the_reference_flow_split(reference):
    # The reference flow splits by position; a repeat inside the table is dropped after that.
    doubled = pd.concat([reference.iloc[[7]], reference], ignore_index=True)  # 0 and 8 repeat
    table = build_dataset(doubled, {})
    _, holdout = train_test_split(np.arange(len(doubled)), test_size=0.2, random_state=42)
    kept = np.delete(np.arange(len(doubled)), 8)
    expected = np.where(np.isin(kept, holdout), "holdout", "train")
    assert len(table) == 442
    assert (table["split"].to_numpy() == expected).all()


def test_data_fingerprint_is_the_sorted_ids_of_each_split(reference):
    table = build_dataset(reference, {})
    ids = {
        split: sorted(int(i, 16) for i in table.loc[table["split"] == split, "row_id"])
        for split in ("train", "holdout")
    }
    expected = hashlib.sha256(
        len(ids["holdout"]).to_bytes(8, "little")
        + b"".join(i.to_bytes(8, "little") for i in ids["train"] + ids["holdout"])
    ).hexdigest()
    assert data_fingerprint(table) == expected
    assert data_fingerprint(table.sample(frac=1, random_state=0)) == expected
    row = table.index[table["split"] == "train"][0]
    flipped = table.assign(split=table["split"].where(table.index != row, "holdout"))
    assert data_fingerprint(flipped) != expected


def test_data_fingerprint_of_repeated_ids_does_not_depend_on_row_order(reference):
    table = build_dataset(reference, {}).head(20)
    repeated = pd.concat([table, table.assign(split="holdout"), table.assign(split="train")])
    shuffled = repeated.sample(frac=1, random_state=1)
    assert data_fingerprint(shuffled) == data_fingerprint(repeated)
    assert data_fingerprint(repeated) != data_fingerprint(table)


def test_features_drop_incomplete_and_implausible_rows(reference):
    table = build_dataset(reference, {})
    table.loc[0, "bmi"] = np.nan
    table.loc[1, "age"] = 500.0
    output = asset("features")(table)
    assert len(output.value) == 440
    assert output.metadata["rows_dropped_incomplete"].value == 1
    assert output.metadata["rows_dropped_implausible"].value == 1


def metrics_of(model, table, data_dir):
    with dg.build_asset_context() as context:
        return asset("model_metrics")(
            context,
            candidate_model=model,
            features=table,
            registry=ModelRegistry(data_dir=str(data_dir)),
            mlflow=MlflowMirror(),
        ).value


def test_baseline_reproduces_the_reference_flow(reference, data_dir):
    """With no landed files, the candidate's holdout MSE is scikit-learn's own number."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    expected = mean_squared_error(y_test, LinearRegression().fit(X_train, y_train).predict(X_test))

    table = asset("features")(build_dataset(reference, {})).value
    model = asset("candidate_model")(ModelConfig(), table).value
    metrics = metrics_of(model, table, data_dir)
    assert metrics["candidate"]["mse"] == pytest.approx(expected, rel=1e-9)
    assert metrics["production"] is None
    assert (metrics["training_rows"], metrics["holdout_rows"]) == (353, 89)


def test_metrics_score_production_on_the_same_rows(reference, registry, data_dir):
    table = asset("features")(build_dataset(reference, {})).value
    train = table[table["split"] == "train"]
    holdout = table[table["split"] == "holdout"]
    champion = build_pipeline(DIABETES, "ridge", {"alpha": 10}).fit(
        model_input(DIABETES, train), train[TARGET]
    )
    registry.promote(registry.register(champion, card={}).version)
    candidate = asset("candidate_model")(ModelConfig(), table).value
    metrics = metrics_of(candidate, table, data_dir)
    expected = mean_squared_error(holdout[TARGET], champion.predict(holdout[FEATURES]))
    assert metrics["production"]["mse"] == pytest.approx(expected)
    assert metrics["production_version"] == registry.production().version


def test_the_run_config_chooses_the_kind_and_overrides_the_yaml_params(reference):
    table = asset("features")(build_dataset(reference, {})).value
    ridge = asset("candidate_model")(ModelConfig(kind="ridge", params={"alpha": 4.5}), table)
    assert ridge.value.named_steps["regressor"].alpha == 4.5
    assert ridge.metadata["config"].value == {"kind": "ridge", "params": {"alpha": 4.5}}
    with pytest.raises(dg.Failure, match="does not take n_estimators"):
        asset("candidate_model")(ModelConfig(kind="ridge", params={"n_estimators": 3}), table)


def test_nothing_may_be_deployed_before_model_metrics_exists(instance):
    # production_model refuses with this sentence (test_end_to_end: its run's tags)
    assert gate_refusal(DIABETES, instance) == "model_metrics has never been materialized"
