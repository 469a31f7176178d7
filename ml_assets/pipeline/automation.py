"""When things run: each model's jobs, schedule and sensors, and the automation sensor that all
models share."""

from __future__ import annotations

import dagster as dg

from ml_assets.learn.spec import ModelSpec
from ml_assets.pipeline.ingestion import landed_files
from ml_assets.pipeline.naming import asset_key, model_tags
from ml_assets.store.landing import LandingZone

# A landed file waits for a landing tick, then a retrain tick: together they bound how soon
# it reaches production (docs/performance.md). Dagster's sensor daemon loops every 5 s; an
# interval below that makes these two tick on every loop (at exactly 5 s, every other one).
LANDING_INTERVAL_SECONDS = 2
AUTOMATION_INTERVAL_SECONDS = 10
RETRAIN_INTERVAL_SECONDS = 2
LANDED_AS_TAG = "ml_assets/landed_as"  # the file's name as it landed, before any renaming
RUN_KIND_TAG = "ml_assets/run"  # ingestion or training, whichever model: the queue limits these
TRAINING_ASSETS = (
    "reference_data", "dataset", "features", "candidate_model", "model_metrics",
    "production_model",
)  # fmt: skip

INGESTING = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def ingestion_job(spec: ModelSpec) -> dg.JobDefinition:
    return dg.define_asset_job(
        spec.named("ingestion_job"),
        selection=dg.AssetSelection.assets(
            asset_key(spec, "raw_batches"), asset_key(spec, "predictions")
        ),
        description=f"Validate and ingest one landed {spec.name} file, then score it with the"
        " production model.",
        tags={**model_tags(spec), RUN_KIND_TAG: "ingestion"},
    )


def training_job(spec: ModelSpec) -> dg.JobDefinition:
    return dg.define_asset_job(
        spec.named("training_job"),
        selection=dg.AssetSelection.assets(*(asset_key(spec, name) for name in TRAINING_ASSETS)),
        description=f"Rebuild the {spec.name} dataset, retrain, evaluate and, if the gate"
        " passes, deploy.",
        tags={**model_tags(spec), RUN_KIND_TAG: "training"},
    )


def retrain_after_ingestion(spec: ModelSpec, training: dg.JobDefinition):
    """<model>_retrain_after_ingestion."""
    ingestion = spec.named("ingestion_job")

    @dg.sensor(
        name=spec.named("retrain_after_ingestion"),
        job=training,
        description=f"When new {spec.name} files have been ingested and no ingestion is still"
        f" running: launches one {spec.named('training_job')} for them all.",
        minimum_interval_seconds=RETRAIN_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def retrain(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        """Launches one retrain once new batches are ingested and no ingestion is still running.

        Its cursor is the newest raw_batches materialization it has retrained for, so a batch
        is never missed, whatever else runs meanwhile, and a burst of files causes one retrain.
        """
        after = int(context.cursor) if context.cursor else None
        newest = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key(spec, "raw_batches"), after_storage_id=after),
            limit=1,
        ).records
        if not newest:
            return dg.SkipReason("no batch ingested since the last retrain")
        ingesting = context.instance.get_run_records(
            filters=dg.RunsFilter(job_name=ingestion, statuses=INGESTING), limit=1
        )
        if ingesting:
            return dg.SkipReason("new batches are in; waiting for the ingestion runs still going")
        storage_id = newest[0].storage_id
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"batches-up-to-{storage_id}")],
            cursor=str(storage_id),
        )

    return retrain


def weekly_retraining_schedule(
    spec: ModelSpec, training: dg.JobDefinition
) -> dg.ScheduleDefinition:
    """<model>_weekly_retraining, on the YAML's cron in its timezone."""
    return dg.ScheduleDefinition(
        name=spec.named("weekly_retraining"),
        cron_schedule=spec.cron,
        execution_timezone=spec.timezone,
        job=training,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Retrain {spec.name} on all data ingested so far ({spec.cron!r},"
        f" {spec.timezone}).",
    )


def landing_sensor(spec: ModelSpec, ingestion: dg.JobDefinition):
    """<model>_landing_sensor."""
    partitions = landed_files(spec)

    @dg.sensor(
        name=spec.named("landing_sensor"),
        job=ingestion,
        description=f"When a complete file is in {spec.name}'s landing folder: adds it as a"
        f" raw_batches partition and launches {spec.named('ingestion_job')} for it.",
        minimum_interval_seconds=LANDING_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def watch_landing(
        context: dg.SensorEvaluationContext, landing: LandingZone
    ) -> dg.SensorResult | dg.SkipReason:
        """Registers each complete file in the model's landing/ as a raw_batches partition and
        ingests it."""
        zone = landing.for_model(spec.name)
        registered = set(context.instance.get_dynamic_partitions(partitions.name))
        new_keys, requests = [], []
        for name in zone.complete_files():
            try:
                key, sha256 = zone.claim(name, registered)
            except OSError as error:  # unreadable now (permissions, a vanishing file): next tick
                context.log.warning(f"{name!r}: cannot be taken ({error}); left for a later tick")
                continue
            if key not in registered:
                new_keys.append(key)
                registered.add(key)
            # The run key holds the content hash: a file is ingested once per distinct content.
            requests.append(
                dg.RunRequest(
                    run_key=f"{key}:{sha256}", partition_key=key, tags={LANDED_AS_TAG: name[:200]}
                )
            )
        if not requests:  # the reason the UI shows on the tick
            return dg.SkipReason(f"no complete file in {spec.name}'s landing folder")
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[partitions.build_add_request(new_keys)]
            if new_keys
            else [],
        )

    return watch_landing


def model_automation(spec: ModelSpec) -> dict:
    """One model's jobs, schedule and sensors, as Definitions arguments."""
    ingestion, training = ingestion_job(spec), training_job(spec)
    return {
        "jobs": [ingestion, training],
        "schedules": [weekly_retraining_schedule(spec, training)],
        "sensors": [landing_sensor(spec, ingestion), retrain_after_ingestion(spec, training)],
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
