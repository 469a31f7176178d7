"""Dagster's floor for our graph: the same assets, inputs, checks and pool, with no work in them.

Launched like the real graph (by `dagster asset materialize`, or as `training_job` through
`dagster dev`'s API; the in-process executor, the same instance configuration), its time is
what Dagster itself costs for a graph of this shape: the command or run worker, the instance,
the run and every event. Our graph minus this is what our steps cost; this plus the plain
script is the best any graph launched that way can do without doing less work than the
script. Each passes 0 to the next in memory; raw_batches, data our graph reads from storage,
is left out.

    dagster asset materialize -m bench.empty_graph --select '*'
"""

from collections.abc import Iterator

import dagster as dg

from ml_assets.checks import deployment_gate, feature_checks


def _passed(specs) -> Iterator[dg.AssetCheckResult]:
    for spec in specs:
        yield dg.AssetCheckResult(asset_key=spec.asset_key, check_name=spec.name, passed=True)


@dg.asset
def reference_data() -> int:
    """Nothing: stands for the bundled table."""
    return 0


@dg.asset
def dataset(reference_data) -> int:
    """Nothing: stands for the de-duplicated rows."""
    return 0


@dg.asset
def features(dataset) -> int:
    """Nothing: stands for the cleaned table."""
    return 0


@dg.asset(pool="training")
def candidate_model(features) -> int:
    """Nothing: stands for the fitted pipeline."""
    return 0


@dg.asset
def model_metrics(candidate_model, features) -> int:
    """Nothing: stands for the holdout metrics."""
    return 0


@dg.asset
def production_model(candidate_model, model_metrics, features) -> int:
    """Nothing: stands for the promoted version."""
    return 0


@dg.multi_asset_check(specs=list(feature_checks.check_specs), ins={"features": dg.AssetIn()})
def empty_feature_checks(features) -> Iterator[dg.AssetCheckResult]:
    """Every feature check, passed."""
    yield from _passed(feature_checks.check_specs)


@dg.multi_asset_check(specs=list(deployment_gate.check_specs), ins={"model_metrics": dg.AssetIn()})
def empty_deployment_gate(model_metrics) -> Iterator[dg.AssetCheckResult]:
    """Both gate checks, passed."""
    yield from _passed(deployment_gate.check_specs)


defs = dg.Definitions(
    assets=[reference_data, dataset, features, candidate_model, model_metrics, production_model],
    asset_checks=[empty_feature_checks, empty_deployment_gate],
    jobs=[dg.define_asset_job("training_job", selection="*")],  # named as ours
    executor=dg.in_process_executor,
    resources={"io_manager": dg.mem_io_manager},
)
