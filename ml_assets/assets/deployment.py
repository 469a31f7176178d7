"""Deployment: the gated promotion of the candidate into the model registry."""

import dagster as dg
from sklearn.pipeline import Pipeline

from ml_assets.assets.ingestion import FILE_SYSTEM_RETRY
from ml_assets.checks import GATE_CHECKS
from ml_assets.conditions import follow_upstream
from ml_assets.registry import ModelRegistry
from ml_assets.reporting import float_metadata

METRICS_KEY = dg.AssetKey("model_metrics")


def gate_refusal(instance: dg.DagsterInstance) -> str | None:
    """Why the latest model_metrics may not be deployed, or None when both gate checks passed.

    Blocking checks stop this asset inside their own run; this also stops a run that selects
    production_model alone after a failed (or never evaluated) gate.
    """
    latest = instance.fetch_materializations(METRICS_KEY, limit=1).records
    if not latest:
        return "model_metrics has never been materialized"
    for name in GATE_CHECKS:
        record = instance.get_latest_asset_check_evaluation_record(
            dg.AssetCheckKey(METRICS_KEY, name)
        )
        evaluation = record.event.asset_check_evaluation if record and record.event else None
        if evaluation is None:
            return f"the gate check {name} has not been evaluated on model_metrics"
        target = evaluation.target_materialization_data
        if target is None or target.storage_id != latest[0].storage_id:
            return f"the gate check {name} was not evaluated on the latest model_metrics"
        if not evaluation.passed:
            return f"the gate check {name} failed: {evaluation.description or ''}".strip()
    return None


@dg.asset(
    group_name="deployment",
    retry_policy=FILE_SYSTEM_RETRY,
    automation_condition=follow_upstream(),
    kinds={"scikitlearn"},
)
def production_model(
    context: dg.AssetExecutionContext,
    candidate_model: Pipeline,
    model_metrics: dict,
    registry: ModelRegistry,
) -> dg.MaterializeResult:
    """The candidate, registered as a new model version and promoted to production."""
    refusal = gate_refusal(context.instance)
    if refusal is not None:
        raise dg.Failure(
            description=f"not deployed: {refusal}; production is unchanged", allow_retries=False
        )
    regressor = candidate_model.named_steps["regressor"]
    previous = registry.production()
    version = registry.register(
        candidate_model,
        card={
            "estimator": type(regressor).__name__,
            "params": {k: v for k, v in regressor.get_params().items() if _is_plain(v)},
            "metrics": model_metrics["candidate"],
            "champion_metrics": model_metrics["production"],
            "champion_version": model_metrics["production_version"],
            "training_rows": model_metrics["training_rows"],
            "holdout_rows": model_metrics["holdout_rows"],
            "data_fingerprint": model_metrics["data_fingerprint"],
            "run_id": context.run.run_id,
        },
    )
    registry.promote(version.version)
    context.log.info(
        f"production is now {version.version} (was {previous.version if previous else 'none'})"
    )
    return dg.MaterializeResult(
        metadata={
            "version": dg.MetadataValue.text(version.version),
            "previous_version": dg.MetadataValue.text(previous.version if previous else "none"),
            "estimator": dg.MetadataValue.text(type(regressor).__name__),
            "sha256": dg.MetadataValue.text(version.card["sha256"]),
            "model_path": dg.MetadataValue.path(str(version.path)),
            **float_metadata("holdout", model_metrics["candidate"]),
        }
    )


def _is_plain(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
