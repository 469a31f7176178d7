"""After promotion: the predictions `ml-assets serve` answered, one partition per sealed file
of them, with the checks a data scientist expects of served inputs; the delayed labels of
predicted rows, one partition per label file, joined with the predictions they label; and the
sensors that materialize each file as it comes (what the labels show: `live_performance`)."""

from typing import TYPE_CHECKING

import dagster as dg

from ml_assets.learn.contract import ContractViolation, refused_rows
from ml_assets.learn.labels import LABELLED_AT, PREDICTION_ID, joined_labels
from ml_assets.learn.served_records import request_columns
from ml_assets.learn.spec import ModelSpec
from ml_assets.pipeline.automation import (
    claimed_files,
    file_requests,
    model_job,
)
from ml_assets.pipeline.checks import drift_result
from ml_assets.pipeline.ingestion import FILE_SYSTEM_RETRY, refused_file
from ml_assets.pipeline.metadata import PREVIEW_ROWS
from ml_assets.pipeline.naming import asset_key
from ml_assets.pipeline.versions import code_version
from ml_assets.store.landing import LandingZone
from ml_assets.store.served import ServedRecords
from ml_assets.store.tables import UnreadableFile

if TYPE_CHECKING:
    import pandas as pd

SERVED_INTERVAL_SECONDS = 30  # files are sealed hourly or at 64 MiB: no hurry
SERVED_CONTRACT_CHECK = "served_rows_match_contract"
SERVED_DRIFT_CHECK = "served_inputs_no_drift_from_reference"
LABELS_CHECK = "labels_match_their_predictions"
LABELS_INTERVAL_SECONDS = 10
MONITORING = "monitoring"  # the run kind of served_job and labels_job: never bars a landed file
# What a prediction carries from served_predictions and predictions alike.
PREDICTION_COLUMNS = ("prediction_id", "version", "served_at", "prediction")
PROBLEMS_SHOWN = 10


def served_files(spec: ModelSpec) -> dg.DynamicPartitionsDefinition:
    """The partitions of a model's served_predictions: one per sealed file."""
    return dg.DynamicPartitionsDefinition(name=spec.named("served_files"))


def label_files(spec: ModelSpec) -> dg.DynamicPartitionsDefinition:
    """The partitions of a model's labels: one per label file."""
    return dg.DynamicPartitionsDefinition(name=spec.named("label_files"))


def known_predictions(spec: ModelSpec, tables: list) -> "pd.DataFrame":
    """Every prediction made so far, served or of a landed batch, once: its id, version, time
    (none for a batch), the request's columns (ids and features) and its answer."""
    import pandas as pd

    probabilities = [spec.task.probability_column(label) for label in spec.classes]
    columns = [*PREDICTION_COLUMNS, *spec.identifiers, *spec.features, *probabilities]
    parts = [
        table.reindex(columns=columns)
        for table in tables
        if PREDICTION_ID in table  # predictions made before ids were given have none
    ]
    if not parts:
        return pd.DataFrame(columns=columns)
    # a file sealed while it was read is in a segment and a Parquet file at once
    return pd.concat(parts, ignore_index=True).drop_duplicates(PREDICTION_ID)


def monitoring_assets(spec: ModelSpec) -> list[dg.AssetsDefinition]:
    """served_predictions and labels of one model."""
    every_file = {"allow_missing_partitions": True}
    labels_check = dg.AssetCheckSpec(
        LABELS_CHECK,
        asset=asset_key(spec, "labels"),
        description="With each label file's labels: passes when every row has a key (a"
        " prediction_id, or the model's id columns) given once, that a prediction has, and a"
        " target the contract accepts; when it fails, the file is quarantined with its reason,"
        " and a `refused` alert is sent.",
        partitions_def=label_files(spec),
    )

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

    @dg.asset(
        key=asset_key(spec, "labels"),
        code_version=code_version(spec, "labels"),
        group_name=spec.name,
        partitions_def=label_files(spec),
        ins={
            name: dg.AssetIn(
                asset_key(spec, name),
                partition_mapping=dg.AllPartitionMapping(),
                metadata=every_file,
            )
            for name in ("served_predictions", "predictions")
        },
        retry_policy=FILE_SYSTEM_RETRY,
        check_specs=[labels_check],
        kinds={"pandas", "parquet"},
        output_required=False,  # a refused file is quarantined, not materialized
    )
    def labels(
        context: dg.AssetExecutionContext,
        served_predictions: dict,
        predictions: dict,
        landing: LandingZone,
        served: ServedRecords,
    ):
        """One label file's targets, each beside the prediction it labels (served, or of a
        landed batch): its id, version, inputs and answer, then the `label` and when it was
        joined."""
        import pandas as pd

        zone = landing.labels_for_model(spec.name)
        key = context.partition_key
        sha256 = zone.fingerprint(key) if zone.whereabouts(key) == "pending" else None
        try:
            table, notes = zone.read_table(key)
            # served rows not sealed yet are known too: a label may come within the hour
            unsealed = served.unsealed(spec.name)
            known = known_predictions(
                spec,
                [
                    *served_predictions.values(),
                    *([] if unsealed is None else [unsealed]),
                    *predictions.values(),
                ],
            )
            joined = joined_labels(spec, table, known, source=key)
            joined[LABELLED_AT] = pd.Timestamp.now(tz="UTC")
        except (ContractViolation, UnreadableFile) as error:
            yield refused_file(context, spec, zone, sha256, error, LABELS_CHECK)
            return
        archived = zone.archive(key)
        versions = joined["version"].value_counts().to_dict()
        yield dg.Output(
            joined,
            data_version=dg.DataVersion(sha256) if sha256 else None,
            metadata={
                "dagster/row_count": dg.MetadataValue.int(len(joined)),
                "preview": dg.MetadataValue.md(joined.head(PREVIEW_ROWS).to_markdown(index=False)),
                "labelled_by_version": dg.MetadataValue.json(
                    {version: int(rows) for version, rows in versions.items()}
                ),
                "file": key,
                "sha256": dg.MetadataValue.text(sha256 or ""),
                "archived_as": dg.MetadataValue.path(str(archived)),
                "normalised": dg.MetadataValue.json(notes),
            },
        )
        yield dg.AssetCheckResult(check_name=LABELS_CHECK, passed=True)

    return [served_predictions, labels]


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
    return model_job(
        spec, "served_job", ("served_predictions",), MONITORING,
        f"Read one sealed file of {spec.name}'s served predictions and check its rows against"
        " the contract and the reference.",
    )  # fmt: skip


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


def labels_job(spec: ModelSpec) -> dg.JobDefinition:
    return model_job(
        spec, "labels_job", ("labels", "live_performance"), MONITORING,
        f"Check one label file of {spec.name}, join each label with the prediction it labels,"
        " and measure each production version's live performance again.",
    )  # fmt: skip


def labels_sensor(spec: ModelSpec, job: dg.JobDefinition):
    """<model>_labels_sensor."""
    partitions = label_files(spec)

    @dg.sensor(
        name=spec.named("labels_sensor"),
        job=job,
        description=f"When a complete file is in {spec.name}'s labels folder: adds it as a"
        f" labels partition and launches {spec.named('labels_job')} for it.",
        minimum_interval_seconds=LABELS_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def watch_labels(
        context: dg.SensorEvaluationContext, landing: LandingZone
    ) -> dg.SensorResult | dg.SkipReason:
        """Registers each complete label file as a labels partition and checks it."""
        registered = set(context.instance.get_dynamic_partitions(partitions.name))
        new_keys, files = claimed_files(context, landing.labels_for_model(spec.name), registered)
        if not files:
            return dg.SkipReason(f"no complete file in {spec.name}'s labels folder")
        return dg.SensorResult(
            run_requests=file_requests(files),
            dynamic_partitions_requests=[partitions.build_add_request(new_keys)]
            if new_keys
            else [],
        )

    return watch_labels
