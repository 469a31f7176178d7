"""Deployment: the gated promotion into the model registry, rollback, and live predictions."""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
from pydantic import Field

from ml_assets.learn.champion import (
    PREDICTIONS_FILE,
    differs,
    recorded_inputs,
    unlike,
    version_inputs,
)
from ml_assets.learn.labels import LABEL
from ml_assets.learn.model_card import card_markdown, card_metrics, card_summary
from ml_assets.learn.modeling import estimator_of, model_input, prediction_fingerprint
from ml_assets.learn.plots import IMPORTANCE_PLOT, importance_plot
from ml_assets.learn.served_records import new_prediction_ids
from ml_assets.learn.spec import ModelSpec
from ml_assets.learn.splits import ROW_ID_COLUMN, reference_holdout
from ml_assets.learn.threads import fitting_threads
from ml_assets.pipeline.conditions import deploy_after_passed_gate
from ml_assets.pipeline.decisions import (
    PROMOTED,
    REFUSED,
    gate_evaluation,
    record_promotion,
    record_refusal,
    refusal_reason,
)
from ml_assets.pipeline.ingestion import FILE_SYSTEM_RETRY, landed_files
from ml_assets.pipeline.metadata import (
    candidate_facts,
    float_metadata,
    table_metadata,
    table_schema,
)
from ml_assets.pipeline.naming import asset_key, model_tags
from ml_assets.pipeline.tracking import mirror_champion, mirror_decision, mirror_rollback
from ml_assets.pipeline.versions import code_version
from ml_assets.store.mlflow_mirror import MlflowMirror
from ml_assets.store.registry import ModelRegistry, ModelVersion, ModelVersions, Switch

# The schedule is weekly: a production model older than 8 days means a retrain was missed or
# every candidate since was refused (a warning); two weeks without a promotion is a failure.
PRODUCTION_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=15), warn_window=timedelta(days=8)
)


def gate_refusal(spec: ModelSpec, instance: dg.DagsterInstance) -> str | None:
    """Why the latest model_metrics may not be deployed, or None when every gate check passed.

    The gate checks fail with WARN severity, so production_model runs after them, in its own
    run or another, and this is what stops it: after a refused gate, and after a gate that
    was never evaluated on the latest model_metrics.
    """
    metrics_key = asset_key(spec, "model_metrics")
    latest = instance.fetch_materializations(metrics_key, limit=1).records
    if not latest:
        return "model_metrics has never been materialized"
    failed = []
    for name in spec.gate_checks:
        evaluation = gate_evaluation(instance, dg.AssetCheckKey(metrics_key, name), latest[0])
        if evaluation is None:
            return f"the gate check {name} was not evaluated on the latest model_metrics"
        if not evaluation.passed:
            failed.append((name, evaluation.description or "failed"))
    return refusal_reason(failed) if failed else None


def production_metadata(
    spec: ModelSpec, version: ModelVersion, switch: Switch, plots: dict[str, bytes]
) -> dict[str, dg.MetadataValue]:
    """What production_model shows for a switch: a summary, the version, its card, and whether
    a rollback."""
    return {
        "summary": dg.MetadataValue.text(switch_summary(spec, version, switch)),
        "version": dg.MetadataValue.text(version.version),
        "previous_version": dg.MetadataValue.text(switch.from_version or "none"),
        "rollback": dg.MetadataValue.bool(switch.reason == "rollback"),
        "estimator": dg.MetadataValue.text(version.card.get("estimator", "")),
        "sha256": dg.MetadataValue.text(version.card["sha256"]),
        "model_path": dg.MetadataValue.path(str(version.path)),
        "model_card": dg.MetadataValue.md(card_markdown(version.card, plots, spec.task.metrics)),
        **float_metadata("holdout", version.metrics),
    }


def switch_summary(spec: ModelSpec, version: ModelVersion, switch: Switch) -> str:
    """One line on what production now serves: `MSE 2888.51, −8.73 vs the previous version,
    353 training rows`, or for a rollback `rolled back from V: MSE 2900.19, 353 training rows`."""
    if switch.reason == "rollback":  # the card's comparison is with its own predecessor
        return f"rolled back from {switch.from_version}: " + card_summary(
            version.card, spec.gate.metric, compared=False
        )
    return card_summary(version.card, spec.gate.metric)


def rollback_materialization(
    spec: ModelSpec, versions: ModelVersions, switch: Switch
) -> dg.AssetMaterialization:
    """The production_model materialization that records a rollback in the UI's history."""
    version = versions.get(switch.to_version)
    plots = {
        name: (version.path / name).read_bytes()
        for name in (*spec.task.plot_files(), IMPORTANCE_PLOT)
        if (version.path / name).is_file()
    }
    return dg.AssetMaterialization(
        asset_key=asset_key(spec, "production_model"),
        description=f"rollback from {switch.from_version} to {switch.to_version}",
        metadata=production_metadata(spec, version, switch, plots),
    )


def deployment_assets(spec: ModelSpec) -> list[dg.AssetsDefinition]:
    """production_model and predictions of one model."""
    prediction_columns = {
        "row_id": ROW_ID_COLUMN,
        "prediction_id": ("string", "the prediction's id, as the HTTP service gives its own"),
        "version": ("string", "the production version that scored the row"),
        **spec.task.prediction_columns(),
    }

    @dg.asset(
        key=asset_key(spec, "production_model"),
        code_version=code_version(spec, "production_model"),
        group_name=spec.name,
        ins={
            "candidate_model": dg.AssetIn(asset_key(spec, "candidate_model")),
            "model_metrics": dg.AssetIn(asset_key(spec, "model_metrics")),
            "features": dg.AssetIn(asset_key(spec, "features")),
        },
        retry_policy=FILE_SYSTEM_RETRY,
        automation_condition=deploy_after_passed_gate(),
        freshness_policy=PRODUCTION_FRESHNESS,
        output_required=False,  # a refused candidate is not materialized
        kinds={"scikitlearn"},
    )
    def production_model(
        context: dg.AssetExecutionContext,
        candidate_model,
        model_metrics: dict,
        features,
        registry: ModelRegistry,
        mlflow: MlflowMirror,
    ) -> Iterator[dg.MaterializeResult]:
        """The candidate, registered as a new model version and promoted to production."""
        refusal = gate_refusal(spec, context.instance)
        if refusal is not None:
            kept = registry.for_model(spec.name).production()
            kept_version = kept.version if kept else None
            context.log.warning(
                f"not deployed: {refusal}; production keeps {kept_version or 'no version'}"
            )
            record_refusal(context.instance, context.run.run_id, spec.name, kept_version, refusal)
            tracked = model_metrics.get("mlflow_run_id")
            mirror_decision(context, spec, mlflow, tracked, REFUSED, refusal)
            return  # not materialized: production_model's latest materialization stays true
        holdout = reference_holdout(features)
        with fitting_threads():
            fingerprint = prediction_fingerprint(spec, candidate_model, holdout)
        if fingerprint != model_metrics["candidate_fingerprint"]:
            raise dg.Failure(
                description="not deployed: the stored candidate_model is not the model that"
                " model_metrics measured (another run replaced it meanwhile); production is"
                " unchanged",
                allow_retries=False,
            )
        estimator = estimator_of(spec, candidate_model)
        facts = candidate_facts(spec, context.instance)
        holdout_input = model_input(spec, holdout)
        with fitting_threads():
            card_facts, plots = spec.task.card(holdout[spec.target], candidate_model, holdout_input)
            # Kept with the version: what a later gate compares with if it cannot rescore it.
            at_promotion = spec.task.predict(candidate_model, holdout_input)
        at_promotion.insert(0, "row_id", holdout["row_id"].to_numpy())
        at_promotion[LABEL] = holdout[spec.target].to_numpy()  # live is compared with these
        if model_metrics.get("importance"):
            plots[IMPORTANCE_PLOT] = importance_plot(
                model_metrics["importance"], spec.gate.metric.label
            )
        versions = registry.for_model(spec.name)
        version = versions.register(
            candidate_model,
            card={
                "model": spec.name,
                "task": spec.task.name,
                "estimator": type(estimator).__name__,
                "model_config": facts["config"],
                "model_choice": facts["chosen"],
                "params": {k: v for k, v in estimator.get_params().items() if _is_plain(v)},
                **card_metrics(model_metrics),
                "all_holdout": model_metrics["all_holdout"],
                "training_rows": model_metrics["training_rows"],
                "holdout_rows": model_metrics["holdout_rows"],
                "data_fingerprint": model_metrics["data_fingerprint"],
                "inputs": recorded_inputs(spec),
                # a suspected leak: a later gate does not hold an honest candidate to it
                "too_good": spec.task.too_good(
                    model_metrics["candidate"], model_metrics["holdout_rows"]
                ),
                "run_id": context.run.run_id,
                **card_facts,
            },
            attachments={
                **plots,
                PREDICTIONS_FILE: at_promotion.to_parquet(index=False, compression="zstd"),
            },
        )
        switch = versions.promote(version.version)
        removed = versions.prune()
        metadata = production_metadata(spec, version, switch, plots)
        summary = metadata["summary"].value
        context.log.info(
            f"production is now {version.version} (was {switch.from_version or 'none'}):"
            f" {summary}; pruned {len(removed)} old version(s)"
        )
        record_promotion(
            context.instance,
            context.run.run_id,
            spec.name,
            version.version,
            switch.from_version,
            summary,
        )
        tracked = model_metrics.get("mlflow_run_id")
        card = {"model_card.md": metadata["model_card"].value, **plots}
        mirror_decision(context, spec, mlflow, tracked, PROMOTED, summary, version.version, card)
        registered = mirror_champion(
            context, spec, mlflow, tracked, candidate_model, versions, version.version
        )
        if registered is not None:
            metadata["mlflow_model_version"] = dg.MetadataValue.text(registered)
        yield dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        key=asset_key(spec, "predictions"),
        code_version=code_version(spec, "predictions"),
        group_name=spec.name,
        ins={"raw_batches": dg.AssetIn(asset_key(spec, "raw_batches"))},
        partitions_def=landed_files(spec),
        output_required=False,
        kinds={"scikitlearn", "parquet"},
    )
    def predictions(
        context: dg.AssetExecutionContext, raw_batches, registry: ModelRegistry
    ) -> Iterator[dg.Output]:
        """Each landed batch scored by the production model of that moment, with its live
        metrics; each row with its prediction_id and the version, as a served row has."""
        versions = registry.for_model(spec.name)
        production = versions.production()
        if production is None:
            context.log.info("no production model yet: nothing to score this batch with")
            return
        model = versions.load(production.version)
        inputs = version_inputs(production.card) if differs(spec, production.card) else None
        given_as_missing = [name for name in unlike(spec, inputs) if name not in raw_batches]
        if given_as_missing:
            context.log.warning(
                f"production {production.version} takes {', '.join(given_as_missing)}, which"
                " the declaration no longer has: given as missing (imputed) until a version"
                " trained on the declaration is promoted"
            )
        rows = model_input(spec, raw_batches, inputs)
        with fitting_threads():
            scored = raw_batches.assign(
                prediction_id=new_prediction_ids(len(raw_batches)), version=production.version
            ).join(spec.task.predict(model, rows))
            live = spec.task.evaluate(model, rows, raw_batches[spec.target])
        yield dg.Output(
            scored,
            metadata={
                **table_metadata(scored, table_schema(spec, prediction_columns)),
                "production_version": dg.MetadataValue.text(production.version),
                "rows_by_version": dg.MetadataValue.json({production.version: len(scored)}),
                "inputs_given_as_missing": dg.MetadataValue.json(given_as_missing),
                **float_metadata("live", live),
            },
        )

    return [production_model, predictions]


class RollbackConfig(dg.Config):
    """Which version to put back in production."""

    version: str | None = Field(
        default=None, description="a registered version; default: the previous production one"
    )


def rollback_job(spec: ModelSpec) -> dg.JobDefinition:
    """<model>_rollback_production: put a registered version back in production."""

    @dg.op(name=spec.named("roll_back"))
    def roll_back(
        context: dg.OpExecutionContext,
        config: RollbackConfig,
        registry: ModelRegistry,
        mlflow: MlflowMirror,
    ) -> None:
        """Points production back at a registered version and records it on production_model."""
        versions = registry.for_model(spec.name)
        switch = versions.rollback(config.version)
        context.log.info(
            f"rolled back production from {switch.from_version} to {switch.to_version}"
        )
        context.log_event(rollback_materialization(spec, versions, switch))
        said = mirror_rollback(spec, mlflow, switch.to_version)
        if said is not None:
            context.log.info(said)

    @dg.job(
        name=spec.named("rollback_production"),
        description=f"Put a registered {spec.name} version back in production (default: the"
        " previous).",
        tags=model_tags(spec),
    )
    def rollback_production() -> None:
        roll_back()

    return rollback_production


def _is_plain(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
