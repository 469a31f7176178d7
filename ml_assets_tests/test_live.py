"""The platform as users meet it: the real `dagster dev` (webserver and daemon), its GraphQL
API, and the UI in a real browser. One server for the module; tests run in file order, the
poisoned batch near the end (after it, retraining on all data is rightly refused), and the
labels that show a degraded model last."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from dagster_graphql import DagsterGraphQLClient
from sklearn.metrics import mean_squared_error

from harness.live import (
    REPO,
    LiveDagster,
    LiveService,
    WebhookReceiver,
    run_to_end,
    wait_for,
)
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.simulate import simulate_batch
from ml_assets.store.registry import ModelRegistry
from ml_assets.store.settings import ALERT_KINDS_VARIABLE, WEBHOOK_VARIABLE
from ml_assets_tests.conftest import DIABETES

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
IMPROVING_BATCH = ["--rows", "200", "--seed", "10"]  # lowers the reference-holdout MSE
GATE_FAILS = {"ops": {"diabetes__deployment_gate": {"config": {"threshold": 100.0}}}}
TRAINING_JOB = "diabetes_training_job"
MODEL = ["--model", "diabetes"]


@pytest.fixture(scope="module")
def webhook():
    """Where the live daemon's alerts go: every kind, promotions included."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def live(tmp_path_factory, request, webhook):
    alerts = {
        WEBHOOK_VARIABLE: webhook.url,
        ALERT_KINDS_VARIABLE: "failure,refused,promoted,degraded",
    }
    server = LiveDagster(tmp_path_factory.mktemp("live"), extra_env=alerts)
    failed_before = request.session.testsfailed
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if request.session.testsfailed > failed_before:
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(server.log_path, ARTIFACTS / f"dagster-dev-{int(time.time())}.log")


@pytest.fixture(scope="module")
def client(live):
    return DagsterGraphQLClient("127.0.0.1", port_number=live.port)


def registry(live) -> ModelRegistry:
    return ModelRegistry(data_dir=str(live.data)).for_model("diabetes")


def production_version(live) -> str | None:
    production = registry(live).production()
    return production.version if production else None


CHECKS_QUERY = """
query ($path: [String!]!) {
  assetNodes(assetKeys: [{path: $path}]) {
    assetChecksOrError { ... on AssetChecks { checks {
      name
      executionForLatestMaterialization { status runId evaluation { success description } }
    } } }
  }
}
"""


def check_results(live, asset: str) -> dict:
    data = live.graphql(CHECKS_QUERY, {"path": ["diabetes", asset]})
    checks = data["assetNodes"][0]["assetChecksOrError"]["checks"]
    return {check["name"]: check["executionForLatestMaterialization"] for check in checks}


def latest_metadata(live, asset: str) -> dict:
    data = live.graphql(
        """query ($path: [String!]!) { assetOrError(assetKey: {path: $path}) { ... on Asset {
             assetMaterializations(limit: 1) { runId metadataEntries {
               label ... on TextMetadataEntry { text } ... on BoolMetadataEntry { boolValue }
             } } } } }""",
        {"path": ["diabetes", asset]},
    )
    [materialization] = data["assetOrError"]["assetMaterializations"]
    return {
        e["label"]: e.get("text", e.get("boolValue")) for e in materialization["metadataEntries"]
    }


def cli(live, *args) -> str:
    result = subprocess.run(
        [str(BIN / "ml-assets"), *args], env=live.env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return result.stdout


def test_graphql_client_launches_training_and_reads_the_gate(live, client):
    run_id = client.submit_job_execution(TRAINING_JOB)
    assert run_to_end(client, run_id) == "SUCCESS"
    checks = check_results(live, "model_metrics")
    assert checks["mse_below_threshold"]["evaluation"]["success"] is True
    assert checks["not_worse_than_production"]["evaluation"]["success"] is True
    deployed = production_version(live)
    assert latest_metadata(live, "production_model")["version"] == deployed

    assert run_tags(live, run_id)["ml_assets/decision"] == "promoted"

    refused = client.submit_job_execution(TRAINING_JOB, run_config=GATE_FAILS)
    assert run_to_end(client, refused) == "SUCCESS"  # a refusal is an outcome
    gate = check_results(live, "model_metrics")["mse_below_threshold"]
    assert gate["runId"] == refused and gate["evaluation"]["success"] is False
    assert "not below the threshold 100" in gate["evaluation"]["description"]
    assert production_version(live) == deployed
    tags = run_tags(live, refused)
    assert (tags["ml_assets/decision"], tags["ml_assets/production_version"]) == (
        "refused",
        deployed,
    )
    assert "not below the threshold 100" in tags["ml_assets/reason"]
    live.wait_until_idle()


def run_tags(live, run_id: str) -> dict[str, str]:
    data = live.graphql(
        """query ($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }""",
        {"id": run_id},
    )
    return {tag["key"]: tag["value"] for tag in data["runOrError"]["tags"]}


def test_an_idle_dagster_dev_keeps_its_log_quiet(live):
    live.wait_until_idle()
    time.sleep(5)  # what the last run printed is flushed
    before = live.log_path.read_text().count("\n")
    time.sleep(30)  # six daemon loops: every sensor ticks in them
    written = live.log_path.read_text().splitlines()[before:]
    assert len(written) < 5, written  # under 100 lines in 10 minutes


def test_schedule_is_running_and_ticks_on_sunday_at_23(live):
    data = live.graphql(
        """{ schedulesOrError(repositorySelector: {repositoryLocationName: "ml_assets",
             repositoryName: "__repository__"}) { ... on Schedules { results {
             name cronSchedule executionTimezone scheduleState { status }
             futureTicks(limit: 4) { results { timestamp } } } } } }"""
    )
    schedules = {schedule["name"]: schedule for schedule in data["schedulesOrError"]["results"]}
    assert set(schedules) == {"diabetes_weekly_retraining", "breast_cancer_weekly_retraining"}
    schedule = schedules["diabetes_weekly_retraining"]
    assert schedule["scheduleState"]["status"] == "RUNNING"
    zone = ZoneInfo(schedule["executionTimezone"])
    ticks = [
        datetime.fromtimestamp(tick["timestamp"], zone)
        for tick in schedule["futureTicks"]["results"]
    ]
    assert len(ticks) == 4
    assert all((t.weekday(), t.hour, t.minute) == (6, 23, 0) for t in ticks)

    # Right after the training run above, the dry run (the UI's "Test schedule") skips.
    live.wait_until_idle()
    dry = live.graphql(
        """mutation ($selector: ScheduleSelector!, $at: Float!) {
             scheduleDryRun(selectorData: $selector, timestamp: $at) {
             ... on DryRunInstigationTick { evaluationResult {
                 skipReason runRequests { runKey } error { message } } } } }""",
        {
            "selector": {
                "repositoryLocationName": "ml_assets",
                "repositoryName": "__repository__",
                "scheduleName": "diabetes_weekly_retraining",
            },
            "at": time.time(),
        },
    )["scheduleDryRun"]["evaluationResult"]
    assert dry["error"] is None and not dry["runRequests"], dry
    assert dry["skipReason"].startswith("nothing changed since the last candidate was trained")


def test_a_landed_batch_becomes_a_new_production_version_by_itself(live, tmp_path):
    """... and `ml-assets serve` beside it answers with each switch within 2 s, the
    promotion and a rollback, while a client keeps calling: no request fails or mixes."""
    before = production_version(live)
    service = LiveService(tmp_path, live.env)
    service.start()
    row = json.loads(
        load_reference_table(DIABETES)[DIABETES.features].head(1).to_json(orient="records")
    )
    caller = service.keep_calling("diabetes", row)
    try:
        landed_at = time.time()
        path = Path(cli(live, "simulate-batch", *MODEL, *IMPROVING_BATCH).strip())
        after = wait_for(
            lambda: (version := production_version(live)) != before and version,
            timeout=240,
            interval=0.05,
            what="a new production version",
        )
        elapsed = time.time() - landed_at
        promoted = served_within(live, service, after)
        cli(live, "rollback", *MODEL)
        rolled_back = served_within(live, service, before)
        cli(live, "rollback", *MODEL, after)  # production as the later tests expect it
        restored = served_within(live, service, after)
    finally:
        service.stop_calling(caller)
        service.stop()
    print(f"\nfile landed -> new production version {after}: {elapsed:.1f} s")
    print(
        f"served after the promotion {promoted:.2f} s, the rollback {rolled_back:.2f} s,"
        f" the roll forward {restored:.2f} s; {len(service.answers)} answers"
    )
    assert max(promoted, rolled_back, restored) < 2
    assert [a for a in service.answers if a["status"] != 200 or a["error"]] == []
    assert all(a["header"] == a["version"] for a in service.answers)
    switches = [
        v
        for i, v in enumerate(a["version"] for a in service.answers)
        if i == 0 or v != service.answers[i - 1]["version"]
    ]
    assert switches == [before, after, before, after]  # one version per answer, never mixed
    assert (live.data / "diabetes" / "archive" / path.name).exists()
    status = json.loads(cli(live, "status", *MODEL, "--json"))
    assert status["production"]["version"] == after
    assert status["files"]["lost"] == [] and status["files"]["pending"] == 0
    live.wait_until_idle()
    caused = live.graphql(
        """{ runsOrError(filter: {tags: [{key: "ml_assets/model", value: "diabetes"}]}) {
             ... on Runs { results { pipelineName startTime } } } }"""
    )["runsOrError"]["results"]
    data_jobs = {f"diabetes_{job}" for job in ("landed_file_job", "ingestion_job", "training_job")}
    jobs = [run["pipelineName"] for run in caused if (run["startTime"] or 0) >= landed_at - 1]
    assert [job for job in jobs if job in data_jobs] == [
        "diabetes_landed_file_job"
    ]  # one run for the landed file: ingested, retrained, gated and deployed

    # The service stopped cleanly: every answer it gave is in a sealed file, which the daemon's
    # served sensor makes a checked partition of served_predictions.
    answered = sum(1 for a in service.answers if a["status"] == 200)
    checked = wait_for(
        lambda: served_rows_checked(live), timeout=120, interval=2, what="served_predictions"
    )
    assert checked == answered


def served_rows_checked(live) -> int | None:
    """The row count of diabetes/served_predictions's latest partition, once its checks ran."""
    data = live.graphql(
        """{ assetOrError(assetKey: {path: ["diabetes", "served_predictions"]}) { ... on Asset {
             assetMaterializations(limit: 1) { runId metadataEntries {
               label ... on IntMetadataEntry { intValue } } } } } }"""
    )
    materializations = data["assetOrError"].get("assetMaterializations") or []
    if not materializations:
        return None
    [materialization] = materializations
    [contract] = live.graphql(
        """{ assetCheckExecutions(assetKey: {path: ["diabetes", "served_predictions"]},
             checkName: "served_rows_match_contract", limit: 1) {
             runId status evaluation { success } } }"""
    )["assetCheckExecutions"] or [None]
    if contract is None or contract["runId"] != materialization["runId"]:
        return None
    if contract["evaluation"] is None:  # planned, not evaluated yet
        return None
    assert contract["evaluation"]["success"] is True, contract
    return next(
        e["intValue"]
        for e in materialization["metadataEntries"]
        if e["label"] == "dagster/row_count"
    )


def served_within(live, service: LiveService, version: str) -> float:
    """Seconds from the registry's switch to `version` (its history's time) until the calling
    client's answers come from it."""
    switched = datetime.fromisoformat(registry(live).history()[-1]["at"]).timestamp()
    assert registry(live).history()[-1]["to_version"] == version

    def first_answer():
        return next(
            (a["at"] for a in service.answers if a["version"] == version and a["at"] > switched),
            None,
        )

    return (
        wait_for(first_answer, timeout=10, interval=0.02, what=f"answers from {version}") - switched
    )


@pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("CI") != "true",
    reason="Debian's chromium is not installed (`make test` installs it as root)",
)
def test_the_ui_in_a_browser_materializes_and_shows_the_new_version(live):
    from playwright.sync_api import expect

    before = production_version(live)
    with browser_page() as page:
        page.goto(f"{live.url}/assets/diabetes", wait_until="networkidle", timeout=60_000)
        for asset in ("reference_data", "raw_batches", "dataset", "features",
                      "candidate_model", "model_metrics", "production_model",
                      "predictions"):  # fmt: skip
            expect(page.get_by_text(asset, exact=True).first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "ui-assets.png")

        page.goto(f"{live.url}/locations/ml_assets/jobs/{TRAINING_JOB}", wait_until="networkidle")
        page.get_by_role("button", name="Materialize all").click()
        page.wait_for_timeout(2000)
        # With no batch ingested yet, Dagster asks to confirm (raw_batches is missing): the
        # README's "What you see in the UI" says why Confirm is right.
        confirm = page.get_by_role("button", name="Confirm")
        if confirm.is_visible():
            page.screenshot(path=ARTIFACTS / "ui-materialize-all-dialog.png")
            confirm.click()
            page.wait_for_timeout(2000)
        page.screenshot(path=ARTIFACTS / "ui-launched.png")
        after = wait_for(
            lambda: (version := production_version(live)) != before and version,
            timeout=240,
            what="a new production version after Materialize all",
        )

        page.goto(f"{live.url}/assets/diabetes/production_model", wait_until="networkidle")
        expect(page.get_by_text(after).first).to_be_visible(timeout=60_000)
        summary = latest_metadata(live, "production_model")["summary"]
        assert summary.startswith("MSE ") and summary.endswith(" training rows")
        expect(page.get_by_text(summary).first).to_be_visible()  # without opening the card
        page.screenshot(path=ARTIFACTS / "ui-production-model.png", full_page=True)
    live.wait_until_idle()


@contextlib.contextmanager
def browser_page():
    """A page in Debian's Chromium; what it showed last goes to test-artifacts/ui-last.png."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
            ],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        # Dagster's newsletter prompt may open at any moment: dismissed whenever it shows.
        page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
        try:
            yield page
        finally:
            page.screenshot(path=ARTIFACTS / "ui-last.png")
            browser.close()


def test_a_poisoned_batch_under_the_daemon_is_refused_and_the_ui_says_why(live, webhook):
    live.wait_until_idle()
    before = production_version(live)
    # Shuffled targets in as many rows as the data already holds: detectably worse on the
    # reference holdout (a smaller share can be within its noise; see test_poisoning).
    batch = simulate_batch(DIABETES, load_reference_table(DIABETES), rows=600, seed=11)
    batch["target"] = np.random.default_rng(0).permutation(batch["target"].to_numpy())
    landing = live.data / "diabetes" / "landing"
    batch.to_csv(landing / ".poisoned.csv.tmp", index=False)
    landed_at = time.time()
    os.replace(landing / ".poisoned.csv.tmp", landing / "poisoned.csv")

    def retrain_finished():  # the file's own run: ingested, retrained and gated in one
        runs = live.graphql(
            """{ runsOrError(filter: {pipelineName: "diabetes_landed_file_job", tags: [
                 {key: "dagster/sensor_name", value: "diabetes_landing_sensor"}]}) {
                 ... on Runs { results { runId status startTime } } } }"""
        )["runsOrError"]["results"]
        return next(
            (
                run
                for run in runs
                if (run["startTime"] or 0) >= landed_at - 1
                and run["status"] in ("SUCCESS", "FAILURE")
            ),
            None,
        )

    retrain = wait_for(retrain_finished, timeout=240, what="the poisoned file's run")
    assert retrain["status"] == "SUCCESS"  # refused: an outcome, not a breakage
    assert (live.data / "diabetes" / "archive" / "poisoned.csv").exists()
    gate = check_results(live, "model_metrics")["not_worse_than_production"]
    assert gate["runId"] == retrain["runId"]
    assert gate["evaluation"]["success"] is False, gate["evaluation"]["description"]
    assert production_version(live) == before
    tags = run_tags(live, retrain["runId"])
    assert (tags["ml_assets/decision"], tags["ml_assets/production_version"]) == (
        "refused",
        before,
    )
    assert (
        f"not_worse_than_production: {gate['evaluation']['description']}"
        in tags["ml_assets/reason"]
    )

    # The daemon's decision alert reaches the webhook as `refused`, never as a failure.
    alert = wait_for(
        lambda: next((a for a in webhook.received if a.get("run_id") == retrain["runId"]), None),
        timeout=120,
        what="the refused alert",
    )
    assert {key: alert[key] for key in ("kind", "model", "kept_version", "reason")} == {
        "kind": "refused",
        "model": "diabetes",
        "kept_version": before,
        "reason": tags["ml_assets/reason"],
    }
    assert not [a for a in webhook.received if a["kind"] == "failure"]
    assert {a["kind"] for a in webhook.received} == {"promoted", "refused"}

    if CHROMIUM.exists() or os.environ.get("CI") == "true":
        ui_shows_the_refusal(
            live, retrain["runId"], before, tags["ml_assets/reason"], gate["evaluation"]
        )


def ui_shows_the_refusal(live, run_id: str, kept: str, reason: str, gate: dict) -> None:
    """The pages a person opens after a refused batch say what was decided and why."""
    from playwright.sync_api import expect

    with browser_page() as page:
        page.goto(f"{live.url}/runs", wait_until="networkidle", timeout=60_000)
        # The newest run first: its id, its decision and its reason, and a green Success.
        expect(page.get_by_text(run_id[:8], exact=True)).to_be_visible()
        expect(page.get_by_text("ml_assets/decision: refused").first).to_be_visible()
        expect(page.get_by_text(f"ml_assets/reason: {reason}").first).to_be_visible()
        expect(page.get_by_text("Success").first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "ui-refused-runs.png")

        page.goto(f"{live.url}/runs/{run_id}", wait_until="networkidle")
        expect(page.get_by_text(f"not deployed: {reason}; production keeps {kept}")).to_be_visible(
            timeout=30_000
        )
        expect(page.get_by_text("DagsterAssetCheckFailedError")).to_have_count(0)
        page.screenshot(path=ARTIFACTS / "ui-refused-run.png")
        page.get_by_role("button", name="View tags and config").click()
        expect(page.get_by_text("ml_assets/production_version").first).to_be_visible()
        expect(page.get_by_text(kept).first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "ui-refused-run-tags.png")

        page.goto(f"{live.url}/assets/diabetes/model_metrics?view=checks", wait_until="networkidle")
        page.get_by_text("not_worse_than_production", exact=True).first.click()
        expect(page.get_by_text(gate["description"]).first).to_be_visible(timeout=30_000)
        page.screenshot(path=ARTIFACTS / "ui-refused-check.png")

        page.goto(f"{live.url}/assets/diabetes/production_model", wait_until="networkidle")
        summary = latest_metadata(live, "production_model")["summary"]
        expect(page.get_by_text(summary).first).to_be_visible(timeout=30_000)
        expect(page.get_by_text(kept).first).to_be_visible()
        page.screenshot(path=ARTIFACTS / "ui-refused-production-model.png", full_page=True)


def test_labels_that_show_a_degraded_model_are_alerted_and_retrained_by_the_daemon(
    live, webhook, tmp_path
):
    """Rows served, their labels landed later as if the world had moved: the daemon joins
    them, finds production detectably worse than at promotion, posts `degraded` and retrains
    at once through the gate on data that holds the labelled rows; `status --json`'s live
    figures are scikit-learn's on the joined rows."""
    version = production_version(live)
    reference = load_reference_table(DIABETES).iloc[:150]
    rows = json.loads(reference[DIABETES.features].to_json(orient="records"))
    service = LiveService(tmp_path, live.env)
    service.start()
    try:
        status, _, answer = service.predict("diabetes", rows)
    finally:
        service.stop()  # a clean stop seals the served file
    assert status == 200
    wait_for(lambda: served_rows_checked(live) == 150, timeout=120, what="served_predictions")
    predicted = [p["prediction"] for p in answer["predictions"]]
    moved = reference[DIABETES.target].to_numpy() + 120.0
    labels = pd.DataFrame(
        {"prediction_id": [p["prediction_id"] for p in answer["predictions"]], "target": moved}
    )
    folder = live.data / "diabetes" / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    labels.to_csv(folder / "outcomes.csv.part", index=False)
    (folder / "outcomes.csv.part").rename(folder / "outcomes.csv")

    alert = wait_for(
        lambda: next((a for a in webhook.received if a["kind"] == "degraded"), None),
        timeout=180,
        what="the degraded alert",
    )
    assert (alert["model"], alert["version"], alert["metric"]) == ("diabetes", version, "mse")
    retrain = wait_for(
        lambda: next(
            (
                run
                for run in live.graphql(
                    """{ runsOrError(filter: {pipelineName: "diabetes_training_job"}) {
                         ... on Runs { results { runId status tags { key value } } } } }"""
                )["runsOrError"]["results"]
                if {"key": "dagster/run_key", "value": f"degraded-{alert['run_id']}"} in run["tags"]
                and run["status"] in ("SUCCESS", "FAILURE")
            ),
            None,
        ),
        timeout=240,
        what="the retrain the degradation launched",
    )
    assert retrain["status"] == "SUCCESS"
    decided = {tag["key"]: tag["value"] for tag in retrain["tags"]}
    assert decided["ml_assets/decision"] in ("promoted", "refused")  # the gate decided
    assert decided["ml_assets/retrain_because"] == alert["reason"]

    live_figures = json.loads(cli(live, "status", *MODEL, "--json"))["live"]
    [entry] = [e for e in live_figures if e["version"] == version]
    assert entry["labelled_rows"] == 150 and entry["degraded"] is True
    assert entry["metrics"]["mse"] == pytest.approx(mean_squared_error(moved, predicted))
    assert alert["live"] == pytest.approx(entry["metrics"]["mse"])
    dataset = pd.read_parquet(live.data / "diabetes" / "storage" / "dataset.parquet")
    assert sorted(dataset.loc[dataset["source"] == "labels", "target"]) == sorted(moved)
