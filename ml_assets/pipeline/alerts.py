"""Alerts that mean something: a run that broke (`failure`), a candidate the gate refused
(`refused`), a production version its labels show degraded (`degraded`) and, when asked for,
a promotion (`promoted`), each logged at its own level and posted to the webhook as its own
kind."""

import urllib.request

import dagster as dg

from ml_assets.pipeline.decisions import (
    DECISION_TAG,
    DEGRADED_TAG,
    PREVIOUS_VERSION_TAG,
    PRODUCTION_VERSION_TAG,
    PROMOTED,
    REASON_TAG,
    REFUSED,
    REFUSED_FILE_TAG,
    SUMMARY_TAG,
)
from ml_assets.pipeline.live_performance import LIVE_CHECK
from ml_assets.pipeline.naming import MODEL_TAG
from ml_assets.store.files import strict_json
from ml_assets.store.settings import alert_kinds, alert_webhook_url

FAILURE = "failure"
DEGRADED = "degraded"


def failure_reasons(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Why a run failed, in people's words: its failed checks and failed steps."""
    reasons = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.asset_check_evaluation_data
        if not evaluation.passed:
            reasons.append(f"check {evaluation.check_name} failed: {evaluation.description or ''}")
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        failure = record.dagster_event.step_failure_data
        if failure.user_failure_data and failure.user_failure_data.description:
            message = failure.user_failure_data.description  # a dg.Failure we raised
        elif failure.error:
            root = failure.error
            while root.cause is not None:  # Dagster wraps the user's exception
                root = root.cause
            message = root.message
        else:
            message = "unknown error"
        reasons.append(f"step {record.step_key} failed: {' '.join(message.split())}")
    return reasons


def failure_alert(run: dg.DagsterRun, reasons: list[str]) -> dict:
    """The `failure` alert of a run that broke."""
    return {
        "kind": FAILURE,
        "model": run.tags.get(MODEL_TAG),
        "run_id": run.run_id,
        "job": run.job_name,
        "reasons": reasons,
        "text": f"ml_assets run {run.run_id} of job '{run.job_name}' failed: " + "; ".join(reasons),
    }


def decision_alert(run: dg.DagsterRun) -> dict | None:
    """The `refused` or `promoted` alert of a run that decided on a candidate, or the
    `refused` alert of one that refused a landed file; None for any other run."""
    tags, model = run.tags, run.tags.get(MODEL_TAG)
    common = {"model": model, "run_id": run.run_id, "job": run.job_name}
    if REFUSED_FILE_TAG in tags:
        file, reason = tags[REFUSED_FILE_TAG], tags.get(REASON_TAG, "")
        return {
            "kind": REFUSED,
            **common,
            "file": file,
            "reason": reason,
            "text": f"{model}: landed file {reason} (run {run.run_id}).",
        }
    if tags.get(DECISION_TAG) == REFUSED:
        kept, reason = tags.get(PRODUCTION_VERSION_TAG), tags.get(REASON_TAG, "")
        return {
            "kind": REFUSED,
            **common,
            "kept_version": kept,
            "reason": reason,
            "text": f"{model}: candidate refused: {reason}. Production keeps {kept}"
            f" (run {run.run_id}).",
        }
    if tags.get(DECISION_TAG) == PROMOTED:
        version, summary = tags.get(PRODUCTION_VERSION_TAG), tags.get(SUMMARY_TAG, "")
        return {
            "kind": PROMOTED,
            **common,
            "version": version,
            "previous_version": tags.get(PREVIOUS_VERSION_TAG),
            "summary": summary,
            "text": f"{model}: {version} promoted to production: {summary} (run {run.run_id}).",
        }
    return None


def degraded_alert(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict:
    """The `degraded` alert of a run that found the production version degraded: the
    version, the metric live and at promotion, the difference and its interval."""
    tags, model = run.tags, run.tags.get(MODEL_TAG)
    compared = None
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.asset_check_evaluation_data
        if evaluation.check_name == LIVE_CHECK and not evaluation.passed:
            compared = evaluation.metadata["compared"].value
    reason = tags.get(REASON_TAG, "")
    return {
        "kind": DEGRADED,
        "model": model,
        "run_id": run.run_id,
        "job": run.job_name,
        "version": tags[DEGRADED_TAG],
        **(compared or {}),
        "reason": reason,
        "text": f"{model}: {reason}; retraining (run {run.run_id}).",
    }


def _post_json(url: str, document: dict, timeout_seconds: float = 10.0) -> None:
    request = urllib.request.Request(
        url,
        data=strict_json(document, indent=None).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_seconds):
        pass


def post_alert(context: dg.RunStatusSensorContext, alert: dict) -> None:
    """Posts an alert to the webhook when one is set and its kind is asked for."""
    url = alert_webhook_url()
    if url is None or alert["kind"] not in alert_kinds():
        return
    if not url.startswith(("https://", "http://")):
        context.log.error("the alert webhook URL is not http(s); alert not posted")
        return
    try:
        _post_json(url, alert)
    except OSError as error:  # the URL is a secret: report the failure, never the address
        context.log.error(f"posting the alert to the webhook failed: {type(error).__name__}")
    else:
        context.log.info(f"{alert['kind']} alert posted to the webhook")


@dg.run_failure_sensor(
    name="run_failure_alert",
    description="When any run fails (breaks, not a refused candidate or file): logs why at ERROR, the"
    " failed steps and checks, and posts a `failure` alert to $ML_ASSETS_ALERT_WEBHOOK_URL.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    """Logs a clear alert for every failed run and posts it to the webhook when one is set."""
    run = context.dagster_run
    reasons = failure_reasons(context.instance, run.run_id) or [context.failure_event.message]
    alert = failure_alert(run, reasons)
    context.log.error(alert["text"])
    post_alert(context, alert)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="model_decision_alert",
    description="When a run that decided on a candidate, refused a landed file or found the"
    " production version degraded succeeds: logs it (a refusal or a degradation at WARNING) and"
    " posts a `refused` or `degraded` alert, or a `promoted` one when $ML_ASSETS_ALERT_KINDS"
    " lists it, to $ML_ASSETS_ALERT_WEBHOOK_URL.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def model_decision_alert(context: dg.RunStatusSensorContext) -> None:
    """Logs what a run decided about its candidate or a landed file, and posts it to the
    webhook when asked."""
    run = context.dagster_run
    if DEGRADED_TAG in run.tags:
        alert = degraded_alert(context.instance, run)
    else:
        alert = decision_alert(run)
    if alert is None:
        return  # an ingestion run that refused nothing, or a training run stopped short
    if alert["kind"] in (REFUSED, DEGRADED):
        context.log.warning(alert["text"])
    else:
        context.log.info(alert["text"])
    post_alert(context, alert)
