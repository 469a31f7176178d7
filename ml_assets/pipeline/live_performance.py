"""After the labels: each version's live performance on its labelled rows against its own
at promotion, the check that finds the production version degraded, the retrain it launches,
and what `ml-assets status` shows of it."""

from collections import Counter
from typing import TYPE_CHECKING

import dagster as dg

from ml_assets.learn.champion import PREDICTIONS_FILE
from ml_assets.learn.live import labelled_once, version_performance
from ml_assets.learn.model_card import live_table
from ml_assets.learn.spec import ModelSpec
from ml_assets.pipeline.automation import RETRAIN_BECAUSE_TAG
from ml_assets.pipeline.decisions import DEGRADED_TAG, REASON_TAG, record_degraded
from ml_assets.pipeline.metadata import float_metadata, interval_metadata
from ml_assets.pipeline.naming import MODEL_TAG, asset_key
from ml_assets.pipeline.versions import code_version, latest_record
from ml_assets.store.registry import ModelRegistry, ModelVersions, RegistryError
from ml_assets.store.served import ServedRecords

if TYPE_CHECKING:
    import pandas as pd

LIVE_CHECK = "live_not_degraded"
DEGRADED_INTERVAL_SECONDS = 10
# The live performance of a version none of whose answers has been labelled yet.
NOT_LABELLED = {
    "labelled_rows": 0,
    "metrics": None,
    "intervals": None,
    "at_promotion": None,
    "versus_promotion": None,
    "degraded": False,
    "said": "no labelled rows yet",
}
SERVED_COUNT_PAGE = 1000  # materializations read at a time to count the served rows


def live_performance_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    """<model>/live_performance and its check live_not_degraded."""
    metric = spec.gate.metric
    live_check = dg.AssetCheckSpec(
        LIVE_CHECK,
        asset=asset_key(spec, "live_performance"),
        description=f"With each live_performance: warns when the production version's"
        f" {metric.label} on its labelled rows is detectably worse than at its promotion beyond"
        f" the gate's tolerance (the interval of live − promotion wholly worse), on at least"
        f" {spec.min_labelled_rows} labelled rows (monitoring.min_labelled_rows); then a"
        f" `degraded` alert is posted and {spec.named('training_job')} is launched.",
    )

    @dg.asset(
        key=asset_key(spec, "live_performance"),
        code_version=code_version(spec, "live_performance"),
        group_name=spec.name,
        ins={
            "labels": dg.AssetIn(
                asset_key(spec, "labels"),
                partition_mapping=dg.AllPartitionMapping(),
                metadata={"allow_missing_partitions": True},
            )
        },
        # what each version answered is counted from their materializations, not loaded
        deps=[asset_key(spec, "served_predictions"), asset_key(spec, "predictions")],
        check_specs=[live_check],
        io_manager_key="json_io_manager",
        kinds={"scikitlearn"},
    )
    def live_performance(
        context: dg.AssetExecutionContext,
        labels: dict,
        registry: ModelRegistry,
        served: ServedRecords,
    ):
        """Each production version's metrics on its labelled rows, with intervals, against the
        same version's at its promotion; newest version first."""
        labelled = labelled_once(list(labels.values()))
        versions = registry.for_model(spec.name)
        live = live_versions(
            spec, versions, labelled, served_rows_by_version(context.instance, spec, served)
        )
        production = versions.production()
        judged = next(
            (entry for entry in live if production and entry["version"] == production.version),
            None,
        )
        metadata = {
            "live_against_promotion": dg.MetadataValue.md(live_table(spec, live)),
            "versions": dg.MetadataValue.json(live),
            "labelled_rows": dg.MetadataValue.int(len(labelled)),
        }
        if judged is not None and judged["labelled_rows"]:
            metadata.update(float_metadata("live", judged["metrics"]))
            metadata.update(float_metadata("at_promotion", judged["at_promotion"]["metrics"]))
            metadata.update(
                interval_metadata(judged["versus_promotion"][metric.name], "versus_promotion_")
            )
        yield dg.Output({"versions": live}, metadata=metadata)
        yield live_result(context, spec, production, judged)

    return live_performance


def live_versions(
    spec: ModelSpec, versions: ModelVersions, labelled: "pd.DataFrame", served: Counter
) -> list[dict]:
    """The live performance of every version that answered or was labelled, newest first."""
    labelled_versions = set(labelled["version"].dropna()) if "version" in labelled else set()
    live = []
    for version in sorted(set(served) | labelled_versions, reverse=True):  # ids start with time
        rows = labelled[labelled["version"] == version] if labelled_versions else labelled.iloc[:0]
        entry = {"version": version, "served_rows": int(served.get(version, 0))}
        if len(rows):
            at_promotion, card = promotion_of(versions, version)
            entry.update(version_performance(spec, rows, at_promotion, card.get("metrics", {})))
        else:
            entry.update(NOT_LABELLED)
        live.append(entry)
    return live


def promotion_of(versions: ModelVersions, version: str) -> tuple["pd.DataFrame | None", dict]:
    """A version's holdout predictions at promotion and its card (None and {} for a version
    the registry no longer holds)."""
    import io

    import pandas as pd

    try:
        card = versions.get(version).card
    except RegistryError:
        return None, {}
    kept = versions.attachment(version, PREDICTIONS_FILE)
    return (None if kept is None else pd.read_parquet(io.BytesIO(kept))), card


def served_rows_by_version(
    instance: dg.DagsterInstance, spec: ModelSpec, served: ServedRecords
) -> Counter:
    """How many rows each version answered: served (each sealed file read, from the latest
    materialization of each partition, and the segments services still write) and scored in
    landed batches."""
    unsealed = served.unsealed(spec.name)
    counts: Counter = Counter() if unsealed is None else Counter(unsealed["version"])
    for name in ("served_predictions", "predictions"):
        seen, cursor, more = set(), None, True
        while more:
            result = instance.fetch_materializations(
                asset_key(spec, name), limit=SERVED_COUNT_PAGE, cursor=cursor
            )
            for record in result.records:  # newest first: the partition's latest counts
                materialization = record.asset_materialization
                if materialization.partition in seen:
                    continue
                seen.add(materialization.partition)
                by_version = materialization.metadata.get("rows_by_version")
                if by_version is not None:
                    counts.update(by_version.value)
            cursor, more = result.cursor, result.has_more
    return counts


def live_result(
    context: dg.AssetExecutionContext, spec: ModelSpec, production, judged: dict | None
) -> dg.AssetCheckResult:
    """live_not_degraded on the production version: fails (warns) when it is degraded, and
    then tags the run so that the alert is posted and the retrain launched."""
    if production is None:
        said, degraded = "no production version yet", False
    elif judged is None or not judged["labelled_rows"]:
        said, degraded = f"no labelled rows of production {production.version} yet", False
    else:
        said, degraded = f"production {production.version}: {judged['said']}", judged["degraded"]
    if degraded:
        context.log.warning(said)
        record_degraded(context.instance, context.run.run_id, spec.name, production.version, said)
    metadata = {"labelled_rows": dg.MetadataValue.int(judged["labelled_rows"] if judged else 0)}
    if production is not None:
        metadata["version"] = dg.MetadataValue.text(production.version)
    if judged is not None and judged["labelled_rows"]:
        metric = spec.gate.metric.name
        metadata["compared"] = dg.MetadataValue.json(
            {
                "metric": metric,
                "live": judged["metrics"][metric],
                "at_promotion": judged["at_promotion"]["metrics"][metric],
                "difference": judged["versus_promotion"][metric],
                "confidence": spec.gate.confidence,
            }
        )
    return dg.AssetCheckResult(
        check_name=LIVE_CHECK,
        passed=not degraded,
        severity=dg.AssetCheckSeverity.WARN,
        description=said,
        metadata=metadata,
    )


def retrain_when_degraded(spec: ModelSpec, training: dg.JobDefinition):
    """<model>_retrain_when_degraded."""

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name=spec.named("retrain_when_degraded"),
        request_job=training,
        description=f"When a run finds {spec.name}'s production version degraded (its"
        f" live_not_degraded check failed): launches {spec.named('training_job')} at once,"
        " through the gate, for that finding.",
        minimum_interval_seconds=DEGRADED_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def retrain_degraded(context: dg.RunStatusSensorContext):
        """Retrains once for each run that found the production version degraded."""
        run = context.dagster_run
        if run.tags.get(MODEL_TAG) != spec.name or DEGRADED_TAG not in run.tags:
            return dg.SkipReason(f"run {run.run_id} found nothing degraded in {spec.name}")
        return dg.RunRequest(
            run_key=f"degraded-{run.run_id}",
            tags={RETRAIN_BECAUSE_TAG: run.tags.get(REASON_TAG, "")[:1000]},
        )

    return retrain_degraded


def live_status(instance: dg.DagsterInstance, spec: ModelSpec, served: ServedRecords) -> list[dict]:
    """Each version that answered, newest first: its live performance as the latest
    live_performance measured it, with the rows served counted now."""
    record = latest_record(instance, spec, "live_performance")
    measured = [] if record is None else record.asset_materialization.metadata["versions"].value
    live = {entry["version"]: dict(entry) for entry in measured}
    for version, rows in served_rows_by_version(instance, spec, served).items():
        live.setdefault(version, {"version": version, **NOT_LABELLED})["served_rows"] = int(rows)
    return [live[version] for version in sorted(live, reverse=True)]
