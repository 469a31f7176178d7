"""Ingestion: a model's reference table and one partition per landed file."""

from pathlib import Path

import dagster as dg

from ml_assets.learn.contract import ContractViolation, validate
from ml_assets.learn.reference import reference_fingerprint, reference_rows
from ml_assets.learn.spec import ModelSpec
from ml_assets.learn.splits import ROW_ID_COLUMN, row_ids
from ml_assets.pipeline.conditions import when_missing
from ml_assets.pipeline.decisions import record_file_refusal
from ml_assets.pipeline.metadata import table_metadata, table_schema
from ml_assets.pipeline.naming import asset_key
from ml_assets.pipeline.versions import code_version
from ml_assets.store.landing import LANDED_FILES, REASON_SUFFIX, LandingZone, ModelLanding
from ml_assets.store.tables import UnreadableFile

# Transient file-system errors (a busy network share, a full disk being cleaned) are retried;
# a file that breaks the contract is not: retrying cannot change its bytes.
FILE_SYSTEM_RETRY = dg.RetryPolicy(max_retries=3, delay=0.5, backoff=dg.Backoff.EXPONENTIAL)
CONTRACT_CHECK = "matches_data_contract"


def landed_files(spec: ModelSpec) -> dg.DynamicPartitionsDefinition:
    """The partitions of a model's raw_batches and predictions: one per landed file."""
    return dg.DynamicPartitionsDefinition(name=spec.named(LANDED_FILES))


def refusal_line(key: str, problems: list[dict], stored: Path) -> str:
    """One line for the console: the file, its first problem, and where the rest is."""
    first = problems[0]
    where = f"column {first['column']!r}: " if first["column"] else ""
    rows = f" at rows {first['rows']}" if first["rows"] else ""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return (
        f"{key} refused: {where}{first['check']}{rows}{more}; quarantined as {stored.name},"
        f" every problem in {stored.name}{REASON_SUFFIX}"
    )


def refused_file(
    context: dg.AssetExecutionContext,
    spec: ModelSpec,
    zone: ModelLanding,
    sha256: str | None,
    error: ContractViolation | UnreadableFile,
    check: str,
) -> dg.AssetCheckResult:
    """Quarantines the run's file with its reason, says so in one line and on the run's tags,
    and fails the check that refused it.

    A refusal is an outcome, not a breakage: the run ends SUCCESS, tagged.
    """
    key = context.partition_key
    problems = getattr(error, "problems", [{"column": None, "check": str(error), "rows": []}])
    stored = zone.quarantine(key, {"sha256": sha256, "error": str(error), "problems": problems})
    line = refusal_line(key, problems, stored)
    context.log.warning(line)
    record_file_refusal(context.instance, context.run.run_id, spec.name, key, line)
    return dg.AssetCheckResult(
        check_name=check,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=str(error),
        metadata={
            "problems": dg.MetadataValue.json(problems),
            "file": key,
            "quarantined_as": dg.MetadataValue.path(str(stored)),
            "sha256": dg.MetadataValue.text(sha256 or ""),
        },
    )


def ingestion_assets(spec: ModelSpec) -> list[dg.AssetsDefinition]:
    """reference_data and raw_batches of one model."""
    partitions = landed_files(spec)
    contract_check = dg.AssetCheckSpec(
        CONTRACT_CHECK,
        asset=asset_key(spec, "raw_batches"),
        description="With each landed file's raw_batches: passes when the file has the"
        " contract's columns, types and plausible values; when it fails, the file is"
        " quarantined with its reason, not ingested, and a `refused` alert is sent.",
        partitions_def=partitions,  # one result per landed file
    )

    @dg.asset(
        key=asset_key(spec, "reference_data"),
        code_version=code_version(spec, "reference_data"),
        group_name=spec.name,
        automation_condition=when_missing(),
        kinds={"pandas", "parquet"},
        output_required=False,  # an edit that breaks the table is refused, not materialized
    )
    def reference_data(context: dg.AssetExecutionContext):
        """The trusted table: the first training rows and the gate's holdout (rows with a target)."""
        source = spec.reference.source
        try:
            fingerprint = reference_fingerprint(spec.reference)
            table, without_target = reference_rows(spec)
        except (ContractViolation, UnreadableFile, OSError) as error:
            if context.instance.get_latest_materialization_event(context.asset_key) is None:
                raise  # nothing to keep: the first reading must succeed
            # An edit that breaks the table is refused like a landed file: the rows read
            # before, and production, stay as they are; the run ends SUCCESS, tagged.
            line = f"reference table {source} refused: {error}; the rows read before are kept"
            context.log.warning(line)
            record_file_refusal(context.instance, context.run.run_id, spec.name, source, line)
            return
        metadata = {
            **table_metadata(table, table_schema(spec)),
            "source": source,
            "sha256": dg.MetadataValue.text(fingerprint),
            "rows_without_target": dg.MetadataValue.int(without_target),
        }
        yield dg.Output(table, metadata=metadata, data_version=dg.DataVersion(fingerprint))

    @dg.asset(
        key=asset_key(spec, "raw_batches"),
        code_version=code_version(spec, "raw_batches"),
        group_name=spec.name,
        partitions_def=partitions,
        retry_policy=FILE_SYSTEM_RETRY,
        check_specs=[contract_check],
        kinds={"pandas", "parquet"},
        output_required=False,  # a refused file is quarantined, not materialized
    )
    def raw_batches(context: dg.AssetExecutionContext, landing: LandingZone):
        """One landed file's rows, validated against the data contract, with row ids; archived."""
        zone = landing.for_model(spec.name)
        key = context.partition_key
        sha256 = zone.fingerprint(key) if zone.whereabouts(key) == "pending" else None
        try:
            landed, notes = zone.read_table(key, columns=spec.column_names)
            table = validate(spec, landed, source=key)
        except (ContractViolation, UnreadableFile) as error:
            yield refused_file(context, spec, zone, sha256, error, CONTRACT_CHECK)
            return
        try:
            archived = zone.archive(key)
        except OSError as error:  # retried by the policy; the file stays in landing/ meanwhile
            context.log.error(f"{key}: archiving failed ({error}); the file stays in landing/")
            raise
        ignored = [column for column in landed.columns if column not in spec.column_names]
        # Each row gets its id once, here, so retraining never hashes stored rows again.
        table["row_id"] = row_ids(spec, table)
        context.log.info(f"{key}: {len(table)} rows accepted, archived as {archived}")
        yield dg.Output(
            table,
            data_version=dg.DataVersion(sha256) if sha256 else None,
            metadata={
                **table_metadata(table, table_schema(spec, {"row_id": ROW_ID_COLUMN})),
                "file": key,
                "sha256": dg.MetadataValue.text(sha256 or ""),
                "archived_as": dg.MetadataValue.path(str(archived)),
                "ignored_columns": dg.MetadataValue.json(ignored),
                "normalised": dg.MetadataValue.json(notes),
                "duplicate_rows": dg.MetadataValue.int(int(table.duplicated().sum())),
            },
        )
        yield dg.AssetCheckResult(check_name=CONTRACT_CHECK, passed=True)

    return [reference_data, raw_batches]
