"""The shared alerts, posted to a real HTTP receiver on loopback: a run that broke, a
candidate the gate refused, a landed file the contract refused, a promotion when asked for."""

import dagster as dg
import pytest

from harness.live import WebhookReceiver
from ml_assets.pipeline.alerts import model_decision_alert, run_failure_alert
from ml_assets.store.settings import ALERT_KINDS_VARIABLE, WEBHOOK_VARIABLE, alert_kinds
from ml_assets_tests.conftest import land
from ml_assets_tests.pipeline.test_assets import refuse
from ml_assets_tests.test_end_to_end import GATE, materialize

pytestmark = pytest.mark.slow


@pytest.fixture
def webhook(monkeypatch):
    with WebhookReceiver() as receiver:
        monkeypatch.setenv(WEBHOOK_VARIABLE, receiver.url)
        monkeypatch.delenv(ALERT_KINDS_VARIABLE, raising=False)
        yield receiver.received


def failure_context(instance):
    """The context a run-failure sensor gets for a run that really failed."""

    @dg.op
    def explode():
        raise RuntimeError("disk on fire")

    @dg.job
    def doomed():
        explode()

    result = doomed.execute_in_process(instance=instance, raise_on_error=False)
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    ).for_run_failure()


def decision_context(instance, result):
    """The context the decision alert gets for a finished training run, as stored."""
    return dg.build_run_status_sensor_context(
        sensor_name="model_decision_alert",
        dagster_event=result.get_run_success_event(),
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id),
    )


def test_a_failure_is_posted_as_failure_and_logged_as_an_error(instance, webhook, capfd):
    context = failure_context(instance)
    capfd.readouterr()
    run_failure_alert(context)
    [alert] = webhook
    assert alert["kind"] == "failure"
    assert alert["run_id"] == context.dagster_run.run_id
    assert alert["reasons"] == ["step explode failed: RuntimeError: disk on fire"]
    assert "'doomed' failed" in alert["text"] and "disk on fire" in alert["text"]
    logged = capfd.readouterr().err
    assert "ERROR" in logged and "disk on fire" in logged
    assert "failure alert posted to the webhook" in logged
    assert "/hook" not in logged  # the webhook URL is a secret


def test_failure_alert_without_webhook_only_logs(instance, webhook, monkeypatch, capfd):
    monkeypatch.delenv(WEBHOOK_VARIABLE)
    context = failure_context(instance)
    capfd.readouterr()
    run_failure_alert(context)
    assert webhook == []
    assert "disk on fire" in capfd.readouterr().err


def test_an_unreachable_webhook_does_not_break_the_sensor(instance, monkeypatch, capfd):
    monkeypatch.setenv(WEBHOOK_VARIABLE, "http://127.0.0.1:9/nothing-listens")
    context = failure_context(instance)
    capfd.readouterr()
    run_failure_alert(context)
    logged = capfd.readouterr().err
    assert "posting the alert to the webhook failed" in logged
    assert "nothing-listens" not in logged


def test_a_refused_candidate_is_posted_as_refused_and_logged_as_a_warning(
    instance, registry, webhook, capfd
):
    promoted = materialize(instance)
    kept = registry.production().version
    refused = materialize(instance, run_config=GATE)
    assert refused.success
    capfd.readouterr()
    model_decision_alert(decision_context(instance, promoted))
    assert webhook == []  # promotions are not posted unless asked for
    model_decision_alert(decision_context(instance, refused))
    [alert] = webhook
    description = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey(["diabetes", "model_metrics"]), "mse_below_threshold")
    ).event.asset_check_evaluation.description
    assert {key: alert[key] for key in ("kind", "model", "kept_version", "run_id")} == {
        "kind": "refused",
        "model": "diabetes",
        "kept_version": kept,
        "run_id": refused.run_id,
    }
    assert alert["reason"] == f"mse_below_threshold: {description}"
    assert alert["text"].startswith(
        f"diabetes: candidate refused: mse_below_threshold: {description}"
    )
    logged = capfd.readouterr().err
    assert "WARNING" in logged and "candidate refused" in logged and "ERROR" not in logged


def test_a_refused_file_is_posted_as_refused_not_as_a_failure(
    instance, data_dir, landing, reference, webhook, capfd
):
    bad = reference.head(20).astype(object)
    bad.loc[3, "bmi"] = "abc"
    land(landing, "bad.csv", bad)
    result, _ = refuse(instance, data_dir, "bad.csv")
    capfd.readouterr()
    model_decision_alert(decision_context(instance, result))
    [alert] = webhook
    assert {key: alert[key] for key in ("kind", "model", "file", "run_id")} == {
        "kind": "refused",
        "model": "diabetes",
        "file": "bad.csv",
        "run_id": result.run_id,
    }
    assert alert["reason"].startswith("bad.csv refused: column 'bmi': coerce_dtype('float64')")
    assert alert["text"] == f"diabetes: landed file {alert['reason']} (run {result.run_id})."
    logged = capfd.readouterr().err
    assert "WARNING" in logged and "landed file bad.csv refused" in logged


def test_refusals_are_not_posted_when_the_setting_leaves_them_out(
    instance, registry, webhook, monkeypatch, capfd
):
    materialize(instance)
    refused = materialize(instance, run_config=GATE)
    monkeypatch.setenv(ALERT_KINDS_VARIABLE, "failure")
    capfd.readouterr()
    model_decision_alert(decision_context(instance, refused))
    assert webhook == []
    assert "candidate refused" in capfd.readouterr().err  # still logged


def test_promotions_are_posted_when_the_setting_asks(instance, registry, webhook, monkeypatch):
    monkeypatch.setenv(ALERT_KINDS_VARIABLE, "failure, refused, promoted")
    first = materialize(instance)
    model_decision_alert(decision_context(instance, first))
    [alert] = webhook
    production = registry.production()
    assert {key: alert[key] for key in ("kind", "model", "version", "previous_version")} == {
        "kind": "promoted",
        "model": "diabetes",
        "version": production.version,
        "previous_version": "none",
    }
    assert alert["summary"] == (
        f"MSE {production.metrics['mse']:.2f}, the first version, 353 training rows"
    )


def test_a_run_without_a_decision_posts_nothing(instance, webhook, monkeypatch):
    monkeypatch.setenv(ALERT_KINDS_VARIABLE, "failure,refused,promoted")
    partial = materialize(
        instance, selection=dg.AssetSelection.assets(dg.AssetKey(["diabetes", "reference_data"]))
    )
    model_decision_alert(decision_context(instance, partial))
    assert webhook == []


def test_an_unknown_alert_kind_is_refused_with_the_allowed_ones(monkeypatch):
    monkeypatch.setenv(ALERT_KINDS_VARIABLE, "failure,refusals")
    with pytest.raises(
        ValueError,
        match=r"ML_ASSETS_ALERT_KINDS: unknown alert kind\(s\) refusals; allowed: failure, refused, degraded, promoted",
    ):
        alert_kinds()
    monkeypatch.delenv(ALERT_KINDS_VARIABLE)
    assert alert_kinds() == {"failure", "refused", "degraded"}
