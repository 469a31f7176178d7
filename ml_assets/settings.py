"""Deployment settings read from the environment when they are needed, never at import."""

import os
import re
from pathlib import Path

DATA_DIR_VARIABLE = "ML_ASSETS_DATA_DIR"
TIMEZONE_VARIABLE = "ML_ASSETS_TIMEZONE"
WEBHOOK_VARIABLE = "ML_ASSETS_ALERT_WEBHOOK_URL"
REVISION_VARIABLE = "ML_ASSETS_GIT_REVISION"
STORAGE_VARIABLE = "ML_ASSETS_STORAGE_URL"
MODEL_NAME_PATTERN = r"[a-z][a-z0-9_]*"


def data_dir(explicit: str | None = None) -> Path:
    """The data folder: the explicit value, else $ML_ASSETS_DATA_DIR, else ./data."""
    return Path(explicit or os.environ.get(DATA_DIR_VARIABLE) or "data").resolve()


def model_dir(model: str, explicit: str | None = None) -> Path:
    """One model's folder in the data folder; a name that would leave it is refused."""
    if not re.fullmatch(MODEL_NAME_PATTERN, model):
        raise ValueError(f"not a model name: {model!r} (lower-case letters, digits and _)")
    return data_dir(explicit) / model


def storage_url() -> str | None:
    """Where asset values live when not in each model's folder: $ML_ASSETS_STORAGE_URL (a
    folder or an fsspec URL such as s3://bucket/prefix), else None."""
    return os.environ.get(STORAGE_VARIABLE) or None


def schedule_timezone() -> str:
    """The timezone the weekly schedule runs in: $ML_ASSETS_TIMEZONE, else UTC."""
    return os.environ.get(TIMEZONE_VARIABLE) or "UTC"


def alert_webhook_url() -> str | None:
    """Where run-failure alerts are posted, if anywhere. A secret: never log it."""
    return os.environ.get(WEBHOOK_VARIABLE) or None
