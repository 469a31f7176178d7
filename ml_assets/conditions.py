"""Automation conditions: when the automation sensor asks for an asset (or check) to run."""

import dagster as dg


def retrain_on_new_batches() -> dg.AutomationCondition:
    """True once new batches have been ingested and no ingestion is still running.

    Only raw_batches updates count, and in-progress ingestions hold it back, so a burst of
    files causes one retrain. A refused file leaves its partition failed, which must not block
    the others (hence no `~any_deps_missing`, unlike `eager`).
    """
    return (
        dg.AutomationCondition.any_deps_updated()
        .allow(dg.AssetSelection.assets("raw_batches"))
        .since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("retrain_on_new_batches")


def when_missing() -> dg.AutomationCondition:
    """True while the asset has never been materialized (and is not running or failing).

    The reference table is materialized by the first automation tick, so a retrain that
    follows the first landed file always has it.
    """
    return (
        dg.AutomationCondition.missing()
        & ~dg.AutomationCondition.in_progress()
        & ~dg.AutomationCondition.execution_failed()
    ).with_label("when_missing")


def check_with_asset() -> dg.AutomationCondition:
    """For checks: run in the same run whenever automation materializes the checked asset.

    Only then: a check that failed in a person's run is not re-run on its own with another
    config, which could let production_model follow it.
    """
    return dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.will_be_requested()
    ).with_label("check_with_asset")


def follow_upstream() -> dg.AutomationCondition:
    """True when an upstream asset updated (or will in this tick) and its blocking checks pass."""
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    ).with_label("follow_upstream")
