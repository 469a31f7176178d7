"""The MLflow mirror: each candidate tracked as a run of experiment `ml_assets/<model>` on the
team's MLflow server, and what the gate decided about it. Off unless a tracking URI is set
($MLFLOW_TRACKING_URI, or a model's `tracking.mlflow_uri`); MLflow is imported only then.

MLflow never decides or blocks: every call is bounded in time and retried little, and a
server that fails or cannot be reached is reported to the caller (`MirrorFailed`), which
warns and goes on. Our registry stays the source of truth.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import dagster as dg
from pydantic import Field

TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"  # MLflow's own
EXPERIMENT_PREFIX = "ml_assets/"
DECISION_TAG = "ml_assets.decision"  # pending, promoted or refused
REASON_TAG = "ml_assets.reason"  # the gate's sentence
VERSION_TAG = "ml_assets.version"  # our version id, once promoted
# MLflow retries a failing request for minutes by default: a run waits seconds at most.
BOUNDED = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
MAX_PARAM_CHARACTERS = 6000  # MLflow's limit on a param's value


class MirrorFailed(RuntimeError):
    """The MLflow server failed or could not be reached; nothing of ours depends on it."""


@contextlib.contextmanager
def _bounded() -> Iterator[None]:
    """MLflow's HTTP retries and timeout bounded for the calls inside, as MLflow reads them
    (from the environment, at each request)."""
    before = {name: os.environ.get(name) for name in BOUNDED}
    os.environ.update(BOUNDED)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class MlflowMirror(dg.ConfigurableResource):
    """Where candidates are tracked in MLflow, if anywhere."""

    tracking_uri: str | None = Field(
        default=None,
        description="the MLflow tracking server; default $MLFLOW_TRACKING_URI, else a model's"
        " tracking.mlflow_uri, else nothing is tracked",
    )

    def uri(self, declared: str | None) -> str | None:
        """The tracking URI for a model that declares `declared` (its tracking.mlflow_uri),
        or None: MLflow is off for it."""
        return declared or self.tracking_uri or os.environ.get(TRACKING_URI_VARIABLE) or None

    def track_candidate(
        self,
        uri: str,
        model: str,
        params: dict[str, object],
        metrics: dict[str, float],
        tags: dict[str, str],
    ) -> str:
        """One finished MLflow run for a candidate in experiment `ml_assets/<model>`, tagged
        `pending` until the gate decides: its id. Raises MirrorFailed."""
        from mlflow.entities import Metric, Param

        with self._client(uri) as client:
            name = f"{EXPERIMENT_PREFIX}{model}"
            experiment = client.get_experiment_by_name(name)
            experiment_id = (
                experiment.experiment_id if experiment else client.create_experiment(name)
            )
            run = client.create_run(experiment_id, tags={DECISION_TAG: "pending", **tags})
            stamp = run.info.start_time
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(key, float(value), stamp, 0) for key, value in metrics.items()],
                params=[
                    Param(key, str(value)[:MAX_PARAM_CHARACTERS]) for key, value in params.items()
                ],
            )
            client.set_terminated(run.info.run_id)
            return run.info.run_id

    def record_decision(
        self, uri: str, run_id: str, decision: str, reason: str, version: str | None = None
    ) -> None:
        """Tags a candidate's run with the gate's decision and why (and our version id when
        promoted). Raises MirrorFailed."""
        from mlflow.entities import RunTag

        tags = [RunTag(DECISION_TAG, decision), RunTag(REASON_TAG, reason[:5000])]
        if version is not None:
            tags.append(RunTag(VERSION_TAG, version))
        with self._client(uri) as client:
            client.log_batch(run_id, tags=tags)

    @contextlib.contextmanager
    def _client(self, uri: str):
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        with _bounded():
            try:
                yield MlflowClient(tracking_uri=uri)
            except (MlflowException, OSError) as error:
                # the URI is not said: a team's may hold credentials
                raise MirrorFailed(f"{type(error).__name__}: {error}") from error
