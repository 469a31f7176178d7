"""What a run decided about its candidate, or about a landed file, written on the run as tags:
the runs list, the run's page and the alerts say it at a glance, without opening a log. Every job of ours is one
model's; a run someone makes of two models' production_model at once is tagged with the last
decision.

A refusal is an outcome, not a breakage: the gate checks fail with WARN severity, so the run
ends SUCCESS with production_model not materialized, and `ml_assets/decision` says why; a
landed file the contract refuses is quarantined, its partition not materialized, and
`ml_assets/refused_file` says which. A production version that labels show detectably worse
than at its promotion is found so in a labels run, tagged `ml_assets/degraded`.
"""

import dagster as dg

from ml_assets.learn.spec import ModelSpec
from ml_assets.pipeline.naming import MODEL_TAG, asset_key

DECISION_TAG = "ml_assets/decision"  # promoted or refused
PRODUCTION_VERSION_TAG = "ml_assets/production_version"  # in production after the run
PREVIOUS_VERSION_TAG = "ml_assets/previous_version"  # on a promotion: what it replaced
REASON_TAG = "ml_assets/reason"  # on a refusal: the failed gate checks, in one sentence
SUMMARY_TAG = "ml_assets/summary"  # on a promotion: the metric and its change
REFUSED_FILE_TAG = "ml_assets/refused_file"  # on an ingestion run: the landed file refused
DEGRADED_TAG = "ml_assets/degraded"  # on a labels run: the production version found degraded
PROMOTED = "promoted"
REFUSED = "refused"
PENDING = "pending"  # the gate passed, production_model has not run on it yet
GATE_HISTORY = 20  # recent executions of a gate check searched for a run's evaluation


def refusal_reason(failed: list[tuple[str, str]]) -> str:
    """One sentence from the failed gate checks: `check: description; check: description`."""
    return "; ".join(f"{name}: {description}".strip() for name, description in failed)


def record_refusal(
    instance: dg.DagsterInstance, run_id: str, model: str, kept_version: str | None, reason: str
) -> None:
    """Tags the run as refused, with the version production keeps and why."""
    instance.add_run_tags(
        run_id,
        {
            MODEL_TAG: model,  # runs the automation sensor launches carry no job tags
            DECISION_TAG: REFUSED,
            PRODUCTION_VERSION_TAG: kept_version or "none",
            REASON_TAG: reason,
        },
    )


def record_degraded(
    instance: dg.DagsterInstance, run_id: str, model: str, version: str, said: str
) -> None:
    """Tags the run as having found the production version degraded, and how."""
    instance.add_run_tags(
        run_id, {MODEL_TAG: model, DEGRADED_TAG: version, REASON_TAG: said[:1000]}
    )


def record_promotion(
    instance: dg.DagsterInstance,
    run_id: str,
    model: str,
    version: str,
    previous_version: str | None,
    summary: str,
) -> None:
    """Tags the run as promoted, with the new and the replaced version."""
    instance.add_run_tags(
        run_id,
        {
            MODEL_TAG: model,
            DECISION_TAG: PROMOTED,
            PRODUCTION_VERSION_TAG: version,
            PREVIOUS_VERSION_TAG: previous_version or "none",
            SUMMARY_TAG: summary,
        },
    )


def record_file_refusal(
    instance: dg.DagsterInstance, run_id: str, model: str, file: str, reason: str
) -> None:
    """Tags an ingestion run with the landed file its contract refused, and why."""
    instance.add_run_tags(run_id, {MODEL_TAG: model, REFUSED_FILE_TAG: file, REASON_TAG: reason})


def gate_evaluation(
    instance: dg.DagsterInstance, check: dg.AssetCheckKey, materialization: dg.EventLogRecord
):
    """A gate check's evaluation of one model_metrics materialization, if there is one.

    Searched among the check's recent executions, not only its latest: a concurrent run's
    planned, not yet evaluated, execution must not hide this run's own evaluation. In a run
    that also materializes a partition (a landed file's run), Dagster records no target
    materialization on the evaluation: there the run that evaluated it is the one that
    materialized model_metrics.
    """
    history = instance.event_log_storage.get_asset_check_execution_history(
        check, limit=GATE_HISTORY
    )
    for record in history:
        evaluation = record.event.asset_check_evaluation if record.event else None
        if evaluation is None:
            continue
        target = evaluation.target_materialization_data
        if target is not None and target.storage_id == materialization.storage_id:
            return evaluation
        if target is None and record.run_id == materialization.run_id:
            return evaluation
    return None


def _plain(value: dg.MetadataValue):
    """A metadata value as JSON takes it: the float, text or structure it holds."""
    held = getattr(value, "value", value)
    return held if isinstance(held, str | int | float | bool | list | dict | None) else str(held)


def last_decision(spec: ModelSpec, instance: dg.DagsterInstance) -> dict | None:
    """What the gate decided on the latest model_metrics: the outcome, its run, and each gate
    check's verdict and metadata; None before any model_metrics."""
    metrics_key = asset_key(spec, "model_metrics")
    latest = instance.fetch_materializations(metrics_key, limit=1).records
    if not latest:
        return None
    checks = {}
    for name in spec.gate_checks:
        evaluation = gate_evaluation(instance, dg.AssetCheckKey(metrics_key, name), latest[0])
        if evaluation is not None:
            checks[name] = {
                "passed": evaluation.passed,
                "metadata": {key: _plain(value) for key, value in evaluation.metadata.items()},
            }
    run = instance.get_run_by_id(latest[0].run_id)
    if not all(check["passed"] for check in checks.values()):
        outcome = REFUSED
    else:
        outcome = (run.tags.get(DECISION_TAG) if run else None) or PENDING
    return {"outcome": outcome, "run_id": latest[0].run_id, "checks": checks}


def measured_baseline(spec: ModelSpec, instance: dg.DagsterInstance) -> dict | None:
    """The constant answer's metrics on the reference holdout, as the latest model_metrics
    measured them; None before any."""
    event = instance.get_latest_materialization_event(asset_key(spec, "model_metrics"))
    if event is None:
        return None
    metadata = event.asset_materialization.metadata
    return {
        name: metadata[f"baseline_{name}"].value
        for name in spec.task.metrics
        if f"baseline_{name}" in metadata
    } or None
