"""Dagster's floor for loading our models: a component that reads the same YAML files and
builds, for each, the same Dagster objects as `ml_assets.TabularModel` with nothing of ours
in them: the eleven assets with their dependencies (as deps, not inputs) and partitions, the
checks (in the same definitions), the jobs, the sensors and the schedule.

What a project of these takes to load, over `import dagster`, is what Dagster itself costs
for our models' shape: its YAML parsing, its component tree, its definitions. The bench
loads a project of these beside ours, from the same YAML files but for their `type:`.
"""

from typing import Annotated, Any

import dagster as dg

ASSETS = {  # name -> its inputs, as in our graph
    "reference_data": (),
    "raw_batches": (),
    "dataset": ("reference_data", "raw_batches", "labels"),
    "features": ("dataset",),
    "candidate_model": ("features",),
    "model_metrics": ("candidate_model", "features"),
    "production_model": ("candidate_model", "model_metrics", "features"),
    "predictions": ("raw_batches",),
    "served_predictions": (),
    "labels": ("served_predictions", "predictions"),
    "live_performance": ("labels", "served_predictions", "predictions"),
}
PARTITIONED = {  # name -> the partitions it has, as in our graph
    "raw_batches": "landed_files",
    "predictions": "landed_files",
    "served_predictions": "served_files",
    "labels": "label_files",
}
OWN_CHECKS = {  # checked by the asset itself
    "raw_batches": ("matches_data_contract",),
    "labels": ("labels_match_their_predictions",),
    "live_performance": ("live_not_degraded",),
}
CHECKS = {
    "raw_batches": ("no_drift_from_reference",),
    "features": (
        "enough_rows",
        "no_missing_values",
        "no_suspicious_feature",
        "target_in_plausible_range",
        "unique_row_ids",
    ),
    "model_metrics": (
        "a_threshold",
        "not_worse_than_production",
        "beats_baseline",
        "holdout_score_is_plausible",
    ),
    "served_predictions": ("served_rows_match_contract", "served_inputs_no_drift_from_reference"),
}
# The floor project's definitions: its defs folder alone, the garbage collector settled as
# ml_assets settles it (without that, collections during the load cost more than all of ours).
FLOOR_DEFINITIONS = """\
import gc
from pathlib import Path

import dagster as dg

gc.freeze()
defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
gc.freeze()
"""
_as_given = dg.Resolver(lambda context, value: value, model_field_type=dict[str, Any])


class EmptyModel(dg.Component, dg.Model, dg.Resolvable):
    """A model's attributes, read and not used: Dagster's objects for it, with no work."""

    name: str
    description: str = ""
    task: str
    reference: Annotated[dict, _as_given]
    columns: Annotated[dict, _as_given]
    target: str
    estimator: Annotated[
        dict, dg.Resolver(lambda context, value: value, model_field_type=dict[str, Any],
                          model_field_name="model")
    ]  # fmt: skip
    gate: Annotated[dict, _as_given]
    schedule: Annotated[dict | None, _as_given] = None

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        name = self.name
        partitions = {
            kind: dg.DynamicPartitionsDefinition(name=f"{name}_{kind}")
            for kind in set(PARTITIONED.values())
        }

        def asset(asset_name: str) -> dg.AssetsDefinition:
            own = [
                dg.AssetCheckSpec(c, asset=[name, asset_name])
                for c in OWN_CHECKS.get(asset_name, ())
            ]

            @dg.asset(
                key=[name, asset_name],
                deps=[[name, upstream] for upstream in ASSETS[asset_name]],
                partitions_def=partitions.get(PARTITIONED.get(asset_name)),
                group_name=name,
                check_specs=own,
            )
            def nothing() -> dg.MaterializeResult:
                """Nothing: stands for one of a model's assets."""
                return dg.MaterializeResult(
                    check_results=[dg.AssetCheckResult(check_name=c.name, passed=True) for c in own]
                )

            return nothing

        def checks(asset_name: str) -> dg.AssetChecksDefinition:
            specs = [dg.AssetCheckSpec(c, asset=[name, asset_name]) for c in CHECKS[asset_name]]

            @dg.multi_asset_check(name=f"{name}__{asset_name}_checks", specs=specs)
            def passed() -> Any:
                """Every check, passed."""
                for spec in specs:
                    yield dg.AssetCheckResult(
                        asset_key=spec.asset_key, check_name=spec.name, passed=True
                    )

            return passed

        def sensor(sensor_name: str, job) -> dg.SensorDefinition:
            @dg.sensor(name=f"{name}_{sensor_name}", job=job)
            def idle(context: dg.SensorEvaluationContext) -> dg.SkipReason:
                """Nothing to do."""
                return dg.SkipReason("nothing")

            return idle

        ingestion = dg.define_asset_job(
            f"{name}_ingestion_job", selection=[dg.AssetKey([name, "raw_batches"])]
        )
        landed = dg.define_asset_job(
            f"{name}_landed_file_job", selection=[dg.AssetKey([name, "raw_batches"])]
        )
        training = dg.define_asset_job(
            f"{name}_training_job", selection=[dg.AssetKey([name, "dataset"])]
        )
        served = dg.define_asset_job(
            f"{name}_served_job", selection=[dg.AssetKey([name, "served_predictions"])]
        )
        labelled = dg.define_asset_job(
            f"{name}_labels_job", selection=[dg.AssetKey([name, "labels"])]
        )

        @dg.op(name=f"{name}_roll_back")
        def roll_back() -> None:
            """Nothing."""

        @dg.job(name=f"{name}_rollback_production")
        def rollback() -> None:
            roll_back()

        return dg.Definitions(
            assets=[asset(asset_name) for asset_name in ASSETS],
            asset_checks=[checks(asset_name) for asset_name in CHECKS],
            jobs=[ingestion, landed, training, rollback, served, labelled],
            schedules=[
                dg.ScheduleDefinition(
                    name=f"{name}_weekly_retraining", cron_schedule="0 23 * * 0", job=training
                )
            ],
            sensors=[
                sensor("landing_sensor", ingestion),
                sensor("retrain_after_ingestion", training),
                sensor("served_sensor", served),
                sensor("labels_sensor", labelled),
                sensor("retrain_when_degraded", training),
            ],
        )
