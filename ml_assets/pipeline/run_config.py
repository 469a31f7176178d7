"""The run-time choice of one model's kind and parameters, made in the Launchpad."""

from __future__ import annotations

import functools
from typing import Any, Literal

import dagster as dg
from pydantic import Field, create_model

from ml_assets.learn.spec import ModelSpec


@functools.cache
def model_config_class(spec: ModelSpec) -> type[dg.Config]:
    """The run-time model choice of one model, with its YAML's kind as the default."""
    kinds = tuple(spec.task.kinds)
    searched: dict[str, Any] = {}
    if spec.search is not None:
        searched["budget_seconds"] = (
            float,
            Field(
                default=spec.search.budget_seconds,
                ge=0,
                description="the search's wall clock in seconds; 0: no search, the kind and"
                " params below",
            ),
        )
    return create_model(
        "ModelConfig",
        __base__=dg.Config,
        __doc__="The candidate model, chosen per run in the Launchpad (default: the YAML's).",
        **searched,
        kind=(
            Literal[kinds],
            Field(default=spec.kind.name, description=f"the model kind: {', '.join(kinds)}"),
        ),
        params=(
            dict[str, Any],
            Field(
                default={},
                description="the estimator's parameters: with the YAML's kind, these override"
                " the YAML's params; with another kind, they are its only ones",
            ),
        ),
    )


def resolved_params(spec: ModelSpec, config: dg.Config) -> dict[str, Any]:
    """What the estimator is given: the YAML's params under the run's, for the YAML's kind."""
    inherited = spec.params if config.kind == spec.kind.name else {}
    return {**inherited, **config.params}
