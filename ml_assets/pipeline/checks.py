"""Asset checks of one model: drift of each landed batch, sanity of the features, and the
deployment gate on the model metrics."""

import functools
from collections.abc import Iterator
from typing import Any, Literal

import dagster as dg
from pydantic import Field, create_model

from ml_assets.learn.gate_statistics import (
    BETTER,
    NOT_WORSE,
    Interval,
    difference_sentence,
    percent,
    verdict,
)
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.spec import ModelSpec
from ml_assets.learn.splits import HOLDOUT, TRAIN, id_numbers
from ml_assets.learn.tasks import MIN_TRUSTED_HOLDOUT_ROWS
from ml_assets.pipeline.decisions import record_refusal, refusal_reason
from ml_assets.pipeline.ingestion import landed_files
from ml_assets.pipeline.metadata import float_metadata, interval_metadata
from ml_assets.pipeline.naming import asset_key

DRIFT_P_VALUE = 0.01  # per column: a two-sample test's p-value below this...
DRIFT_MIN_EFFECT = 0.1  # ...and a difference large enough to matter, not only to detect
MIN_TRAINING_ROWS = 100
MIN_HOLDOUT_ROWS = 20
NOT_WORSE_CHECK = "not_worse_than_production"
BEATS_BASELINE_CHECK = "beats_baseline"
PLAUSIBLE_CHECK = "holdout_score_is_plausible"
LEANED_ON = 3  # the features named when a score is too good


def _numeric_drift(batch, reference) -> dict:
    """Kolmogorov–Smirnov between the batch's values and the reference's."""
    from scipy.stats import ks_2samp

    test = ks_2samp(batch.dropna().astype(float), reference.dropna().astype(float))
    return {
        "test": "kolmogorov_smirnov",
        "ks_statistic": float(test.statistic),
        "p_value": float(test.pvalue),
        "effect": float(test.statistic),
    }


def _category_drift(batch, reference) -> dict:
    """Chi-square on the counts of each value (missing counted as a value), with Cramér's V."""
    import numpy as np
    import pandas as pd
    from scipy.stats import chi2_contingency

    counts = pd.concat(
        {
            "batch": batch.astype(object).fillna("<missing>").value_counts(),
            "reference": reference.astype(object).fillna("<missing>").value_counts(),
        },
        axis=1,
    ).fillna(0)
    if len(counts) < 2:  # one value everywhere: nothing to compare
        return {"test": "chi_square", "chi2": 0.0, "cramers_v": 0.0, "p_value": 1.0, "effect": 0.0}
    test = chi2_contingency(counts.T.to_numpy())
    cramers_v = float(np.sqrt(test.statistic / counts.to_numpy().sum()))
    return {
        "test": "chi_square",
        "chi2": float(test.statistic),
        "cramers_v": cramers_v,
        "p_value": float(test.pvalue),
        "effect": cramers_v,
    }


def drift_result(spec: ModelSpec, table) -> dg.AssetCheckResult:
    """Each column of the table but ids, times and absent ones is distributed like the
    reference data (warns, never blocks): Kolmogorov–Smirnov for numbers, chi-square for
    categories; the drifted columns named, the most drifted first."""
    # The reference comes from its loader, not the reference_data asset: a warning-only
    # check must not fail a run on an instance that has not materialized it.
    reference = load_reference_table(spec)
    drifted, statistics = [], {}
    for column in spec.columns:
        if column.is_id or column.type == "datetime" or column.name not in table:
            continue  # new records, new ids and times; a target served rows do not have
        values, reference_values = table[column.name], reference[column.name]
        if column.numeric:
            if values.notna().sum() == 0:
                continue
            result = _numeric_drift(values, reference_values)
        else:
            result = _category_drift(values, reference_values)
        statistics[column.name] = result
        if result["p_value"] < DRIFT_P_VALUE and result["effect"] > DRIFT_MIN_EFFECT:
            drifted.append(column.name)
    drifted.sort(key=lambda name: -statistics[name]["effect"])
    return dg.AssetCheckResult(
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"drift in {', '.join(drifted)}" if drifted else "no column drifted",
        metadata={
            "drifted_columns": dg.MetadataValue.json(drifted),
            "largest_drift_effect": dg.MetadataValue.float(
                max((value["effect"] for value in statistics.values()), default=0.0)
            ),
            "per_column": dg.MetadataValue.json(statistics),
        },
    )


def drift_check(spec: ModelSpec) -> dg.AssetChecksDefinition:
    """no_drift_from_reference on each landed batch of one model."""

    @dg.asset_check(
        asset=asset_key(spec, "raw_batches"),
        name="no_drift_from_reference",
        partitions_def=landed_files(spec),
        description="After each raw_batches partition: warns (never blocks) when a column of"
        " the batch is not distributed like the reference data.",
    )
    def no_drift_from_reference(raw_batches) -> dg.AssetCheckResult:
        """Each column of the batch but ids and times is distributed like the reference data
        (warns, never blocks): Kolmogorov–Smirnov for numbers, chi-square for categories."""
        return drift_result(spec, raw_batches)

    return no_drift_from_reference


def no_missing_values(spec: ModelSpec, features) -> dg.AssetCheckResult:
    """Every value the contract requires is present."""
    required = [column.name for column in spec.columns if not column.nullable]
    missing = features[required].isna().sum()
    missing = missing[missing > 0]
    return dg.AssetCheckResult(
        check_name="no_missing_values",
        passed=missing.empty,
        metadata={"missing_by_column": dg.MetadataValue.json(missing.astype(int).to_dict())},
    )


def unique_row_ids(spec: ModelSpec, features) -> dg.AssetCheckResult:
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


def enough_rows(spec: ModelSpec, features) -> dg.AssetCheckResult:
    """There are enough training and holdout rows to fit and to judge a model."""
    train = int((features["split"] == TRAIN).sum())
    holdout = int((features["split"] == HOLDOUT).sum())
    return dg.AssetCheckResult(
        check_name="enough_rows",
        passed=train >= MIN_TRAINING_ROWS and holdout >= MIN_HOLDOUT_ROWS,
        metadata={
            "train_rows": dg.MetadataValue.int(train),
            "holdout_rows": dg.MetadataValue.int(holdout),
            "minimum": dg.MetadataValue.text(
                f"{MIN_TRAINING_ROWS} training and {MIN_HOLDOUT_ROWS} holdout rows"
            ),
        },
    )


def target_in_plausible_range(spec: ModelSpec, features) -> dg.AssetCheckResult:
    """Every target is plausible: within the contract's range, or one of the classes."""
    target, column = features[spec.target], spec.target_column
    if spec.classes:
        outside = features[~target.isin(list(spec.classes))]
        expected = {"classes": dg.MetadataValue.json(list(spec.classes))}
    else:
        low = float("-inf") if column.min is None else column.min
        high = float("inf") if column.max is None else column.max
        outside = features[~target.astype(float).between(low, high)]
        expected = {
            "range": dg.MetadataValue.text(f"{low:g} to {high:g}"),
            "target_min": dg.MetadataValue.float(float(target.min())),
            "target_max": dg.MetadataValue.float(float(target.max())),
        }
    return dg.AssetCheckResult(
        check_name="target_in_plausible_range",
        passed=outside.empty,
        metadata={"rows_outside": dg.MetadataValue.int(len(outside)), **expected},
    )


def no_suspicious_feature(spec: ModelSpec, features) -> dg.AssetCheckResult:
    """No feature alone predicts the target or looks like an identifier (judged at load)."""
    said = list(spec.data_warnings)
    return dg.AssetCheckResult(
        check_name="no_suspicious_feature",
        passed=not said,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(said) or "no feature looks like a leak or an identifier",
        metadata={"warnings": dg.MetadataValue.json(said)},
    )


FEATURE_CHECKS = {
    check.__name__: check
    for check in (no_missing_values, unique_row_ids, enough_rows, target_in_plausible_range)
}
WARNING_FEATURE_CHECKS = {no_suspicious_feature.__name__: no_suspicious_feature}


def _feature_check_description(check, blocking: bool) -> str:
    passes = f"passes when {check.__doc__[0].lower()}{check.__doc__[1:]}"
    if blocking:
        return f"After each features, before training: {passes} When it fails, the run stops."
    return f"After each features: {passes} When it fails, it warns and never blocks."


def feature_checks(spec: ModelSpec) -> dg.AssetChecksDefinition:
    """The checks on one model's features, in one step; all but the warnings block."""
    checks = {**FEATURE_CHECKS, **WARNING_FEATURE_CHECKS}

    @dg.multi_asset_check(
        name=f"{spec.name}__feature_checks",
        specs=[
            dg.AssetCheckSpec(
                name,
                asset=asset_key(spec, "features"),
                blocking=name in FEATURE_CHECKS,
                description=_feature_check_description(check, name in FEATURE_CHECKS),
            )
            for name, check in checks.items()
        ],
        ins={"features": dg.AssetIn(asset_key(spec, "features"))},
        can_subset=True,
    )
    def checks_of_features(
        context: dg.AssetCheckExecutionContext, features
    ) -> Iterator[dg.AssetCheckResult]:
        """The checks on the features, in one step: the table is read once, not five times."""
        for key in sorted(context.selected_asset_check_keys, key=lambda key: key.name):
            yield checks[key.name](spec, features)

    return checks_of_features


def guard_tolerance(metric: str) -> str:
    """The gate setting of a guard metric's tolerance: `log_loss_tolerance_relative`, ..."""
    return f"{metric}_tolerance_relative"


@functools.cache
def gate_config_class(spec: ModelSpec) -> type[dg.Config]:
    """The gate's run-time settings of one model, with its YAML's values as defaults.

    Like MLflow's `MetricThreshold(min_absolute_change, min_relative_change)`, each tolerance
    that is set must hold; a negative one demands an improvement. With neither set the
    candidate must be no worse than production. The comparison is of paired bootstrap
    intervals, read as `promote_when` says.
    """
    gate, metric = spec.gate, spec.gate.metric
    side = "above" if metric.higher_is_better else "below"
    fields: dict[str, Any] = {
        "threshold": (
            float,
            Field(
                default=gate.threshold,
                description=f"the candidate's holdout {metric.label} must be {side} this",
            ),
        ),
        "tolerance_absolute": (
            float | None,
            Field(
                default=gate.tolerance_absolute,
                description=f"how much worse than production its {metric.label} may be, in"
                " the metric's units (negative: a required improvement)",
            ),
        ),
        "tolerance_relative": (
            float | None,
            Field(
                default=gate.tolerance_relative,
                gt=-1,
                description="the same as a fraction of production's value, 0.01 = 1%"
                " (negative: a required improvement)",
            ),
        ),
        "promote_when": (
            Literal["not_worse", "better"],
            Field(
                default=gate.promote_when,
                description="not_worse: refused only when the interval of the difference with"
                " production is wholly worse than the tolerance; better: promoted only when"
                " it is wholly better",
            ),
        ),
    }
    for name in spec.task.guard_metrics:
        fields[guard_tolerance(name)] = (
            float,
            Field(
                default=getattr(gate, guard_tolerance(name)),
                gt=-1,
                description=f"how much worse than production its {spec.task.metrics[name].label}"
                " may be, as a fraction",
            ),
        )
    return create_model(
        "GateConfig", __base__=dg.Config, __doc__=gate_config_class.__doc__, **fields
    )


def _warnings(spec: ModelSpec, metrics: dict) -> list[str]:
    """What makes the gate's verdict shaky: a tiny holdout, a metric that cannot improve."""
    metric, said = spec.gate.metric, []
    if metrics["holdout_rows"] < MIN_TRUSTED_HOLDOUT_ROWS:
        said.append(
            f"the reference holdout has {metrics['holdout_rows']} rows (under"
            f" {MIN_TRUSTED_HOLDOUT_ROWS}): a few rows decide"
        )
    value = metrics["candidate"].get(metric.name)
    if value is not None and metric.at_best(value):
        said.append(
            f"the candidate's {metric.label} is at its best possible value"
            f" ({metric.shown(metric.best)}): it can only tie, not improve"
        )
    return said


def _gate_result(
    spec: ModelSpec,
    metrics: dict,
    name: str,
    passed: bool,
    description: str,
    metadata: dict,
    threshold: float | None = None,
) -> dg.AssetCheckResult:
    """A gate check's result, with what makes its verdict shaky said beside it (and, given the
    threshold, a threshold that a constant answer already passes)."""
    warnings = _warnings(spec, metrics)
    useless = None if threshold is None else spec.threshold_warning(threshold)
    if useless:
        warnings.append(useless)
    if warnings:
        description = f"{description}. Warning: {'; '.join(warnings)}"
        metadata = {**metadata, "warnings": dg.MetadataValue.json(warnings)}
    # WARN: a refusal is an outcome, not a breakage. The check still blocks (production_model
    # waits for it and refuses to deploy after it), but the run ends SUCCESS.
    return dg.AssetCheckResult(
        check_name=name,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def _bootstrap_metadata(statistics: dict) -> dict[str, dg.MetadataValue]:
    return {
        "confidence": dg.MetadataValue.float(statistics["confidence"]),
        "resamples": dg.MetadataValue.float(float(statistics["resamples"])),
    }


def _difference_metadata(prefix: str, difference: Interval) -> dict[str, dg.MetadataValue]:
    if difference.value is None:
        return {}
    return {
        f"{prefix}difference": dg.MetadataValue.float(float(difference.value)),
        **interval_metadata(difference.as_dict(), prefix),
    }


def threshold_result(spec: ModelSpec, metrics: dict, config) -> dg.AssetCheckResult:
    """Passes when the candidate's holdout gate metric is beyond the threshold (a point
    comparison; its bootstrap interval is said beside it)."""
    metric, statistics = spec.gate.metric, metrics["statistics"]
    value = metrics["candidate"].get(metric.name)
    side = "above" if metric.higher_is_better else "below"
    if value is None:
        return _gate_result(
            spec, metrics, metric.threshold_check, False,
            f"the candidate's holdout {metric.label} is undefined on these rows", {},
        )  # fmt: skip
    passed = metric.beats(value, config.threshold)
    interval = statistics["candidate"][metric.name]
    said = ""
    if interval["low"] is not None:
        said = (
            f" ({percent(statistics['confidence'])} interval {metric.shown(interval['low'])}"
            f" to {metric.shown(interval['high'])})"
        )
    baseline = {}
    if spec.baseline_score is not None:
        baseline = {f"constant_answer_{metric.name}": dg.MetadataValue.float(spec.baseline_score)}
    return _gate_result(
        spec,
        metrics,
        metric.threshold_check,
        passed,
        f"candidate holdout {metric.label} {metric.shown(value)}{said} is"
        f" {side if passed else 'not ' + side} the threshold {config.threshold:g}",
        {
            f"candidate_{metric.name}": dg.MetadataValue.float(value),
            **interval_metadata(interval),
            **_bootstrap_metadata(statistics),
            f"{metric.name}_threshold": dg.MetadataValue.text(f"{side} {config.threshold:g}"),
            **baseline,
        },
        threshold=config.threshold,
    )


def not_worse_result(spec: ModelSpec, metrics: dict, config) -> dg.AssetCheckResult:
    """Passes when nothing is in production, or the paired interval of the difference with
    production on the same rows is not wholly worse than the tolerance (`promote_when:
    better`: is wholly better) on the gate metric; and not wholly worse on the task's guards
    (a regression's MAE, a classification's log loss)."""
    metric, statistics = spec.gate.metric, metrics["statistics"]
    candidate, production = metrics["candidate"], metrics["production"]
    if production is None:
        version = metrics["production_version"]
        said = "no production model yet: nothing to compare with"
        if version is not None:  # the declaration changed beyond what production can be scored on
            said = (
                f"production version {version} {metrics['production_compared']}; the threshold"
                " and the constant answer judge the candidate"
            )
        return _gate_result(
            spec, metrics, NOT_WORSE_CHECK, True, said,
            {f"candidate_{metric.name}": dg.MetadataValue.float(candidate[metric.name])},
        )  # fmt: skip
    comparisons = [(metric, config.tolerance_absolute, config.tolerance_relative)]
    for name in spec.task.guard_metrics:
        if name != metric.name:
            comparisons.append(
                (spec.task.metrics[name], None, getattr(config, guard_tolerance(name)))
            )
    versus = statistics["versus_production"]
    passed, said, metadata = True, [], {}
    for compared, absolute, relative in comparisons:
        ours, theirs = candidate[compared.name], production[compared.name]
        difference = Interval.of(versus[compared.name])
        allowed = None if theirs is None else compared.worst_allowed(theirs, absolute, relative)
        worse_way = -1.0 if compared.higher_is_better else 1.0
        allowed_worse = 0.0 if allowed is None else worse_way * (allowed - theirs)
        # promote_when is about the gate metric; a guard only must not get detectably worse.
        reading = config.promote_when if compared is metric else NOT_WORSE
        ok, conclusion = verdict(compared, difference, allowed_worse, reading)
        passed &= ok
        said.append(
            f"{difference_sentence(compared, difference, statistics['confidence'])}: {conclusion}"
        )
        prefix = "" if compared is metric else f"{compared.name}_"
        metadata.update(_difference_metadata(prefix, difference))
        metadata.update(
            {
                **float_metadata("candidate", {compared.name: ours}),
                **float_metadata("production", {compared.name: theirs}),
            }
        )
        if allowed is not None:
            metadata[f"allowed_{compared.name}"] = dg.MetadataValue.float(allowed)
    if "mcnemar_p_value" in versus:
        metadata["mcnemar_p_value"] = dg.MetadataValue.float(versus["mcnemar_p_value"])
    return _gate_result(
        spec,
        metrics,
        NOT_WORSE_CHECK,
        passed,
        f"{'; '.join(said)} (production version {metrics['production_version']},"
        f" {metrics.get('production_compared') or 'on the same reference holdout rows'})",
        {
            **metadata,
            **_bootstrap_metadata(statistics),
            "promote_when": dg.MetadataValue.text(config.promote_when),
            "production_version": dg.MetadataValue.text(metrics["production_version"]),
        },
    )


def beats_baseline_result(spec: ModelSpec, metrics: dict, config) -> dg.AssetCheckResult:
    """Passes when the paired interval of the difference with a constant answer, fitted on
    the same training rows, is wholly better on the gate metric."""
    metric, statistics = spec.gate.metric, metrics["statistics"]
    difference = Interval.of(statistics["versus_baseline"][metric.name])
    passed, conclusion = verdict(metric, difference, 0.0, BETTER)
    constant = metrics["baseline"][metric.name]
    sentence = difference_sentence(
        metric, difference, statistics["confidence"], other="the constant answer"
    )
    shown = "undefined" if constant is None else metric.shown(constant)
    metadata = {
        **float_metadata("baseline", {metric.name: constant}),
        **_difference_metadata("", difference),
        **_bootstrap_metadata(statistics),
    }
    if "mcnemar_p_value" in statistics["versus_baseline"]:
        p_value = statistics["versus_baseline"]["mcnemar_p_value"]
        metadata["mcnemar_p_value"] = dg.MetadataValue.float(p_value)
    return _gate_result(
        spec,
        metrics,
        BEATS_BASELINE_CHECK,
        passed,
        f"{sentence}: {conclusion} (the constant answer, {spec.task.baseline_name}, scores"
        f" {metric.label} {shown} on the same {metrics['holdout_rows']} reference holdout rows)",
        metadata,
        threshold=config.threshold,
    )


def plausible_score_result(spec: ModelSpec, metrics: dict) -> dg.AssetCheckResult:
    """Passes unless the candidate's holdout score is too good to be true (R² ≥ 0.999, or not
    a single holdout error); then it names the features the model leans on (permutation
    importance) and those the load found leaking. Warns, never blocks."""
    too_good = spec.task.too_good(metrics["candidate"], metrics["holdout_rows"])
    metric = spec.gate.metric
    leaned = [entry for entry in metrics.get("importance") or [] if entry["importance"] > 0]
    leaned = leaned[:LEANED_ON]
    leaks = [said for said in spec.data_warnings if "probably a leak" in said]
    if too_good is None:
        description = "nothing too good to be true on the reference holdout"
    else:
        on = ", ".join(
            f"{entry['feature']!r} ({metric.label} worse by {metric.shown(entry['importance'])}"
            " when shuffled)"
            for entry in leaned
        )
        description = f"{too_good}: probably a leak"
        if on:
            description += f"; the model leans on {on}"
        if leaks:
            description += "; at load: " + "; ".join(leaks)
        description += (
            ". Leave a feature known only with the target out of the columns (or declare it"
            " `role: id`)"
        )
    return dg.AssetCheckResult(
        check_name=PLAUSIBLE_CHECK,
        passed=too_good is None,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "leaned_on": dg.MetadataValue.json([entry["feature"] for entry in leaned]),
            "leaks_at_load": dg.MetadataValue.json(leaks),
        },
    )


def deployment_gate(spec: ModelSpec) -> dg.AssetChecksDefinition:
    """The three blocking checks on one model's metrics that decide promotion, and the
    warning on a holdout score too good to be true."""
    metric = spec.gate.metric
    side = "above" if metric.higher_is_better else "below"
    guards = [spec.task.metrics[name].label for name in spec.task.guard_metrics]
    after = "After each model_metrics, before production_model"
    kept = "when it fails, production keeps its version."
    descriptions = (
        (
            f"{after}: passes when the candidate's holdout {metric.label} is {side} the"
            f" threshold; {kept}"
        ),
        f"{after}: passes when the candidate is not worse than the production model on the"
        " same holdout rows"
        + (f" ({metric.label} and {', '.join(guards)})" if guards else "")
        + ", judged on a paired bootstrap interval as promote_when says; "
        + kept,
        (
            f"{after}: passes when the candidate's {metric.label} is better than a constant"
            f" answer's ({spec.task.baseline_name}) with the whole paired bootstrap interval; {kept}"
        ),
    )
    gate_config = gate_config_class(spec)
    plausible = dg.AssetCheckSpec(
        PLAUSIBLE_CHECK,
        asset=asset_key(spec, "model_metrics"),
        blocking=False,
        description="After each model_metrics, before production_model: passes unless the"
        " candidate's holdout score is too good to be true (a leak, most likely); when it"
        " fails, it names the features the candidate leans on, warns and never blocks.",
    )

    @dg.multi_asset_check(
        name=f"{spec.name}__deployment_gate",
        specs=[
            *(
                dg.AssetCheckSpec(
                    name,
                    asset=asset_key(spec, "model_metrics"),
                    blocking=True,
                    description=description,
                )
                for name, description in zip(spec.gate_checks, descriptions, strict=True)
            ),
            plausible,
        ],
        ins={"model_metrics": dg.AssetIn(asset_key(spec, "model_metrics"))},
    )
    def gate(
        context: dg.AssetCheckExecutionContext, config: gate_config, model_metrics: dict
    ) -> Iterator[dg.AssetCheckResult]:
        """The three blocking checks that decide whether the candidate may become production,
        and the warning on a score too good to be true."""
        results = [
            threshold_result(spec, model_metrics, config),
            not_worse_result(spec, model_metrics, config),
            beats_baseline_result(spec, model_metrics, config),
        ]
        plausible_result = plausible_score_result(spec, model_metrics)
        if not plausible_result.passed:
            context.log.warning(f"{PLAUSIBLE_CHECK}: {plausible_result.description}")
        failed = [
            (result.check_name, result.description) for result in results if not result.passed
        ]
        if failed:
            # Tagged here too: a run that stops at model_metrics says its decision as well.
            record_refusal(
                context.instance,
                context.run.run_id,
                spec.name,
                model_metrics["production_version"],
                refusal_reason(failed),
            )
        yield from results
        yield plausible_result

    return gate


def model_checks(spec: ModelSpec) -> list[dg.AssetChecksDefinition]:
    """Every check of one model."""
    return [drift_check(spec), feature_checks(spec), deployment_gate(spec)]
