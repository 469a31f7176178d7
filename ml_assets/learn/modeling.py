"""The model a YAML file declares: its scikit-learn pipeline, and what the pipeline is given.

The pipeline, in full, so that anyone can rebuild it with scikit-learn alone:

    Pipeline([
        ("prepare", ColumnTransformer([  # feature columns (not the ids) in YAML order; each run
                                         # of consecutive columns encoded alike shares one
            ("numbers_<i>", Pipeline([("impute", SimpleImputer(strategy="median")),
                                      ("scale", StandardScaler())]), [...]),   # number, integer
            ("categories_<i>", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                         ("encode", OneHotEncoder(
                                             handle_unknown="infrequent_if_exist",
                                             max_categories=<max_categories: 50>,
                                             min_frequency=<min_frequency: None>))]),
             [...]),                                                           # category, boolean
            ("target_encoded_<i>", Pipeline([  # category columns with `encoding: target`
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("encode", TargetEncoder(cv=KFold(5, shuffle=True, random_state=42)  # regression
                                         or StratifiedKFold(5, shuffle=True, random_state=42))),
                ("scale", StandardScaler())]),
             [...]),
        ])),
        ("regressor" or "classifier", the kind's estimator: scikit-learn's defaults,
            LogisticRegression(max_iter=1000), LightGBM's LGBMRegressor/LGBMClassifier with
            verbose=-1, random_state=42 where the estimator takes one, then the YAML's params),
    ])

`hist_gradient_boosting` (HistGradientBoostingRegressor/Classifier) takes missing values and
categories natively: its number and one-hot runs are "passthrough" (no imputing, scaling or
encoding), the ColumnTransformer keeps the column names (verbose_feature_names_out=False,
set_output(transform="pandas")), and the estimator gets
categorical_features=[the category and boolean columns' names]; target-encoded columns are
encoded as above. (Not categorical_features="from_dtype": our categories are text, not
pandas' category dtype, so from_dtype would find none.) `lightgbm` goes through the declared
preprocessing like every other kind.

The transformers work column by column, so grouping does not change a value; one transformer
per run of columns rather than per column is five times faster to fit, predict and save.
The pipeline takes numbers as float64 and categories as text, NaN where missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ml_assets.learn.contract import utc_times
from ml_assets.learn.spec import ColumnSpec, ModelSpec

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline


# The YAML's part names where pandas names them otherwise (Monday is 0, 1 January is 1).
PANDAS_PARTS = {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}


def input_columns(column: ColumnSpec) -> list[str]:
    """The pipeline's columns of one feature: a datetime's calendar parts (`<name>.year`, ...),
    any other column itself."""
    if column.type == "datetime":
        return [f"{column.name}.{part}" for part in column.parts]
    return [column.name]


def _calendar_parts(column: ColumnSpec, times: pd.Series) -> dict[str, pd.Series]:
    """A datetime's declared parts as float64 numbers, NaN where the time is missing."""
    return {
        name: getattr(times.dt, PANDAS_PARTS.get(part, part)).astype("float64")
        for name, part in zip(input_columns(column), column.parts, strict=True)
    }


def model_input(
    spec: ModelSpec, table: pd.DataFrame, inputs: Sequence[ColumnSpec] | None = None
) -> pd.DataFrame:
    """The feature columns as the pipeline takes them: numbers as float64, categories and
    booleans as Python objects, a datetime as its calendar parts (float64), NaN wherever a
    value is missing.

    `inputs` are a model version's own feature columns when the declaration has changed since
    it was trained (`champion.version_inputs`): a column the table does not have is given as
    missing, which the pipeline imputes as it learnt to."""
    import numpy as np
    import pandas as pd

    columns = {}
    for column in spec.feature_columns if inputs is None else inputs:
        if column.name not in table:
            kind = "float64" if column.numeric or column.type == "datetime" else object
            missing = pd.Series(np.nan, index=table.index, dtype=kind)
            columns.update(dict.fromkeys(input_columns(column), missing))
            continue
        values = table[column.name]
        if column.type == "datetime":
            columns.update(_calendar_parts(column, utc_times(values)))
        elif column.numeric:
            columns[column.name] = (
                values
                if values.dtype == "float64"
                else pd.to_numeric(values, errors="coerce").astype("float64")
            )
        else:
            columns[column.name] = values.astype(object).where(values.notna(), np.nan)
    return pd.DataFrame(columns, index=table.index)


def records_input(spec: ModelSpec, rows: list[dict]) -> pd.DataFrame:
    """`model_input` of rows already validated to the contract's types (a JSON request),
    built column by column: a third of the time of a DataFrame of the records, converted."""
    import numpy as np
    import pandas as pd

    columns = {}
    for column in spec.feature_columns:
        values = [row[column.name] for row in rows]
        if column.type == "datetime":
            times = pd.Series(pd.to_datetime(values, utc=True)).dt.tz_convert(None)
            columns.update(_calendar_parts(column, times))
        elif column.numeric:
            columns[column.name] = np.array(values, dtype="float64")  # None is NaN
        else:
            columns[column.name] = pd.Series(  # object, as model_input's (not pandas' str)
                [np.nan if value is None else value for value in values], dtype=object
            )
    return pd.DataFrame(columns)


TARGET_ENCODER_FOLDS = 5  # the cross fitting that keeps a row's own target out of its code


def _encoding(column: ColumnSpec) -> tuple:
    """What a column's transformer is made of; consecutive columns alike share one."""
    if column.numeric or column.type == "datetime":
        return ("numbers",)
    if column.encoding == "target":
        return ("target_encoded",)
    return ("categories", column.max_categories, column.min_frequency)


def build_pipeline(
    spec: ModelSpec, kind: str, params: dict[str, Any], tune_threshold: bool = True
) -> Pipeline:
    """The declared preprocessing, then the estimator of the given kind and parameters,
    answering by the declared decision threshold (a tuned one only with `tune_threshold`)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder

    kind_of = spec.task.kinds[kind]
    native = kind_of.native_categories

    def prepare(encoding: tuple) -> Pipeline | str:
        if native and encoding[0] in ("numbers", "categories"):
            return "passthrough"  # the estimator takes missing values and categories itself
        if encoding[0] == "numbers":
            steps = [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        elif encoding[0] == "target_encoded":
            steps = [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("encode", TargetEncoder(cv=spec.task.folds(TARGET_ENCODER_FOLDS))),
                ("scale", StandardScaler()),
            ]
        else:
            _, max_categories, min_frequency = encoding
            encoder = OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                max_categories=max_categories,
                min_frequency=min_frequency,
            )
            steps = [("impute", SimpleImputer(strategy="most_frequent")), ("encode", encoder)]
        return Pipeline(steps)

    runs: list[tuple[tuple, list[str]]] = []  # (encoding, columns), in YAML order
    for column in spec.feature_columns:
        if runs and runs[-1][0] == _encoding(column):
            runs[-1][1].extend(input_columns(column))
        else:
            runs.append((_encoding(column), input_columns(column)))
    transformers = [
        (f"{encoding[0]}_{index}", prepare(encoding), columns)
        for index, (encoding, columns) in enumerate(runs, start=1)
    ]
    prepare_columns = ColumnTransformer(transformers)
    settings = {}
    if native:  # the columns keep their names, so the estimator knows the categories by name
        prepare_columns = ColumnTransformer(
            transformers, verbose_feature_names_out=False
        ).set_output(transform="pandas")
        settings["categorical_features"] = [
            name for encoding, columns in runs if encoding[0] == "categories" for name in columns
        ]
    estimator = spec.task.decided(
        kind_of.build({**settings, **params}), spec.decision_threshold, tune_threshold
    )
    return Pipeline([("prepare", prepare_columns), (spec.task.estimator_step, estimator)])


def estimator_of(spec: ModelSpec, model: Pipeline):
    """The fitted estimator at the end of a model's pipeline (inside its decision threshold)."""
    step = model.named_steps[spec.task.estimator_step]
    if spec.task.threshold_facts(model) is not None:
        return step.estimator_
    return step


def prediction_fingerprint(spec: ModelSpec, model: Pipeline, rows: pd.DataFrame) -> str:
    """A sha256 of a model's outputs on given rows: the same model, the same fingerprint."""
    import numpy as np

    values = spec.task.fingerprint_values(model, model_input(spec, rows))
    outputs = np.ascontiguousarray(np.asarray(values, dtype="float64").round(9) + 0.0)
    return hashlib.sha256(outputs.tobytes()).hexdigest()
