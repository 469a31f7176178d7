"""What a run decided about its candidate, or about a landed file, written on the run as tags:
the runs list, the run's page and the alerts say it at a glance, without opening a log. Every job of ours is one
model's; a run someone makes of two models' production_model at once is tagged with the last
decision.

A refusal is an outcome, not a breakage: the gate checks fail with WARN severity, so the run
ends SUCCESS with production_model not materialized, and `ml_assets/decision` says why; a
landed file the contract refuses is quarantined, its partition not materialized, and
`ml_assets/refused_file` says which.
"""

import dagster as dg

from ml_assets.pipeline.naming import MODEL_TAG

DECISION_TAG = "ml_assets/decision"  # promoted or refused
PRODUCTION_VERSION_TAG = "ml_assets/production_version"  # in production after the run
PREVIOUS_VERSION_TAG = "ml_assets/previous_version"  # on a promotion: what it replaced
REASON_TAG = "ml_assets/reason"  # on a refusal: the failed gate checks, in one sentence
SUMMARY_TAG = "ml_assets/summary"  # on a promotion: the metric and its change
REFUSED_FILE_TAG = "ml_assets/refused_file"  # on an ingestion run: the landed file refused
PROMOTED = "promoted"
REFUSED = "refused"


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
