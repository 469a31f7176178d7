"""Dagster's floor for our graph: the same assets, inputs, checks and pool, with no work in them.

Launched like the real graph (by `dagster job execute`, or as `diabetes_training_job` through
`dagster dev`'s API; the in-process executor, the same instance configuration), its time is
what Dagster itself costs for a graph of this shape: the command or run worker, the instance,
the run and every event. Our graph minus this is what our steps cost; this plus the plain
script is the best any graph launched that way can do without doing less work than the
script. Each passes 0 to the next in memory; raw_batches, data our graph reads from storage,
is left out.

    dagster job execute -m bench.empty_graph -j diabetes_training_job
"""

from collections.abc import Iterator

import dagster as dg

MODEL = "diabetes"  # the model the bench measures: the same keys, checks and job name
# Named here rather than loaded from ml_assets, whose import would count in the floor;
# test_bench proves they are our graph's.
CHECKS = {
    "features": (
        "enough_rows",
        "no_missing_values",
        "no_suspicious_feature",
        "target_in_plausible_range",
        "unique_row_ids",
    ),
    "model_metrics": (
        "mse_below_threshold",
        "not_worse_than_production",
        "beats_baseline",
        "holdout_score_is_plausible",
    ),
}


def _passed(specs) -> Iterator[dg.AssetCheckResult]:
    for spec in specs:
        yield dg.AssetCheckResult(asset_key=spec.asset_key, check_name=spec.name, passed=True)


def _check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    """Our blocking checks on one of the model's assets."""
    key = dg.AssetKey([MODEL, asset])
    return [dg.AssetCheckSpec(name, asset=key, blocking=True) for name in CHECKS[asset]]


def _in(asset: str) -> dg.AssetIn:
    return dg.AssetIn(key=dg.AssetKey([MODEL, asset]))


@dg.asset(key_prefix=MODEL)
def reference_data() -> int:
    """Nothing: stands for the bundled table."""
    return 0


@dg.asset(key_prefix=MODEL, ins={"reference_data": _in("reference_data")})
def dataset(reference_data) -> int:
    """Nothing: stands for the de-duplicated rows."""
    return 0


@dg.asset(key_prefix=MODEL, ins={"dataset": _in("dataset")})
def features(dataset) -> int:
    """Nothing: stands for the cleaned table."""
    return 0


@dg.asset(key_prefix=MODEL, ins={"features": _in("features")}, pool="training")
def candidate_model(features) -> int:
    """Nothing: stands for the fitted pipeline."""
    return 0


@dg.asset(
    key_prefix=MODEL,
    ins={"candidate_model": _in("candidate_model"), "features": _in("features")},
    pool="training",
)
def model_metrics(candidate_model, features) -> int:
    """Nothing: stands for the holdout metrics."""
    return 0


@dg.asset(
    key_prefix=MODEL,
    ins={name: _in(name) for name in ("candidate_model", "model_metrics", "features")},
)
def production_model(candidate_model, model_metrics, features) -> int:
    """Nothing: stands for the promoted version."""
    return 0


@dg.multi_asset_check(specs=_check_specs("features"), ins={"features": _in("features")})
def empty_feature_checks(features) -> Iterator[dg.AssetCheckResult]:
    """Every feature check, passed."""
    yield from _passed(_check_specs("features"))


@dg.multi_asset_check(
    specs=_check_specs("model_metrics"), ins={"model_metrics": _in("model_metrics")}
)
def empty_deployment_gate(model_metrics) -> Iterator[dg.AssetCheckResult]:
    """Both gate checks, passed."""
    yield from _passed(_check_specs("model_metrics"))


defs = dg.Definitions(
    assets=[reference_data, dataset, features, candidate_model, model_metrics, production_model],
    asset_checks=[empty_feature_checks, empty_deployment_gate],
    jobs=[dg.define_asset_job(f"{MODEL}_training_job", selection="*")],  # named as ours
    executor=dg.in_process_executor,
    resources={"io_manager": dg.mem_io_manager},
)
