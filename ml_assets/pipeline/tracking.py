"""What model_metrics, production_model and a rollback tell the MLflow mirror: the candidate
as a run (the declaration's model and gate as params; its metrics, production's and the
constant answer's, and each interval's ends as metrics; the Dagster run and the data as tags),
then the gate's decision; a promoted version registered with `champion` moved to it, and moved
back by a rollback. A failing or unreachable server is a warning on the run, never a failure."""

from typing import TYPE_CHECKING

import dagster as dg

from ml_assets.learn.model_card import card_metrics, metrics_table
from ml_assets.learn.modeling import estimator_of
from ml_assets.learn.plots import IMPORTANCE_PLOT, importance_plot
from ml_assets.learn.spec import ModelSpec
from ml_assets.pipeline.decisions import PROMOTED
from ml_assets.pipeline.metadata import candidate_facts
from ml_assets.store.mlflow_mirror import DECISION_TAG, VERSION_TAG, MirrorFailed, MlflowMirror
from ml_assets.store.registry import ALLOWED_UNTRUSTED_TYPES, ModelVersions, library_versions

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

DIGEST_CHARACTERS = 32  # of the features' fingerprint: MLflow keeps a dataset digest short


def candidate_params(spec: ModelSpec, model: "Pipeline") -> dict[str, object]:
    """The candidate's model, search and gate, as MLflow params."""
    estimator = estimator_of(spec, model)
    gate = spec.gate
    params: dict[str, object] = {
        "estimator": type(estimator).__name__,
        "gate.metric": gate.metric.name,
        "gate.threshold": gate.threshold,
        "gate.promote_when": gate.promote_when,
        "gate.confidence": gate.confidence,
        "gate.bootstrap_resamples": gate.bootstrap_resamples,
        "gate.tolerance_absolute": gate.tolerance_absolute,
        "gate.tolerance_relative": gate.tolerance_relative,
    }
    if spec.search is not None:
        params["search.kinds"] = ",".join(spec.search.kinds)
        params["search.budget_seconds"] = spec.search.budget_seconds
    for name, value in estimator.get_params(deep=False).items():
        if value is None or isinstance(value, str | int | float | bool):
            params[f"estimator.{name}"] = value
    return params


def candidate_metrics(measured: dict) -> dict[str, float]:
    """Every metric of the candidate, of production and of the constant answer, and the ends
    of every interval the gate computed, as MLflow metrics (undefined ones left out)."""
    statistics = measured["statistics"]
    metrics: dict[str, float | None] = {}
    for model in ("candidate", "production", "baseline"):
        for name, value in (measured[model] or {}).items():
            metrics[f"{model}_{name}"] = value
    for name, interval in statistics["candidate"].items():
        metrics[f"candidate_{name}_low"], metrics[f"candidate_{name}_high"] = (
            interval["low"],
            interval["high"],
        )
    for other in ("production", "baseline"):
        for name, difference in (statistics[f"versus_{other}"] or {}).items():
            if isinstance(difference, dict):
                for end in ("value", "low", "high"):
                    metrics[f"versus_{other}_{name}_{end}"] = difference[end]
            else:  # McNemar's p-value
                metrics[f"versus_{other}_{name}"] = difference
    metrics["holdout_rows"] = measured["holdout_rows"]
    metrics["training_rows"] = measured["training_rows"]
    return {name: float(value) for name, value in metrics.items() if value is not None}


def candidate_artifacts(spec: ModelSpec, measured: dict) -> dict[str, str | bytes]:
    """The candidate's metrics table, and its features' importance plot when measured."""
    metric = spec.gate.metric
    artifacts: dict[str, str | bytes] = {
        "metrics.md": metrics_table(spec.task.metrics, card_metrics(measured))
    }
    if measured.get("importance"):
        artifacts[IMPORTANCE_PLOT] = importance_plot(measured["importance"], metric.label)
    return artifacts


def mirror_candidate(
    context: dg.AssetExecutionContext,
    spec: ModelSpec,
    mirror: MlflowMirror,
    measured: dict,
    model: "Pipeline",
) -> str | None:
    """Tracks the candidate in MLflow when it is on for the model: the MLflow run id, or None
    (off, or the server failed: then a warning says so)."""
    uri = mirror.uri(spec.mlflow_uri)
    if uri is None:
        return None
    tags = {
        "ml_assets.model": spec.name,
        "dagster.run_id": context.run.run_id,
        "ml_assets.data_version": measured["data_fingerprint"],
        "ml_assets.production_version": measured["production_version"] or "none",
    }
    facts = candidate_facts(spec, context.instance)  # the search, when it searched
    artifacts = candidate_artifacts(spec, measured)
    if facts["leaderboard"]:
        artifacts["leaderboard.md"] = facts["leaderboard"]
    data = {
        "name": f"{spec.name}/features",
        "digest": measured["data_fingerprint"][:DIGEST_CHARACTERS],
        "source": str(spec.reference.source),
    }
    try:
        return mirror.track_candidate(
            uri,
            spec.name,
            candidate_params(spec, model),
            candidate_metrics(measured),
            tags,
            artifacts,
            trials=facts["search_trials"] or [],
            data=data,
        )
    except MirrorFailed as error:
        context.log.warning(f"MLflow: the candidate was not tracked ({error}); nothing waits on it")
        return None


def mirror_decision(
    context: dg.AssetExecutionContext,
    spec: ModelSpec,
    mirror: MlflowMirror,
    run_id: str | None,
    decision: str,
    reason: str,
    version: str | None = None,
    artifacts: dict[str, str | bytes] | None = None,
) -> None:
    """Tags the candidate's MLflow run with the gate's decision (and adds a promoted
    version's card and plots), when it was tracked."""
    uri = mirror.uri(spec.mlflow_uri)
    if uri is None or run_id is None:
        return
    try:
        mirror.record_decision(uri, run_id, decision, reason, version, artifacts)
    except MirrorFailed as error:
        context.log.warning(f"MLflow: the decision was not recorded ({error})")


def mirror_champion(
    context: dg.AssetExecutionContext,
    spec: ModelSpec,
    mirror: MlflowMirror,
    run_id: str | None,
    model: "Pipeline",
    versions: ModelVersions,
    version: str,
) -> str | None:
    """Registers a promoted version in MLflow's registry (its model logged into its
    candidate's run) and moves `champion` to it, then registers what a failing server missed
    before (`sync_registry`: this version too, from its card, when its candidate was not
    tracked): MLflow's version number, or None (off, or failed: then a warning says so)."""
    uri = mirror.uri(spec.mlflow_uri)
    if uri is None:
        return None
    try:
        if run_id is not None:
            mirror.register_champion(
                uri, spec.name, run_id, model, version, _requirements(),
                sorted(ALLOWED_UNTRUSTED_TYPES),
            )  # fmt: skip
        for line in sync_registry(spec, mirror, versions):
            context.log.info(f"MLflow: {line}")
        return mirror.registered(uri, spec.name).get(version)
    except MirrorFailed as error:
        context.log.warning(f"MLflow: {version} was not registered ({error})")
        return None


def mirror_rollback(spec: ModelSpec, mirror: MlflowMirror, version: str) -> str | None:
    """Moves MLflow's `champion` back with a rollback, when MLflow is on: what happened, in
    words (a failure is said, never raised), or None when MLflow is off."""
    uri = mirror.uri(spec.mlflow_uri)
    if uri is None:
        return None
    try:
        moved = mirror.move_champion(uri, spec.name, version)
    except MirrorFailed as error:
        return f"MLflow: champion was not moved to {version} ({error})"
    return f"MLflow: champion of {spec.name} is version {moved} ({version})"


def sync_registry(spec: ModelSpec, mirror: MlflowMirror, versions: ModelVersions) -> list[str]:
    """Registers in MLflow each of our versions ever in production that is not there yet (its
    run made from its card when its candidate was never tracked) and points `champion` at
    production: what was done, in words. Raises MirrorFailed; registers nothing twice."""
    uri = mirror.uri(spec.mlflow_uri)
    if uri is None:
        return [f"MLflow is off for {spec.name}: set $MLFLOW_TRACKING_URI or tracking.mlflow_uri"]
    registered, done = mirror.registered(uri, spec.name), []
    for name in sorted(versions.ever_in_production() - set(registered)):
        card = versions.get(name).card
        metrics = {f"candidate_{key}": value for key, value in card.get("metrics", {}).items()}
        run_id = mirror.track_candidate(
            uri,
            spec.name,
            {"estimator": card.get("estimator", "")},
            {key: float(value) for key, value in metrics.items() if value is not None},
            {
                "ml_assets.model": spec.name,
                "ml_assets.tracked_from": "its card (the candidate was not tracked)",
                DECISION_TAG: PROMOTED,
                VERSION_TAG: name,
            },
            {},
        )
        registered[name] = mirror.register_champion(
            uri, spec.name, run_id, versions.load(name), name, _requirements(),
            sorted(ALLOWED_UNTRUSTED_TYPES), champion=False,
        )  # fmt: skip
        done.append(f"registered {name} as MLflow version {registered[name]} of {spec.name}")
    production = versions.production()
    if production is not None and production.version in registered:
        number = mirror.move_champion(uri, spec.name, production.version)
        done.append(f"champion of {spec.name} is MLflow version {number} ({production.version})")
    return done


def _requirements() -> list[str]:
    """What a logged model needs installed: the libraries its file was saved with."""
    return [
        f"{name}=={number}"
        for name, number in library_versions().items()
        if name not in ("python", "dagster")
    ]
