"""`type: datetime` and `reference.split: time`: ISO 8601 text (any offset) or timestamps kept
in UTC, refused with their rows when they are not times or out of bounds, learnt as declared
calendar parts, and the latest rows as the holdout; each against pandas and scikit-learn."""

import math
import re

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml_assets.declare.component import TabularModel
from ml_assets.declare.errors import DeclarationError
from ml_assets.learn.contract import ContractViolation, validate
from ml_assets.learn.modeling import build_pipeline, model_input
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.splits import HOLDOUT, reference_split, row_ids
from ml_assets.serve.app import ServiceSettings, create_app
from ml_assets_tests.serve.test_app import deploy


def trips_table(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """Taxi fares: a start time written with assorted offsets, a distance, a vendor."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 90 * 24 * 60, rows), unit="min"
    )
    hour = start.hour.to_numpy()
    offsets = rng.choice(["Z", "+02:00", "-05:00"], rows)
    written = [
        (time.tz_convert("UTC" if o == "Z" else f"Etc/GMT{-int(o[:3]):+d}")).strftime(
            "%Y-%m-%dT%H:%M:%S"
        )
        + o
        for time, o in zip(start, offsets, strict=True)
    ]
    distance = rng.gamma(2.0, 3.0, rows).round(2)
    vendor = rng.choice(["cab", "ride"], rows)
    fare = 3 + 2.5 * distance + np.where((hour >= 17) & (hour <= 19), 6.0, 0.0)
    fare = fare + np.where(start.day_of_week.to_numpy() >= 5, 2.0, 0.0) + rng.normal(0, 1, rows)
    return pd.DataFrame(
        {"trip_id": np.arange(rows), "started_at": written, "distance": distance,
         "vendor": vendor, "fare": fare.round(2)}
    )  # fmt: skip


COLUMNS = {
    "trip_id": {"type": "integer", "role": "id"},
    "started_at": {"type": "datetime", "min": "2023-01-01"},
    "distance": {"type": "number", "min": 0},
    "vendor": {"type": "category"},
    "fare": {"type": "number"},
}


def trips(tmp_path, columns=None, **reference):
    path = tmp_path / "trips.csv"
    trips_table().to_csv(path, index=False)
    return TabularModel(
        name="trips",
        task="regression",
        reference={"path": str(path), **reference},
        columns=columns or COLUMNS,
        target="fare",
        estimator={"kind": "ridge"},
        gate={"metric": "rmse", "threshold": 100},
    )


def utc(written: pd.Series) -> pd.Series:
    """The times as pandas reads ISO 8601 text with offsets, in UTC without one."""
    return pd.to_datetime(written, format="ISO8601", utc=True).dt.tz_convert(None)


def test_times_are_kept_in_utc_and_refused_with_their_rows(tmp_path, data_dir):
    spec = trips(tmp_path).spec
    table = load_reference_table(spec)
    assert str(table["started_at"].dtype) == "datetime64[ns]"
    pd.testing.assert_series_equal(
        table["started_at"], utc(trips_table()["started_at"]).astype("datetime64[ns]")
    )
    bad = trips_table().head(6)
    bad.loc[2, "started_at"] = "the second of May"
    bad.loc[4, "started_at"] = "2019-05-01T10:00:00Z"
    with pytest.raises(ContractViolation) as caught:
        validate(spec, bad, source="batch.csv")
    problems = {p["check"]: p["rows"] for p in caught.value.problems}
    assert problems == {"coerce_dtype('datetime64[ns]')": [3]}
    bad.loc[2, "started_at"] = "2024-05-02"
    with pytest.raises(ContractViolation) as caught:
        validate(spec, bad, source="batch.csv")
    assert caught.value.problems[0]["check"] == "greater_than_or_equal_to(2023-01-01 00:00:00)"
    assert caught.value.problems[0]["rows"] == [5]


def test_a_time_is_the_same_row_whatever_its_offset(tmp_path, data_dir):
    spec = trips(tmp_path).spec
    row = trips_table().head(1).assign(started_at="2024-02-01T10:00:00+02:00")
    same = row.assign(started_at="2024-02-01T08:00:00Z")
    ids = [row_ids(spec, validate(spec, r, source="b.csv")).iloc[0] for r in (row, same)]
    assert ids[0] == ids[1]
    in_microseconds = validate(spec, row, source="b.csv").astype({"started_at": "datetime64[us]"})
    assert row_ids(spec, in_microseconds).iloc[0] == ids[0]  # as a Parquet file may hold it


def test_a_time_is_learnt_as_its_calendar_parts(tmp_path, data_dir):
    spec = trips(tmp_path).spec
    table = load_reference_table(spec)
    rows = model_input(spec, table)
    parts = ["year", "month", "day", "dayofweek", "hour"]
    assert list(rows.columns) == [f"started_at.{p}" for p in parts] + ["distance", "vendor"]
    times = utc(trips_table()["started_at"])
    pandas_names = ["year", "month", "day", "day_of_week", "hour"]  # Monday is 0
    independent = pd.DataFrame(
        {f"started_at.{p}": getattr(times.dt, n).astype(float) for p, n in zip(parts, pandas_names)}
    )
    independent["distance"] = trips_table()["distance"]
    independent["vendor"] = trips_table()["vendor"].astype(object)
    ours = build_pipeline(spec, "ridge", {}).fit(rows, table["fare"])
    numbers = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=50)
    theirs = Pipeline(
        [
            ("prepare", ColumnTransformer([
                ("numbers_1", numbers, [*independent.columns[:5], "distance"]),
                ("categories_2", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                           ("encode", encoder)]), ["vendor"]),
            ])),
            ("regressor", Ridge(random_state=42)),
        ]
    ).fit(independent, trips_table()["fare"])  # fmt: skip
    np.testing.assert_allclose(ours.predict(rows), theirs.predict(independent), rtol=1e-10)


def test_declared_parts_are_the_only_ones(tmp_path, data_dir):
    columns = {**COLUMNS, "started_at": {"type": "datetime", "parts": ["hour", "dayofweek"]}}
    spec = trips(tmp_path, columns).spec
    rows = model_input(spec, load_reference_table(spec))
    assert list(rows.columns[:2]) == ["started_at.hour", "started_at.dayofweek"]


def test_a_split_by_time_holds_out_the_latest_rows(tmp_path, data_dir):
    spec = trips(tmp_path, split="time", time_column="started_at", test_size=0.25).spec
    table = load_reference_table(spec)
    split = reference_split(spec, table)
    times = utc(trips_table()["started_at"])
    latest = times.sort_values(kind="stable").index[-math.ceil(0.25 * len(times)) :]
    assert set(split[split == HOLDOUT].index) == set(latest)
    assert times[split == HOLDOUT].min() >= times[split != HOLDOUT].max()


@pytest.mark.parametrize(
    ("columns", "reference", "attribute", "says"),
    [
        (None, {"split": "time"}, ("reference", "time_column"), "give the datetime column that"),
        (
            None,
            {"split": "time", "time_column": "distance"},
            ("reference", "time_column"),
            (
                "'distance' is a number column, not a datetime: a split by time needs a"
                " datetime column that is never missing; the columns that can order the rows:"
                " started_at"
            ),
        ),
        (
            None,
            {"split": "time", "time_column": "ended_at"},
            ("reference", "time_column"),
            "'ended_at' is not a column",
        ),
        (None, {"time_column": "started_at"}, ("reference", "time_column"), "split: time"),
        (
            {**COLUMNS, "started_at": {"type": "datetime", "nullable": True}},
            {"split": "time", "time_column": "started_at"},
            ("reference", "time_column"),
            "'started_at' is declared nullable: true; declare it nullable: false: a split by time",
        ),
    ],
)
def test_a_split_by_time_needs_a_complete_datetime(
    tmp_path, data_dir, columns, reference, attribute, says
):
    with pytest.raises(DeclarationError) as caught:
        trips(tmp_path, columns, **reference)._check_declaration()
    assert caught.value.attribute == attribute and says in str(caught.value)


@pytest.mark.parametrize(
    ("column", "says"),
    [
        ({"type": "datetime", "min": 5}, "is a date or a time such as 2024-01-31"),
        ({"type": "datetime", "max": "soon"}, "not 'soon'"),
        ({"type": "number", "parts": ["hour"]}, "parts applies to datetime columns only"),
        ({"type": "datetime", "parts": ["week"]}, "'year', 'quarter', 'month'"),
        ({"type": "number", "min": "2024-01-01"}, "min applies to number, integer (a number)"),
    ],
)
def test_datetime_settings_that_cannot_work_are_refused(tmp_path, data_dir, column, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        trips(tmp_path, {**COLUMNS, "started_at": column})


def test_the_service_reads_times_as_the_contract_does(tmp_path, data_dir):
    spec = trips(tmp_path).spec
    table = load_reference_table(spec)
    model = build_pipeline(spec, "ridge", {}).fit(model_input(spec, table), table["fare"])
    deploy(data_dir, spec, model=model)
    row = {"trip_id": 7, "started_at": "2024-03-01T19:30:00+02:00", "distance": 4.2,
           "vendor": "cab"}  # fmt: skip
    expected = model.predict(model_input(spec, validate(spec, pd.DataFrame([{**row, "fare": 0}]),
                                                        source="row")))  # fmt: skip
    settings = ServiceSettings(data_dir=str(data_dir), poll_seconds=0.05)
    with TestClient(create_app({spec.name: spec}, settings)) as client:
        answer = client.post("/models/trips/predict", json={"rows": [row]}).json()
        assert answer["predictions"][0]["trip_id"] == 7
        assert answer["predictions"][0]["prediction"] == pytest.approx(expected[0], rel=1e-12)
        early = client.post(
            "/models/trips/predict", json={"rows": [{**row, "started_at": "2020-01-01"}]}
        )
        assert early.status_code == 422
        assert early.json()["problems"][0]["check"] == (
            "greater_than_or_equal_to(2023-01-01 00:00:00)"
        )
        described = {c["name"]: c for c in client.get("/models/trips").json()["input"]}
        assert described["started_at"]["type"] == "datetime"
        assert described["started_at"]["min"] == "2023-01-01T00:00:00"
        assert described["trip_id"]["role"] == "id" and described["distance"]["role"] == "feature"
        garbled = client.post(
            "/models/trips/predict", json={"rows": [{**row, "started_at": "yesterday"}]}
        )
        assert garbled.status_code == 422
        assert garbled.json()["problems"][0]["column"] == "started_at"
