"""What every model of a code location shares: the automation sensor, the alerts, the dead-run
reaper, where steps run, and the resources that do the I/O."""

import dagster as dg

from ml_assets.pipeline.alerts import model_decision_alert, run_failure_alert
from ml_assets.pipeline.automation import retraining_automation
from ml_assets.pipeline.execution import step_executor
from ml_assets.pipeline.run_health import dead_run_reaper
from ml_assets.store.landing import LandingZone
from ml_assets.store.mlflow_mirror import MlflowMirror
from ml_assets.store.registry import ModelRegistry
from ml_assets.store.served import ServedRecords
from ml_assets.store.storage import AssetStorage


def shared_definitions() -> dg.Definitions:
    """The definitions no model owns; every model's assets use these resources."""
    return dg.Definitions(
        sensors=[retraining_automation, run_failure_alert, model_decision_alert, dead_run_reaper],
        executor=step_executor,
        resources={
            "io_manager": AssetStorage(format="parquet"),
            "model_io_manager": AssetStorage(format="skops"),
            "json_io_manager": AssetStorage(format="json"),
            "landing": LandingZone(),
            "registry": ModelRegistry(),
            "served": ServedRecords(),
            "mlflow": MlflowMirror(),
        },
    )
