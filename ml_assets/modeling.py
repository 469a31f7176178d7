"""The model family a run may choose, and how a model is scored."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

from ml_assets.contract import FEATURES

if TYPE_CHECKING:  # scikit-learn is imported by the steps that use it, not at load
    import pandas as pd
    from sklearn.pipeline import Pipeline


class ModelConfig(dg.Config):
    """The candidate model, chosen per run in the Launchpad."""

    model_kind: Literal["linear", "ridge", "gradient_boosting"] = Field(
        default="linear", description="linear: LinearRegression, the reference flow's model"
    )
    ridge_alpha: float = Field(default=1.0, gt=0, description="Ridge regularisation strength")
    n_estimators: int = Field(default=200, ge=1, description="gradient boosting: trees")
    learning_rate: float = Field(default=0.05, gt=0, description="gradient boosting: step")
    max_depth: int = Field(default=3, ge=1, description="gradient boosting: tree depth")
    subsample: float = Field(
        default=1.0, gt=0, le=1, description="gradient boosting: rows per tree"
    )
    random_seed: int = Field(default=42, description="seed for models that draw random numbers")


def build_pipeline(config: ModelConfig) -> Pipeline:
    """A scikit-learn Pipeline: standardise the features, then the chosen regressor."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if config.model_kind == "linear":
        regressor = LinearRegression()
    elif config.model_kind == "ridge":
        regressor = Ridge(alpha=config.ridge_alpha)
    else:
        regressor = GradientBoostingRegressor(
            n_estimators=config.n_estimators,
            learning_rate=config.learning_rate,
            max_depth=config.max_depth,
            subsample=config.subsample,
            random_state=config.random_seed,
        )
    return Pipeline([("scale", StandardScaler()), ("regressor", regressor)])


def regression_metrics(model: Pipeline, rows: pd.DataFrame, target: pd.Series) -> dict[str, float]:
    """MSE, RMSE, MAE and R² of a model on the given rows, as plain floats."""
    import numpy as np
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    predicted = model.predict(rows[FEATURES])
    mse = float(mean_squared_error(target, predicted))
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(mean_absolute_error(target, predicted)),
        "r2": float(r2_score(target, predicted)),
    }


def prediction_fingerprint(model: Pipeline, rows: pd.DataFrame) -> str:
    """A sha256 of a model's predictions on given rows: the same model, the same fingerprint."""
    import numpy as np

    predicted = np.ascontiguousarray(model.predict(rows[FEATURES]).round(9) + 0.0)
    return hashlib.sha256(predicted.tobytes()).hexdigest()
