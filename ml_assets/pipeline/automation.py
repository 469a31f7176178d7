"""When things run: each model's jobs, schedule and sensors, and the automation sensor that all
models share."""

from __future__ import annotations

import json

import dagster as dg

from ml_assets.learn.spec import ModelSpec
from ml_assets.pipeline.ingestion import landed_files
from ml_assets.pipeline.naming import asset_key, model_tags
from ml_assets.pipeline.versions import (
    DATA_VERSION_TAG,
    latest_record,
    left_out,
    record_tags,
    staleness,
)
from ml_assets.store.landing import LandingZone, ModelLanding

# A landed file waits for a landing tick, then its run: the tick interval and the queue bound
# how soon it reaches production (docs/performance.md). Dagster's sensor daemon loops every
# 5 s; an interval below that makes these sensors tick on every loop.
LANDING_INTERVAL_SECONDS = 2
AUTOMATION_INTERVAL_SECONDS = 10
RETRAIN_INTERVAL_SECONDS = 2
RETRAIN_BECAUSE_TAG = "ml_assets/retrain_because"  # what a scheduled or watching run saw change
LANDED_AS_TAG = "ml_assets/landed_as"  # the file's name as it landed, before any renaming
RUN_KIND_TAG = "ml_assets/run"  # ingestion, landed_file or training: the queue limits these
DATA_RUN_KINDS = ("ingestion", "landed_file", "training")
TRAINING_ASSETS = (
    "reference_data", "dataset", "features", "candidate_model", "model_metrics",
    "production_model",
)  # fmt: skip
# A landed file's own run: ingested, scored, and (when the contract accepts it) the retrain,
# the gate and the deployment, with no second run to wait for.
LANDED_FILE_ASSETS = ("raw_batches", "predictions", *TRAINING_ASSETS[1:])

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def model_job(
    spec: ModelSpec, name: str, assets: tuple[str, ...], kind: str, description: str
) -> dg.JobDefinition:
    """One of a model's jobs over some of its assets, tagged with the model and its run kind."""
    return dg.define_asset_job(
        spec.named(name),
        selection=dg.AssetSelection.assets(*(asset_key(spec, asset) for asset in assets)),
        description=description,
        tags={**model_tags(spec), RUN_KIND_TAG: kind},
    )


def ingestion_job(spec: ModelSpec) -> dg.JobDefinition:
    return model_job(
        spec, "ingestion_job", ("raw_batches", "predictions"), "ingestion",
        f"Validate and ingest one landed {spec.name} file, then score it with the production"
        " model.",
    )  # fmt: skip


def landed_file_job(spec: ModelSpec) -> dg.JobDefinition:
    return model_job(
        spec, "landed_file_job", LANDED_FILE_ASSETS, "landed_file",
        f"Validate and ingest one landed {spec.name} file, score it with the production model"
        " and, when the contract accepts it, retrain, evaluate and, if the gate passes, deploy:"
        " all in one run.",
    )  # fmt: skip


def training_job(spec: ModelSpec) -> dg.JobDefinition:
    return model_job(
        spec, "training_job", TRAINING_ASSETS, "training",
        f"Rebuild the {spec.name} dataset, retrain, evaluate and, if the gate passes, deploy.",
    )  # fmt: skip


def in_flight(instance: dg.DagsterInstance, spec: ModelSpec) -> bool:
    """Whether a run of the model's that ingests or trains is queued or going."""
    tags = {**model_tags(spec), RUN_KIND_TAG: list(DATA_RUN_KINDS)}
    return bool(
        instance.get_run_records(filters=dg.RunsFilter(tags=tags, statuses=IN_FLIGHT), limit=1)
    )


def retrain_after_ingestion(spec: ModelSpec, training: dg.JobDefinition):
    """<model>_retrain_after_ingestion."""

    @dg.sensor(
        name=spec.named("retrain_after_ingestion"),
        job=training,
        description=f"When {spec.name} batches were ingested that no dataset holds yet (files"
        f" that landed together, or while another run was going) and none of the model's runs"
        f" is still going: launches one {spec.named('training_job')} for them all.",
        minimum_interval_seconds=RETRAIN_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def retrain(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        """Launches one retrain once batches are ingested that the latest dataset does not hold.

        A landed file's own run retrains after its batch, so only batches ingested by
        ingestion_job (a burst of files, a file that landed while a run was going) are left
        for this sensor; the run key names the newest batch, so each is retrained for once.
        """
        batch = left_out(context.instance, spec)
        if batch is None:
            return dg.SkipReason("every ingested batch is in the latest dataset")
        if in_flight(context.instance, spec):
            return dg.SkipReason(
                f"batches are in that no dataset holds; waiting for {spec.name}'s runs still going"
            )
        return dg.RunRequest(run_key=f"batches-up-to-{batch}")

    return retrain


def weekly_retraining_schedule(spec: ModelSpec, training: dg.JobDefinition):
    """<model>_weekly_retraining, on the YAML's cron in its timezone."""

    @dg.schedule(
        name=spec.named("weekly_retraining"),
        cron_schedule=spec.cron,
        execution_timezone=spec.timezone,
        job=training,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Retrain {spec.name} on all data ingested so far ({spec.cron!r},"
        f" {spec.timezone}) when anything the candidate depends on changed since the last one"
        " was trained: accepted data, the reference table, the declaration, ml_assets itself."
        " Otherwise the tick is skipped, saying what was compared.",
    )
    def weekly_retraining(context: dg.ScheduleEvaluationContext):
        """Launches the training job when something changed since the last candidate."""
        reasons = retraining_reasons(spec, context.instance)
        if isinstance(reasons, str):
            return dg.SkipReason(reasons)
        return dg.RunRequest(tags={RETRAIN_BECAUSE_TAG: "; ".join(reasons)[:1000]})

    return weekly_retraining


def retraining_reasons(spec: ModelSpec, instance: dg.DagsterInstance) -> list[str] | str:
    """What changed since the last candidate was trained; or, when nothing did, one sentence
    saying what was compared."""
    state = staleness(spec, instance)
    if state["stale"]:
        return state["reasons"]
    compared = state["compared"]
    return (
        f"nothing changed since the last candidate was trained (run"
        f" {compared['candidate_measured_in_run'][:8]}): compared the declaration"
        f" ({compared['declaration']}), ml_assets {compared['package']}, the reference table"
        f" (sha256 {compared['reference_sha256'][:12]}), the accepted batches and labels, and"
        " the order of reference_data, dataset, features and model_metrics"
    )


def watched_reference(
    spec: ModelSpec, instance: dg.DagsterInstance, cursor: dict
) -> tuple[str | None, str | None]:
    """Whether the reference file's content differs from what reference_data last read: the
    retrain's reason, or None; and the file's fingerprint to remember.

    The cursor keeps the file's size, modification time and sha256, so the file is hashed
    again only when one of the first two moved; a file touched but unchanged is no change.
    """
    from ml_assets.learn.reference import reference_fingerprint

    path = spec.reference.path
    if path is None:  # a table that ships with scikit-learn changes with scikit-learn only
        return None, None
    try:
        status = path.stat()
        stamp = [status.st_size, status.st_mtime_ns]
        known = cursor.get("reference") or {}
        sha256 = (
            known["sha256"]
            if known.get("stamp") == stamp
            else reference_fingerprint(spec.reference)
        )
    except OSError as error:
        return f"the reference table {path} cannot be read: {error}", None
    cursor["reference"] = {"stamp": stamp, "sha256": sha256}
    read = latest_record(instance, spec, "reference_data")
    if read is None:  # never read: the automation sensor reads it first
        return None, sha256
    recorded = record_tags(read).get(DATA_VERSION_TAG)
    if recorded == sha256:
        return None, sha256
    return (
        f"the reference table {path} changed: sha256 {(recorded or 'none')[:12]} → {sha256[:12]}",
        sha256,
    )


def claimed_files(
    context: dg.SensorEvaluationContext, zone: ModelLanding, registered: set[str]
) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The complete files of a landing folder, each claimed as a partition key: the keys not
    registered yet, and each file's (name as it landed, key, sha256)."""
    new_keys, files = [], []
    for name in zone.complete_files():
        try:
            key, sha256 = zone.claim(name, registered)
        except OSError as error:  # unreadable now (permissions, a vanishing file): next tick
            context.log.warning(f"{name!r}: cannot be taken ({error}); left for a later tick")
            continue
        if key not in registered:
            new_keys.append(key)
            registered.add(key)
        files.append((name, key, sha256))
    return new_keys, files


def file_requests(
    files: list[tuple[str, str, str]], job_name: str | None = None
) -> list[dg.RunRequest]:
    """A run for each claimed file, its partition; the run key holds the content hash, so a
    file is taken once per distinct content."""
    return [
        dg.RunRequest(
            run_key=f"{key}:{sha256}",
            job_name=job_name,
            partition_key=key,
            tags={LANDED_AS_TAG: name[:200]},
        )
        for name, key, sha256 in files
    ]


def landing_sensor(
    spec: ModelSpec,
    ingestion: dg.JobDefinition,
    landed: dg.JobDefinition,
    training: dg.JobDefinition,
):
    """<model>_landing_sensor."""
    partitions = landed_files(spec)

    @dg.sensor(
        name=spec.named("landing_sensor"),
        jobs=[landed, ingestion, training],
        description=f"When a complete file is in {spec.name}'s landing folder: adds it as a"
        f" raw_batches partition and launches {spec.named('landed_file_job')} for it (ingest,"
        f" score, retrain, gate, deploy). Files that land together, or while a run of the model"
        f" is going, are ingested by {spec.named('ingestion_job')} each and retrained for once."
        f" When the reference table's content changed: launches {spec.named('training_job')}.",
        minimum_interval_seconds=LANDING_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def watch_landing(
        context: dg.SensorEvaluationContext, landing: LandingZone
    ) -> dg.SensorResult | dg.SkipReason:
        """Registers each complete file in the model's landing/ as a raw_batches partition and
        launches its run; retrains when the reference table's content changed."""
        cursor = json.loads(context.cursor) if context.cursor else {}
        busy = in_flight(context.instance, spec)
        changed, reference_sha256 = watched_reference(spec, context.instance, cursor)
        requests = []
        if changed is not None and not busy:  # a run key per content: retrained once for it
            requests.append(
                dg.RunRequest(
                    run_key=f"reference:{reference_sha256 or changed}",
                    job_name=training.name,
                    tags={RETRAIN_BECAUSE_TAG: changed[:1000]},
                )
            )
        registered = set(context.instance.get_dynamic_partitions(partitions.name))
        new_keys, files = claimed_files(context, landing.for_model(spec.name), registered)
        if not files and not requests:  # the reason the UI shows on the tick
            return dg.SensorResult(
                skip_reason=f"no complete file in {spec.name}'s landing folder"
                + ("" if changed is None else f"; {changed}: retrained once no run is going"),
                cursor=json.dumps(cursor),
            )
        # One file alone retrains in its own run; several, or one beside a running retrain,
        # are ingested each, and <model>_retrain_after_ingestion retrains once for them all.
        alone = (
            len(files) == 1
            and not requests
            and not busy
            and latest_record(context.instance, spec, "reference_data") is not None
        )
        job = landed if alone else ingestion
        return dg.SensorResult(
            cursor=json.dumps(cursor),
            run_requests=requests + file_requests(files, job.name),
            dynamic_partitions_requests=[partitions.build_add_request(new_keys)]
            if new_keys
            else [],
        )

    return watch_landing


def model_automation(spec: ModelSpec) -> dict:
    """One model's jobs, schedule and sensors, as Definitions arguments."""
    ingestion, landed, training = ingestion_job(spec), landed_file_job(spec), training_job(spec)
    return {
        "jobs": [ingestion, landed, training],
        "schedules": [weekly_retraining_schedule(spec, training)],
        "sensors": [
            landing_sensor(spec, ingestion, landed, training),
            retrain_after_ingestion(spec, training),
        ],
    }


retraining_automation = dg.AutomationConditionSensorDefinition(
    "retraining_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=AUTOMATION_INTERVAL_SECONDS,
    description="Evaluates the automation conditions of every model: the reference table when"
    " it is missing, and deployment after a gate passed in a run that stopped short of"
    " production_model.",
)
