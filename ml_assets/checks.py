"""Asset checks: sanity of the features, and the deployment gate on the model metrics."""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from ml_assets.assets.ingestion import landed_files
from ml_assets.contract import COLUMNS, TARGET, column_rules, load_reference_table
from ml_assets.splits import HOLDOUT, TRAIN, id_numbers

DRIFT_P_VALUE = 0.01  # two-sample Kolmogorov–Smirnov test, per column
DRIFT_MIN_STATISTIC = 0.1  # and a difference large enough to matter, not only to detect
MIN_TRAINING_ROWS = 100
MIN_HOLDOUT_ROWS = 20

GATE_CHECKS = ("mse_below_threshold", "not_worse_than_production")


@dg.asset_check(asset="raw_batches", partitions_def=landed_files)
def no_drift_from_reference(raw_batches) -> dg.AssetCheckResult:
    """Each column of the batch is distributed like the reference data (warns, never blocks)."""
    from scipy.stats import ks_2samp

    # The reference comes from the contract's loader, not the reference_data asset: a
    # warning-only check must not fail an ingestion run on an instance that has not
    # materialized reference_data yet.
    reference = load_reference_table()
    drifted, statistics = [], {}
    for column in COLUMNS:
        test = ks_2samp(raw_batches[column], reference[column])
        statistics[column] = {"ks_statistic": float(test.statistic), "p_value": float(test.pvalue)}
        if test.pvalue < DRIFT_P_VALUE and test.statistic > DRIFT_MIN_STATISTIC:
            drifted.append(column)
    return dg.AssetCheckResult(
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"drift in {', '.join(drifted)}" if drifted else "no column drifted",
        metadata={
            "drifted_columns": dg.MetadataValue.json(drifted),
            "largest_ks_statistic": dg.MetadataValue.float(
                max(value["ks_statistic"] for value in statistics.values())
            ),
            "per_column": dg.MetadataValue.json(statistics),
        },
    )


def no_missing_values(features) -> dg.AssetCheckResult:
    """Every feature and target value is present."""
    missing = features.isna().sum()
    missing = missing[missing > 0]
    return dg.AssetCheckResult(
        check_name="no_missing_values",
        passed=missing.empty,
        metadata={"missing_by_column": dg.MetadataValue.json(missing.astype(int).to_dict())},
    )


def unique_row_ids(features) -> dg.AssetCheckResult:
    """No row id appears twice, so no row can sit in both the train and the holdout split."""
    import pandas as pd

    # Compared as integers: a quarter of the time of hashing a million hex strings.
    repeated = pd.Series(id_numbers(features["row_id"])).duplicated().to_numpy()
    duplicated = features["row_id"][repeated]
    return dg.AssetCheckResult(
        check_name="unique_row_ids",
        passed=duplicated.empty,
        metadata={
            "duplicate_ids": dg.MetadataValue.int(len(duplicated)),
            "examples": dg.MetadataValue.json(duplicated.head(5).tolist()),
        },
    )


def enough_rows(features) -> dg.AssetCheckResult:
    """Enough training and holdout rows to fit and to judge a model."""
    train = int((features["split"] == TRAIN).sum())
    holdout = int((features["split"] == HOLDOUT).sum())
    return dg.AssetCheckResult(
        check_name="enough_rows",
        passed=train >= MIN_TRAINING_ROWS and holdout >= MIN_HOLDOUT_ROWS,
        metadata={
            "train_rows": dg.MetadataValue.int(train),
            "holdout_rows": dg.MetadataValue.int(holdout),
            "min_train_rows": dg.MetadataValue.int(MIN_TRAINING_ROWS),
            "min_holdout_rows": dg.MetadataValue.int(MIN_HOLDOUT_ROWS),
        },
    )


def target_in_plausible_range(features) -> dg.AssetCheckResult:
    """Every target lies in the contract's plausible range."""
    rule = next(rule for rule in column_rules() if rule.name == TARGET)
    outside = features[~features[TARGET].between(rule.low, rule.high)]
    return dg.AssetCheckResult(
        check_name="target_in_plausible_range",
        passed=outside.empty,
        metadata={
            "rows_outside": dg.MetadataValue.int(len(outside)),
            "range": dg.MetadataValue.text(f"{rule.low:g} to {rule.high:g}"),
            "target_min": dg.MetadataValue.float(float(features[TARGET].min())),
            "target_max": dg.MetadataValue.float(float(features[TARGET].max())),
        },
    )


FEATURE_CHECKS = {
    check.__name__: check
    for check in (no_missing_values, unique_row_ids, enough_rows, target_in_plausible_range)
}


@dg.multi_asset_check(
    name="feature_checks",
    specs=[
        dg.AssetCheckSpec(name, asset="features", blocking=True, description=check.__doc__)
        for name, check in FEATURE_CHECKS.items()
    ],
    ins={"features": dg.AssetIn("features")},
    can_subset=True,
)
def feature_checks(
    context: dg.AssetCheckExecutionContext, features
) -> Iterator[dg.AssetCheckResult]:
    """The blocking checks on the features, in one step: the table is read once, not four times."""
    for key in sorted(context.selected_asset_check_keys, key=lambda key: key.name):
        yield FEATURE_CHECKS[key.name](features)


class GateConfig(dg.Config):
    """When a candidate may replace the production model; set per run in the Launchpad.

    Like MLflow's `MetricThreshold(min_absolute_change, min_relative_change)`, each tolerance
    that is set must hold; a negative one demands an improvement. With neither set the
    candidate must be no worse than production.
    """

    mse_threshold: float = Field(
        default=3000.0, gt=0, description="the candidate's holdout MSE must be below this"
    )
    max_absolute_increase: float | None = Field(
        default=None,
        description="allowed MSE increase over production in MSE units (negative: required"
        " decrease)",
    )
    max_relative_increase: float | None = Field(
        default=None,
        gt=-1,
        description="allowed MSE increase over production as a fraction, 0.01 = 1% (negative:"
        " required decrease)",
    )

    def allowed_mse(self, production_mse: float) -> float:
        """The highest candidate MSE that still counts as not worse than production."""
        limits = [production_mse]
        if self.max_absolute_increase is not None or self.max_relative_increase is not None:
            limits = []
            if self.max_absolute_increase is not None:
                limits.append(production_mse + self.max_absolute_increase)
            if self.max_relative_increase is not None:
                limits.append(production_mse * (1 + self.max_relative_increase))
        return min(limits)


def mse_below_threshold_result(metrics: dict, config: GateConfig) -> dg.AssetCheckResult:
    """Passes when the candidate's holdout MSE is below the threshold."""
    mse = metrics["candidate"]["mse"]
    passed = mse < config.mse_threshold
    verdict = "below" if passed else "not below"
    return dg.AssetCheckResult(
        check_name="mse_below_threshold",
        passed=passed,
        description=f"candidate holdout MSE {mse:.2f} is {verdict} the threshold "
        f"{config.mse_threshold:g}",
        metadata={
            "candidate_mse": dg.MetadataValue.float(mse),
            "mse_threshold": dg.MetadataValue.float(config.mse_threshold),
        },
    )


def not_worse_than_production_result(metrics: dict, config: GateConfig) -> dg.AssetCheckResult:
    """Passes when nothing is in production, or the candidate is no worse on the same rows."""
    mse = metrics["candidate"]["mse"]
    production = metrics["production"]
    if production is None:
        return dg.AssetCheckResult(
            check_name="not_worse_than_production",
            passed=True,
            description="no production model yet: nothing to compare with",
            metadata={"candidate_mse": dg.MetadataValue.float(mse)},
        )
    allowed = config.allowed_mse(production["mse"])
    passed = mse <= allowed
    comparison = "within" if passed else "above"
    return dg.AssetCheckResult(
        check_name="not_worse_than_production",
        passed=passed,
        description=f"candidate holdout MSE {mse:.2f} is {comparison} the allowed {allowed:.2f} "
        f"(production {metrics['production_version']}: {production['mse']:.2f}) "
        f"on the same {metrics['holdout_rows']} reference holdout rows",
        metadata={
            "candidate_mse": dg.MetadataValue.float(mse),
            "production_mse": dg.MetadataValue.float(production["mse"]),
            "allowed_mse": dg.MetadataValue.float(allowed),
            "production_version": dg.MetadataValue.text(metrics["production_version"]),
            "holdout_rows": dg.MetadataValue.int(metrics["holdout_rows"]),
        },
    )


@dg.multi_asset_check(
    name="deployment_gate",
    specs=[
        dg.AssetCheckSpec(
            name,
            asset="model_metrics",
            blocking=True,
            description=description,
        )
        for name, description in zip(
            GATE_CHECKS,
            (
                "The candidate's holdout MSE is below the threshold.",
                "The candidate is no worse than the production model on the same holdout rows.",
            ),
            strict=True,
        )
    ],
    ins={"model_metrics": dg.AssetIn("model_metrics")},
)
def deployment_gate(config: GateConfig, model_metrics: dict) -> Iterator[dg.AssetCheckResult]:
    """The two blocking checks that decide whether the candidate may become production."""
    yield mse_below_threshold_result(model_metrics, config)
    yield not_worse_than_production_result(model_metrics, config)
