"""Ingestion: the bundled reference table and one partition per landed file."""

import dagster as dg

from ml_assets.conditions import when_missing
from ml_assets.contract import (
    COLUMNS,
    ContractViolation,
    load_reference_table,
    table_schema,
    validate,
)
from ml_assets.landing import LANDED_FILES, LandingZone
from ml_assets.reporting import table_metadata
from ml_assets.splits import ROW_ID_COLUMN, row_ids
from ml_assets.tables import UnreadableFile

landed_files = dg.DynamicPartitionsDefinition(name=LANDED_FILES)

# Transient file-system errors (a busy network share, a full disk being cleaned) are retried;
# a file that breaks the contract is not: retrying cannot change its bytes.
FILE_SYSTEM_RETRY = dg.RetryPolicy(max_retries=3, delay=0.5, backoff=dg.Backoff.EXPONENTIAL)


@dg.asset(group_name="ingestion", automation_condition=when_missing(), kinds={"pandas", "parquet"})
def reference_data() -> dg.Output:
    """The diabetes table that ships with scikit-learn, in raw units."""
    table = load_reference_table()
    return dg.Output(table, metadata=table_metadata(table, table_schema()))


CONTRACT_CHECK = dg.AssetCheckSpec(
    "matches_data_contract",
    asset="raw_batches",
    description="The landed file has the contract's columns, types and plausible values.",
    partitions_def=landed_files,  # one result per landed file
)


@dg.asset(
    group_name="ingestion",
    partitions_def=landed_files,
    retry_policy=FILE_SYSTEM_RETRY,
    check_specs=[CONTRACT_CHECK],
    kinds={"pandas", "parquet"},
)
def raw_batches(context: dg.AssetExecutionContext, landing: LandingZone):
    """One landed file's rows, validated against the data contract, with row ids; archived."""
    key = context.partition_key
    sha256 = landing.fingerprint(key) if landing.whereabouts(key) == "pending" else None
    try:
        landed, notes = landing.read_table(key)
        table = validate(landed, source=key)
    except (ContractViolation, UnreadableFile) as error:
        problems = getattr(error, "problems", [{"column": None, "check": str(error), "rows": []}])
        stored = landing.quarantine(
            key, {"sha256": sha256, "error": str(error), "problems": problems}
        )
        context.log.error(f"{error}\nQuarantined as {stored}")
        # The failed check is recorded before the step fails, so the UI shows it per file.
        yield dg.AssetCheckResult(
            check_name=CONTRACT_CHECK.name,
            passed=False,
            description=str(error),
            metadata={"problems": dg.MetadataValue.json(problems), "file": key},
        )
        raise dg.Failure(
            description=str(error),
            metadata={"file": key, "quarantined_as": str(stored), "sha256": sha256},
            allow_retries=False,
        ) from None
    try:
        archived = landing.archive(key)
    except OSError as error:  # retried by the policy; the file stays in landing/ meanwhile
        context.log.error(f"{key}: archiving failed ({error}); the file stays in landing/")
        raise
    ignored = [column for column in landed.columns if column not in COLUMNS]
    # Each row gets its id once, here, so retraining never hashes stored rows again.
    table["row_id"] = row_ids(table)
    context.log.info(f"{key}: {len(table)} rows accepted, archived as {archived}")
    yield dg.Output(
        table,
        metadata={
            **table_metadata(table, table_schema({"row_id": ROW_ID_COLUMN})),
            "file": key,
            "sha256": dg.MetadataValue.text(sha256 or ""),
            "archived_as": dg.MetadataValue.path(str(archived)),
            "ignored_columns": dg.MetadataValue.json(ignored),
            "normalised": dg.MetadataValue.json(notes),
            "duplicate_rows": dg.MetadataValue.int(int(table.duplicated().sum())),
        },
    )
    yield dg.AssetCheckResult(check_name=CONTRACT_CHECK.name, passed=True)
