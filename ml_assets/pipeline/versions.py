"""Versions that mean something: each asset's code_version, made of the package's version and
the parts of the declaration the asset reads; and whether the last candidate was trained on
what there is now (stale), and if not, what changed."""

import hashlib
import itertools
import json
from importlib import metadata

import dagster as dg

from ml_assets.learn.spec import ModelSpec
from ml_assets.pipeline.naming import asset_key

PACKAGE_VERSION = metadata.version("ml_assets")
# The tags Dagster puts on each materialization: its data version, and for each input the
# newest record of it read before the inputs were loaded.
DATA_VERSION_TAG = "dagster/data_version"
INPUT_EVENT_POINTER = "dagster/input_event_pointer"
CODE_VERSION_TAG = "dagster/code_version"

CONTRACT = ("task", "target", "columns")  # what a row must be, and what it predicts
READS = {
    "reference_data": (*CONTRACT, "reference"),
    "raw_batches": CONTRACT,
    "dataset": (*CONTRACT, "reference"),  # the split
    "features": CONTRACT,
    "candidate_model": (*CONTRACT, "reference", "estimator"),  # a time split's folds
    "model_metrics": (*CONTRACT, "reference", "estimator", "gate"),
    "production_model": (*CONTRACT, "reference", "estimator", "gate"),
    "predictions": CONTRACT,
    "served_predictions": CONTRACT,
    "labels": CONTRACT,
    "live_performance": (*CONTRACT, "gate"),
}  # the YAML's `model:` section is the component's `estimator`


def declaration_version(spec: ModelSpec, sections: tuple[str, ...]) -> str:
    """12 hex digits of the sha256 of the declaration's sections, as JSON."""
    parts = {section: spec.declaration.get(section) for section in sections}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def code_version(spec: ModelSpec, asset: str) -> str:
    """`<package version>+<declaration version>`: changes exactly when the code or the part
    of the declaration that decides the asset's output does."""
    return f"{PACKAGE_VERSION}+{declaration_version(spec, READS[asset])}"


def latest_record(
    instance: dg.DagsterInstance, spec: ModelSpec, asset: str
) -> dg.EventLogRecord | None:
    """The record of an asset's latest materialization, or None."""
    records = instance.fetch_materializations(asset_key(spec, asset), limit=1).records
    return records[0] if records else None


def record_tags(record: dg.EventLogRecord | None) -> dict[str, str]:
    """The tags Dagster put on a materialization (none for no record)."""
    return (record.asset_materialization.tags or {}) if record is not None else {}


def _read_by_dataset(instance: dg.DagsterInstance, spec: ModelSpec, asset: str) -> int | None:
    """The storage id of the newest record of an input (raw_batches, labels) the latest
    dataset read, if any.

    Dagster tags each materialization with the newest record of each input it read, fetched
    before the inputs were loaded ("NULL" when there was none).
    """
    pointer = f"{INPUT_EVENT_POINTER}/{asset_key(spec, asset).to_user_string()}"
    read = record_tags(latest_record(instance, spec, "dataset")).get(pointer, "")
    return int(read) if read.isdigit() else None


def left_out(
    instance: dg.DagsterInstance, spec: ModelSpec, asset: str = "raw_batches"
) -> int | None:
    """The newest materialization of an input of the dataset (raw_batches, labels) when the
    latest dataset may not hold it, or None: one materialized while the dataset was being
    built counts as left out (one retrain too many at worst, never a batch missed)."""
    newest = latest_record(instance, spec, asset)
    if newest is None:
        return None
    read = _read_by_dataset(instance, spec, asset)
    return None if read is not None and read >= newest.storage_id else newest.storage_id


def _since_dataset(instance: dg.DagsterInstance, spec: ModelSpec, asset: str) -> int:
    after = _read_by_dataset(instance, spec, asset)
    return len(
        instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key(spec, asset), after_storage_id=after),
            limit=1000,
        ).records
    )


def staleness(spec: ModelSpec, instance: dg.DagsterInstance) -> dict:
    """`{"stale": bool, "reasons": [...], "compared": {...}}`: whether anything the candidate
    depends on (accepted data and labels, the reference table, the declaration, the package) changed
    since the last candidate was trained and measured, and what was compared."""
    from ml_assets.learn.reference import reference_fingerprint

    try:
        reference_now = reference_fingerprint(spec.reference)
    except OSError as error:  # a training run reads it again, and refuses it with its reason
        reference_now = f"unreadable: {error}"
    metrics = latest_record(instance, spec, "model_metrics")
    reference = latest_record(instance, spec, "reference_data")
    recorded_reference = record_tags(reference).get(DATA_VERSION_TAG)
    compared = {
        "declaration": declaration_version(spec, READS["model_metrics"]),
        "package": PACKAGE_VERSION,
        "reference_sha256": reference_now,
    }
    if metrics is None:
        return {
            "stale": True,
            "reasons": ["no candidate has been trained yet"],
            "compared": compared,
        }
    reasons = []
    package, _, declared = record_tags(metrics).get(CODE_VERSION_TAG, "").partition("+")
    if package != PACKAGE_VERSION:
        reasons.append(f"ml_assets changed: {package or 'unknown'} → {PACKAGE_VERSION}")
    if declared != compared["declaration"]:
        reasons.append(
            f"the declaration {spec.declared_in.name} changed: {declared or 'unknown'}"
            f" → {compared['declaration']}"
        )
    if recorded_reference != reference_now:
        reasons.append(
            f"the reference table {spec.reference.source} changed: sha256"
            f" {(recorded_reference or 'none')[:12]} → {reference_now[:12]}"
        )
    for asset, what in (("raw_batches", "batch(es) ingested"), ("labels", "label file(s) joined")):
        if left_out(instance, spec, asset) is not None:
            count = _since_dataset(instance, spec, asset)
            reasons.append(f"{count} accepted {what} since the last dataset")
    order = ("reference_data", "dataset", "features", "model_metrics")
    latest = {asset: latest_record(instance, spec, asset) for asset in order}
    for upstream, downstream in itertools.pairwise(order):
        before, after = latest[upstream], latest[downstream]
        if before is not None and (after is None or after.storage_id < before.storage_id):
            reasons.append(f"{upstream} was materialized after the last {downstream}")
    compared["candidate_measured_in_run"] = metrics.run_id
    return {"stale": bool(reasons), "reasons": reasons, "compared": compared}
