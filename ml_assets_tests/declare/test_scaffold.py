"""What `new-model` infers from tables as teams export them, and the note it writes beside
each choice: identifiers, a rare class, many categories, shares and percentages, rows
without a target; and a file that does not load yet is kept, with what to change."""

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml_assets.declare.project import write_model_declaration
from ml_assets.declare.scaffold import ScaffoldError, declaration, render
from ml_assets.store.registry import ModelRegistry
from ml_assets_tests.declare.test_new_model import deploy, team  # noqa: F401  (team: a fixture)


def credit(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Like a credit-default export from R: a row-number column, 3 % defaults."""
    rng = np.random.default_rng(seed)
    balance = rng.gamma(2.0, 400.0, rows).round(2)
    income = rng.normal(35_000, 12_000, rows).round(0)
    utilisation = rng.uniform(0, 0.98, rows).round(3)
    odds = np.exp(-6.5 + balance / 500 + 2 * utilisation)
    default = np.where(rng.uniform(size=rows) < odds / (1 + odds), "Yes", "No")
    return pd.DataFrame(
        {
            "": np.arange(1, rows + 1),  # the row names R writes, under an empty header
            "customer_id": [f"C{n:06d}" for n in rng.permutation(rows)],
            "name": [f"Person {n}" for n in range(rows)],
            "branch": rng.choice([f"branch {b:03d}" for b in range(80)], rows),
            "balance": balance,
            "income": income,
            "utilisation": utilisation,
            "late_pct": rng.uniform(0, 40, rows).round(1),
            "default": default,
        }
    )


def test_identifiers_are_declared_as_ids_and_noted(tmp_path):
    path = tmp_path / "credit.csv"
    credit().to_csv(path, index=False)
    inferred = declaration("credit", path, "default", root=tmp_path)
    columns, notes = inferred.attributes["columns"], inferred.notes
    for name in ("", "customer_id", "name"):
        assert columns[name]["role"] == "id", name
    assert "row number" in notes[("columns", "")]
    assert "by its name" in notes[("columns", "customer_id")]
    assert "almost every value distinct" in notes[("columns", "name")]
    assert "role" not in columns["branch"] and "role" not in columns["balance"]


def test_a_rare_class_is_gated_on_what_accuracy_hides(tmp_path):
    path = tmp_path / "credit.csv"
    table = credit()
    table.to_csv(path, index=False)
    attributes = declaration("credit", path, "default", root=tmp_path).attributes
    positives = (table["default"] == "Yes").mean()
    assert positives < 0.2
    assert attributes["gate"] == {"metric": "roc_auc", "threshold": 0.5}
    assert attributes["reference"]["stratify"] is True

    balanced = table.assign(
        default=np.where(table["balance"] > table["balance"].median(), "Yes", "No")
    )
    balanced.loc[:1599, "default"] = "No"  # 1600 + about 700 of 3000: a majority of 0.7...
    balanced.to_csv(path, index=False)
    gate = declaration("credit", path, "default", root=tmp_path).attributes["gate"]
    majority = balanced["default"].value_counts(normalize=True).max()
    assert gate["metric"] == "accuracy"
    assert gate["threshold"] >= majority  # always answering the majority does not pass
    assert gate["threshold"] == math.ceil(majority * 1e4) / 1e4


def test_a_large_table_gets_a_search_and_a_small_one_does_not(tmp_path):
    path = tmp_path / "credit.csv"
    credit(3000).to_csv(path, index=False)
    inferred = declaration("credit", path, "default", root=tmp_path)
    assert inferred.attributes["model"] == {
        "kind": "logistic_regression",
        "search": {
            "kinds": ["hist_gradient_boosting", "logistic_regression"],
            "budget_seconds": 60,
        },
        "decision_threshold": "tune",  # 3 % defaults
    }
    assert "over 1,000 rows" in inferred.notes[("model", "search")]
    credit(1000).to_csv(path, index=False)
    small = declaration("credit", path, "default", root=tmp_path).attributes["model"]
    assert small == {"kind": "logistic_regression", "decision_threshold": "tune"}


def test_ranges_refuse_only_the_implausible(tmp_path):
    path = tmp_path / "credit.csv"
    table = credit()
    table["income"] = table["income"] - 40_000  # some negative
    table.to_csv(path, index=False)
    columns = declaration("credit", path, "default", root=tmp_path).attributes["columns"]
    assert columns["balance"] == {"type": "number", "min": 0}
    assert columns["income"] == {"type": "integer"}  # no bound at all
    assert columns["utilisation"] == {"type": "number", "min": 0, "max": 1}
    assert columns["late_pct"] == {"type": "number", "min": 0, "max": 100}


def test_many_categories_get_max_categories_and_a_note(tmp_path):
    path = tmp_path / "credit.csv"
    credit().to_csv(path, index=False)
    inferred = declaration("credit", path, "default", root=tmp_path)
    assert inferred.attributes["columns"]["branch"] == {"type": "category", "max_categories": 50}
    assert inferred.notes[("columns", "branch")].startswith("never missing here: a missing")
    assert (
        "80 values: the 49 most frequent get a column each" in inferred.notes[("columns", "branch")]
    )
    table = credit()
    table["month"] = np.random.default_rng(0).choice(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
        len(table),
    )
    table["branch"] = table["branch"].str[:9]  # 50 branches: still listed
    table.loc[:49, "branch"] = [f"branch {n:02d}" for n in range(50)]
    table = table[table["branch"].str.len() == 9]
    table.to_csv(path, index=False)
    columns = declaration("credit", path, "default", root=tmp_path).attributes["columns"]
    months = sorted(table["month"].unique())
    assert columns["month"] == {"type": "category", "allowed": months}  # "july" is refused
    assert len(columns["branch"]["allowed"]) == table["branch"].nunique() <= 50


def test_rows_without_a_target_are_noted_not_refused(tmp_path):
    path = tmp_path / "credit.csv"
    table = credit().astype({"default": object})
    table.loc[[5, 9, 13], "default"] = None
    table.to_csv(path, index=False)
    inferred = declaration("credit", path, "default", root=tmp_path)
    assert inferred.attributes["columns"]["default"] == {
        "type": "category",
        "allowed": ["No", "Yes"],
    }
    assert "3 rows without one are left out" in inferred.notes[("columns", "default")]
    table["default"] = None
    table.to_csv(path, index=False)
    with pytest.raises(ScaffoldError, match="missing on every row"):
        declaration("credit", path, "default", root=tmp_path)


def test_the_notes_are_comments_of_a_file_that_reads_as_the_attributes(tmp_path):
    path = tmp_path / "credit.csv"
    credit().to_csv(path, index=False)
    inferred = declaration("credit", path, "default", root=tmp_path)
    text = render(inferred)
    assert yaml.safe_load(text)["attributes"] == inferred.attributes
    line = next(line for line in text.splitlines() if line.strip().startswith("customer_id:"))
    assert line.endswith(
        "# an identifier (by its name): kept beside the predictions, never a feature"
    )
    assert "threshold: 0.5  # imbalanced (the rarer class is" in text


def test_a_file_that_does_not_load_yet_is_kept_with_what_to_change(tmp_path, team):  # noqa: F811
    root, package = team
    path = tmp_path / "one_class.csv"
    credit().assign(default="No").to_csv(path, index=False)
    with pytest.raises(ScaffoldError) as caught:
        write_model_declaration("credit", path, "default", task="classification", root=root)
    written = root / package / "defs" / "credit" / "defs.yaml"
    assert written.is_file()
    message = str(caught.value)
    assert message.startswith(f"{written} is written, but does not load yet:")
    assert "a classifier needs two or more" in message
    assert message.endswith("then `dg check defs` (or start again with --force)")


def flights(rows: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Like a flights export: a departure time, a flight number, a tail number of hundreds of
    values, a carrier, a distance, and the arrival delay to predict."""
    rng = np.random.default_rng(seed)
    departure = pd.Timestamp("2013-01-01") + pd.to_timedelta(
        rng.integers(0, 365 * 24 * 60, rows), unit="min"
    )
    carrier = rng.choice(["UA", "AA", "B6", "DL", "EV"], rows)
    hour = departure.hour.to_numpy()
    delay = (
        rng.normal(0, 12, rows)
        + np.where(hour >= 17, 15.0, 0.0)
        + np.where(carrier == "EV", 10.0, 0.0)
        + (departure.month.to_numpy() == 12) * 8.0
    )
    return pd.DataFrame(
        {
            "time_hour": departure.strftime("%Y-%m-%dT%H:%M:%S"),
            "flight_no": rng.integers(1, 6000, rows),
            "tailnum": rng.choice([f"N{n:04d}" for n in range(300)], rows),
            "carrier": carrier,
            "distance": rng.integers(80, 4000, rows),
            "arr_delay": delay.round(1),
        }
    )


def test_timestamps_become_datetimes_and_identifiers_ids(tmp_path):
    path = tmp_path / "flights.csv"
    flights().to_csv(path, index=False)
    inferred = declaration("flights", path, "arr_delay", root=tmp_path)
    columns, notes = inferred.attributes["columns"], inferred.notes
    # One year of flights: the year is the same on every row, so it is not learnt.
    assert columns["time_hour"] == {
        "type": "datetime",
        "parts": ["month", "day", "dayofweek", "hour"],
    }
    assert notes[("columns", "time_hour")].endswith(
        "learnt as its month, day, dayofweek, hour (year: the same on every row)"
    )
    assert columns["flight_no"]["role"] == "id"
    assert columns["tailnum"] == {"type": "category", "max_categories": 50}
    daily = flights().assign(time_hour=lambda t: t["time_hour"].str[:10])  # dates, no hour
    daily.to_csv(path, index=False)
    dates = declaration("flights", path, "arr_delay", root=tmp_path).attributes["columns"]
    assert dates["time_hour"]["parts"] == ["month", "day", "dayofweek"]
    parquet = tmp_path / "flights.parquet"
    flights().assign(time_hour=lambda t: pd.to_datetime(t["time_hour"])).to_parquet(parquet)
    from_parquet = declaration("flights", parquet, "arr_delay", root=tmp_path)
    assert from_parquet.attributes["columns"]["time_hour"]["type"] == "datetime"


@pytest.mark.slow
def test_a_flights_table_deploys_as_the_readmes_pipeline_rebuilt_with_scikit_learn(
    tmp_path,
    team,  # noqa: F811
    instance,
    data_dir,
):
    """Timestamps, a flight number, hundreds of tail numbers: from `new-model` to production,
    with the metrics of the README's pipeline built here with scikit-learn alone."""
    root, package = team
    path = tmp_path / "flights.csv"
    table = flights()
    table.to_csv(path, index=False)
    written = write_model_declaration("flights", path, "arr_delay", root=root)[0].read_text()
    # Over 1 000 rows new-model declares a search; the Launchpad's budget 0 trains the kind.
    assert "    search: {kinds: [hist_gradient_boosting, ridge], budget_seconds: 60}  #" in written
    no_search = {"ops": {"flights__candidate_model": {"config": {"budget_seconds": 0}}}}
    _, result = deploy(root, package, "flights", instance, no_search)
    assert result.success
    production = ModelRegistry(data_dir=str(data_dir)).for_model("flights").production()

    times = pd.to_datetime(table["time_hour"], format="ISO8601")
    parts = {"month": "month", "day": "day", "dayofweek": "day_of_week", "hour": "hour"}
    X = pd.DataFrame(
        {f"time_hour.{p}": getattr(times.dt, n).astype(float) for p, n in parts.items()}
    )
    X["tailnum"], X["carrier"] = table["tailnum"].astype(object), table["carrier"].astype(object)
    X["distance"] = table["distance"].astype(float)
    X_train, X_test, y_train, y_test = train_test_split(
        X, table["arr_delay"], test_size=0.2, random_state=42
    )
    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categories = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=50)),
        ]
    )
    model = Pipeline(
        [
            ("prepare", ColumnTransformer([
                ("numbers_1", numbers, list(X.columns[:4])),
                ("categories_2", categories, ["tailnum", "carrier"]),
                ("numbers_3", numbers, ["distance"]),
            ])),
            ("regressor", Ridge(random_state=42)),
        ]
    ).fit(X_train, y_train)  # fmt: skip
    predicted = model.predict(X_test)
    assert production.metrics["mse"] == pytest.approx(mean_squared_error(y_test, predicted))
    assert production.metrics["r2"] == pytest.approx(r2_score(y_test, predicted))
