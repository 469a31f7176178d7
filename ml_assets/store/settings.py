"""Deployment settings read from the environment when they are needed, never at import."""

import os
import re
from pathlib import Path

DATA_DIR_VARIABLE = "ML_ASSETS_DATA_DIR"
TIMEZONE_VARIABLE = "ML_ASSETS_TIMEZONE"
WEBHOOK_VARIABLE = "ML_ASSETS_ALERT_WEBHOOK_URL"
ALERT_KINDS_VARIABLE = "ML_ASSETS_ALERT_KINDS"
ALERT_KINDS = ("failure", "refused", "degraded", "promoted")
DEFAULT_ALERT_KINDS = "failure,refused,degraded"
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
    """Where alerts are posted, if anywhere. A secret: never log it."""
    return os.environ.get(WEBHOOK_VARIABLE) or None


def alert_kinds() -> frozenset[str]:
    """Which alerts are posted to the webhook: $ML_ASSETS_ALERT_KINDS, a comma-separated list
    of failure, refused, degraded and promoted (default: failure,refused,degraded). Every
    alert is logged."""
    text = os.environ.get(ALERT_KINDS_VARIABLE, DEFAULT_ALERT_KINDS)
    kinds = frozenset(kind.strip() for kind in text.split(",") if kind.strip())
    unknown = sorted(kinds - set(ALERT_KINDS))
    if unknown:
        raise ValueError(
            f"${ALERT_KINDS_VARIABLE}: unknown alert kind(s) {', '.join(unknown)};"
            f" allowed: {', '.join(ALERT_KINDS)}"
        )
    return kinds


THREADS_VARIABLE = "ML_ASSETS_THREADS"


def estimator_threads() -> int:
    """Threads one estimator may use: $ML_ASSETS_THREADS, else half the cores this process may
    run on (at least one), leaving the rest to whatever else the machine runs."""
    text = os.environ.get(THREADS_VARIABLE)
    if text:
        try:
            threads = int(text)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ValueError(f"${THREADS_VARIABLE}: give a whole number of threads, 1 or more")
        return threads
    return max(1, len(os.sched_getaffinity(0)) // 2)
