"""The MLflow mirror: each candidate tracked as a run of experiment `ml_assets/<model>` on the
team's MLflow server, and what the gate decided about it; each promoted version logged with
MLflow's sklearn flavour (skops) and registered as a version of registered model `<model>`,
MLflow's `champion` alias moved to it by the promotion and back by a rollback. Off unless a tracking URI is set
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
CHAMPION = "champion"  # MLflow's alias of the version in production: models:/<model>@champion
MODEL_ARTIFACT = "model"


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


def _log_trial(client, experiment_id: str, parent: str, trial: dict) -> None:
    """One trial of the search as a child run: its kind and params, its fold scores (a step
    each), their mean and spread, its seconds; FINISHED, FAILED, or KILLED when pruned or
    stopped by the budget."""
    from mlflow.entities import Metric, Param

    run = client.create_run(
        experiment_id,
        tags={"mlflow.parentRunId": parent, "ml_assets.trial_status": trial["status"]},
        run_name=f"trial {trial['number']} {trial['kind']}",
    )
    stamp = run.info.start_time
    metrics = [
        Metric("cv_score", score, stamp, step)
        for step, score in enumerate(trial["scores"])
        if score is not None
    ]
    metrics += [
        Metric(name, float(trial[key]), stamp, 0)
        for name, key in (("cv_mean", "mean"), ("cv_std", "std"), ("seconds", "seconds"))
        if trial[key] is not None
    ]
    params = [Param("kind", trial["kind"])]
    params += [
        Param(name, str(value)[:MAX_PARAM_CHARACTERS]) for name, value in trial["params"].items()
    ]
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    status = {"finished": "FINISHED", "failed": "FAILED"}.get(trial["status"], "KILLED")
    client.set_terminated(run.info.run_id, status=status)


def _log_artifacts(client, run_id: str, artifacts: dict[str, str | bytes]) -> None:
    """Each artifact as a file of the run: text as given, bytes (a PNG plot) as written."""
    import tempfile

    for name, content in artifacts.items():
        if isinstance(content, str):
            client.log_text(run_id, content, name)
            continue
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, name)
            with open(path, "wb") as file:
                file.write(content)
            client.log_artifact(run_id, path)


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
        artifacts: dict[str, str | bytes],
        trials: list[dict] = (),
        data: dict[str, str] | None = None,
    ) -> str:
        """One finished MLflow run for a candidate in experiment `ml_assets/<model>`, tagged
        `pending` until the gate decides, with its artifacts (text or bytes, by file name),
        the search's `trials` as child runs and the `data` it learnt from as its input (name,
        digest, source): its id. Raises MirrorFailed."""
        from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param

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
            _log_artifacts(client, run.info.run_id, artifacts)
            if data is not None:
                dataset = Dataset(source_type="ml_assets", **data)
                training = [InputTag("mlflow.data.context", "training")]
                client.log_inputs(run.info.run_id, datasets=[DatasetInput(dataset, training)])
            for trial in trials:
                _log_trial(client, experiment_id, run.info.run_id, trial)
            client.set_terminated(run.info.run_id)
            return run.info.run_id

    def record_decision(
        self,
        uri: str,
        run_id: str,
        decision: str,
        reason: str,
        version: str | None = None,
        artifacts: dict[str, str | bytes] | None = None,
    ) -> None:
        """Tags a candidate's run with the gate's decision and why (and our version id when
        promoted), and adds artifacts (a promoted version's card). Raises MirrorFailed."""
        from mlflow.entities import RunTag

        tags = [RunTag(DECISION_TAG, decision), RunTag(REASON_TAG, reason[:5000])]
        if version is not None:
            tags.append(RunTag(VERSION_TAG, version))
        with self._client(uri) as client:
            client.log_batch(run_id, tags=tags)
            _log_artifacts(client, run_id, artifacts or {})

    def register_champion(
        self,
        uri: str,
        model_name: str,
        run_id: str,
        model: object,
        version: str,
        requirements: list[str],
        trusted_types: list[str],
        champion: bool = True,
    ) -> str:
        """Logs a promoted model into its candidate's run (skops, `trusted_types` trusted),
        registers it as a version of registered model `model_name` tagged with our `version`,
        and moves `champion` to it unless told not to: MLflow's version number. Raises
        MirrorFailed."""
        import tempfile

        import mlflow.sklearn
        from mlflow.exceptions import MlflowException

        with self._client(uri) as client, tempfile.TemporaryDirectory() as folder:
            saved = os.path.join(folder, MODEL_ARTIFACT)
            mlflow.sklearn.save_model(
                model,
                saved,
                serialization_format="skops",
                skops_trusted_types=trusted_types,
                pip_requirements=requirements,  # given: inferring them loads the model again
            )
            client.log_artifacts(run_id, saved, MODEL_ARTIFACT)
            try:
                client.get_registered_model(model_name)
            except MlflowException:
                client.create_registered_model(model_name)
            registered = client.create_model_version(
                model_name,
                source=f"runs:/{run_id}/{MODEL_ARTIFACT}",
                run_id=run_id,
                tags={VERSION_TAG: version},
            )
            number = str(registered.version)
            if champion:
                client.set_registered_model_alias(model_name, CHAMPION, number)
            return number

    def registered(self, uri: str, model_name: str) -> dict[str, str]:
        """Our version id -> MLflow's version number, for each of ours registered in MLflow.
        Raises MirrorFailed."""
        with self._client(uri) as client:
            found = client.search_model_versions(f"name = '{model_name}'")
            return {
                entry.tags[VERSION_TAG]: str(entry.version)
                for entry in found
                if VERSION_TAG in entry.tags
            }

    def move_champion(self, uri: str, model_name: str, version: str) -> str:
        """Moves `champion` to the MLflow version registered for our `version` (a rollback):
        MLflow's version number. Raises MirrorFailed, also when none was registered."""
        with self._client(uri) as client:
            found = client.search_model_versions(
                f"name = '{model_name}' and tags.`{VERSION_TAG}` = '{version}'"
            )
            if not found:
                raise MirrorFailed(
                    f"no MLflow version of {model_name} was registered for {version}"
                )
            client.set_registered_model_alias(model_name, CHAMPION, found[0].version)
            return str(found[0].version)

    @contextlib.contextmanager
    def _client(self, uri: str):
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        with _bounded():
            try:
                # the registry too: else MLflow takes it from its global tracking URI
                yield MlflowClient(tracking_uri=uri, registry_uri=uri)
            except (MlflowException, OSError) as error:
                # the URI is not said: a team's may hold credentials
                raise MirrorFailed(f"{type(error).__name__}: {error}") from error
