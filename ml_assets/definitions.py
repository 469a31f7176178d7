"""The one Definitions object of the ml_assets code location."""

import dagster as dg

from ml_assets.assets.deployment import predictions, production_model, rollback_production
from ml_assets.assets.ingestion import raw_batches, reference_data
from ml_assets.assets.training import candidate_model, dataset, features, model_metrics
from ml_assets.automation import (
    ingestion_job,
    landing_sensor,
    retrain_after_ingestion,
    retraining_automation,
    run_failure_alert,
    training_job,
    weekly_retraining_schedule,
)
from ml_assets.checks import (
    deployment_gate,
    feature_checks,
    no_drift_from_reference,
)
from ml_assets.execution import step_executor
from ml_assets.landing import LandingZone
from ml_assets.memory import settle_loaded_objects
from ml_assets.registry import ModelRegistry
from ml_assets.run_health import dead_run_reaper
from ml_assets.settings import schedule_timezone
from ml_assets.storage import AssetStorage

defs = dg.Definitions(
    assets=[
        reference_data,
        raw_batches,
        dataset,
        features,
        candidate_model,
        model_metrics,
        production_model,
        predictions,
    ],
    asset_checks=[
        no_drift_from_reference,
        feature_checks,
        deployment_gate,
    ],
    jobs=[ingestion_job, training_job, rollback_production],
    schedules=[weekly_retraining_schedule(schedule_timezone())],
    sensors=[
        landing_sensor,
        retrain_after_ingestion,
        retraining_automation,
        run_failure_alert,
        dead_run_reaper,
    ],
    executor=step_executor,
    resources={
        "io_manager": AssetStorage(format="parquet"),
        "model_io_manager": AssetStorage(format="skops"),
        "json_io_manager": AssetStorage(format="json"),
        "landing": LandingZone(),
        "registry": ModelRegistry(),
    },
)

settle_loaded_objects()
