"""Automation conditions: when the automation sensor asks for an asset (or check) to run."""

import dagster as dg


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


def deploy_after_passed_gate() -> dg.AutomationCondition:
    """For production_model: deploy when a run that stopped short of it updated its inputs and
    the gate passed.

    Runs of training_job (the schedule, the retrain after ingestion, a person's) include
    production_model: when it updated with its inputs, there is nothing to follow. The
    condition has no memory on purpose: a gate that failed when model_metrics was updated is
    never revisited later.
    """
    return (
        dg.AutomationCondition.any_deps_updated()
        & ~dg.AutomationCondition.newly_updated()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("deploy_after_passed_gate")
