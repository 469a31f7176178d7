"""After promotion: the predictions `ml-assets serve` answered, one partition per sealed file
of them, with the checks a data scientist expects of served inputs, and the sensor that
materializes each file as it is sealed."""

import dagster as dg

from ml_assets.learn.contract import refused_rows
from ml_assets.learn.served_records import request_columns
from ml_assets.learn.spec import ModelSpec
from ml_assets.pipeline.automation import RUN_KIND_TAG
from ml_assets.pipeline.checks import drift_result
from ml_assets.pipeline.metadata import PREVIEW_ROWS
from ml_assets.pipeline.naming import asset_key, model_tags
from ml_assets.pipeline.versions import code_version
from ml_assets.store.served import ServedRecords

SERVED_INTERVAL_SECONDS = 30  # files are sealed hourly or at 64 MiB: no hurry
SERVED_CONTRACT_CHECK = "served_rows_match_contract"
SERVED_DRIFT_CHECK = "served_inputs_no_drift_from_reference"
PROBLEMS_SHOWN = 10


def served_files(spec: ModelSpec) -> dg.DynamicPartitionsDefinition:
    """The partitions of a model's served_predictions: one per sealed file."""
    return dg.DynamicPartitionsDefinition(name=spec.named("served_files"))


def monitoring_assets(spec: ModelSpec) -> list[dg.AssetsDefinition]:
    """served_predictions of one model."""

    @dg.asset(
        key=asset_key(spec, "served_predictions"),
        code_version=code_version(spec, "served_predictions"),
        group_name=spec.name,
        partitions_def=served_files(spec),
        kinds={"pandas", "parquet"},
    )
    def served_predictions(context: dg.AssetExecutionContext, served: ServedRecords) -> dg.Output:
        """One sealed file of the predictions `ml-assets serve` answered: each row's
        prediction_id, inputs, prediction, the version that answered and when."""
        table = served.read(spec.name, context.partition_key)
        versions = table["version"].value_counts().to_dict()
        return dg.Output(
            table,
            data_version=dg.DataVersion(context.partition_key),  # a sealed file never changes
            metadata={
                "dagster/row_count": dg.MetadataValue.int(len(table)),
                "preview": dg.MetadataValue.md(table.head(PREVIEW_ROWS).to_markdown(index=False)),
                "rows_by_version": dg.MetadataValue.json(
                    {version: int(rows) for version, rows in versions.items()}
                ),
                "first_served_at": dg.MetadataValue.text(str(table["served_at"].min())),
                "last_served_at": dg.MetadataValue.text(str(table["served_at"].max())),
            },
        )

    return [served_predictions]


def monitoring_checks(spec: ModelSpec) -> list[dg.AssetChecksDefinition]:
    """The checks of a model's served_predictions."""
    partitions = served_files(spec)

    @dg.asset_check(
        asset=asset_key(spec, "served_predictions"),
        name=SERVED_CONTRACT_CHECK,
        partitions_def=partitions,
        description="After each served_predictions partition: warns (never blocks) when served"
        " rows break the model's contract as declared now (a declaration changed since they"
        " were served), with their share and the problems.",
    )
    def served_rows_match_contract(served_predictions) -> dg.AssetCheckResult:
        """Every served row meets the contract as declared now (warns, never blocks)."""
        refused, problems = refused_rows(spec, request_columns(spec, served_predictions))
        rows = len(served_predictions)
        share = refused / rows if rows else 0.0
        return dg.AssetCheckResult(
            passed=refused == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{refused} of {rows} served rows ({share:.1%}) break the contract"
                if refused
                else f"all {rows} served rows meet the contract"
            ),
            metadata={
                "refused_rows": dg.MetadataValue.int(refused),
                "refused_share": dg.MetadataValue.float(share),
                "problems": dg.MetadataValue.json(problems[:PROBLEMS_SHOWN]),
            },
        )

    @dg.asset_check(
        asset=asset_key(spec, "served_predictions"),
        name=SERVED_DRIFT_CHECK,
        partitions_def=partitions,
        description="After each served_predictions partition: warns (never blocks) when a"
        " served input is not distributed like the reference data, the most drifted first.",
    )
    def served_inputs_no_drift_from_reference(served_predictions) -> dg.AssetCheckResult:
        """Each served input but ids and times is distributed like the reference data (warns,
        never blocks), the most drifted named first."""
        return drift_result(spec, request_columns(spec, served_predictions))

    return [served_rows_match_contract, served_inputs_no_drift_from_reference]


def served_job(spec: ModelSpec) -> dg.JobDefinition:
    return dg.define_asset_job(
        spec.named("served_job"),
        selection=dg.AssetSelection.assets(asset_key(spec, "served_predictions")),
        description=f"Read one sealed file of {spec.name}'s served predictions and check its"
        " rows against the contract and the reference.",
        tags={**model_tags(spec), RUN_KIND_TAG: "monitoring"},
    )


def served_sensor(spec: ModelSpec, job: dg.JobDefinition):
    """<model>_served_sensor."""
    partitions = served_files(spec)

    @dg.sensor(
        name=spec.named("served_sensor"),
        job=job,
        description=f"When `ml-assets serve` has sealed a file of {spec.name}'s served"
        f" predictions: adds it as a served_predictions partition and launches"
        f" {spec.named('served_job')} for it.",
        minimum_interval_seconds=SERVED_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def watch_served(
        context: dg.SensorEvaluationContext, served: ServedRecords
    ) -> dg.SensorResult | dg.SkipReason:
        """Registers each sealed file of served predictions as a partition, and checks it."""
        registered = set(context.instance.get_dynamic_partitions(partitions.name))
        new = [name for name in served.sealed_files(spec.name) if name not in registered]
        if not new:
            return dg.SkipReason(f"no new sealed file of {spec.name}'s served predictions")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=name, partition_key=name) for name in new],
            dynamic_partitions_requests=[partitions.build_add_request(new)],
        )

    return watch_served
