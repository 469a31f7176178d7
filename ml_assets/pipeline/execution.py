"""Where a run's steps execute, chosen by the run's config alone: in the run's own process (the
default: our steps are small, a process start costs more than most of them), one process per
step, or on the workers of a Celery cluster.

    execution: {config: {in_process: {}}}
    execution: {config: {multiprocess: {max_concurrent: 2}}}
    execution: {config: {celery: {broker: "pyamqp://guest@rabbitmq:5672//"}}}
"""

import dagster as dg

# The keys of dagster-celery's own executor config. dagster-celery (the `celery` extra) is
# imported only by a run that asks for it, so loading the definitions never pays for Celery.
CELERY_CONFIG = {
    "broker": dg.Field(
        dg.Noneable(dg.StringSource),
        is_required=False,
        description="The Celery broker's URL; default pyamqp://guest@$DAGSTER_CELERY_BROKER_HOST//.",
    ),
    "backend": dg.Field(
        dg.StringSource, default_value="rpc://", description="The Celery result backend's URL."
    ),
    "include": dg.Field([str], is_required=False, description="Modules every worker imports."),
    "config_source": dg.Field(
        dg.Permissive(), is_required=False, description="Further Celery settings, e.g. queues."
    ),
}


def _requirements(config) -> list[dg.ExecutorRequirement]:
    # Steps in other processes read their inputs from storage and report to the instance.
    return [] if "in_process" in config else list(dg.multiple_process_executor_requirements())


def _executor_definition(kind: str) -> dg.ExecutorDefinition:
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor
    return dg.in_process_executor if kind == "in_process" else dg.multiprocess_executor


@dg.executor(
    name="ml_assets_executor",
    config_schema=dg.Field(
        dg.Selector(
            {
                "in_process": dg.in_process_executor.config_schema.as_field(),
                "multiprocess": dg.multiprocess_executor.config_schema.as_field(),
                "celery": dg.Field(CELERY_CONFIG, is_required=False),
            }
        ),
        default_value={"in_process": {}},
    ),
    requirements=_requirements,
)
def step_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Hands the run to Dagster's in-process or multiprocess executor, or to dagster-celery's."""
    [(kind, config)] = init_context.executor_config.items()
    if kind == "celery":
        # Step retries (the assets' RetryPolicy) stay on, as with Dagster's own executors.
        config = {**config, "retries": {"enabled": {}}}
    definition = _executor_definition(kind)
    return definition.executor_creation_fn(
        dg.InitExecutorContext(
            job=init_context.job,
            executor_def=definition,
            executor_config=config,
            instance=init_context.instance,
        )
    )
