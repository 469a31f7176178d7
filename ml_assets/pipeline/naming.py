"""How the Dagster objects of one model are named and tagged: asset keys `<model>/<asset>`,
and the tag on every run of its jobs."""

import dagster as dg

from ml_assets.learn.spec import ModelSpec

MODEL_TAG = "ml_assets/model"  # on every run of a model's jobs


def asset_key(spec: ModelSpec, asset: str) -> dg.AssetKey:
    """The asset key of one of a model's assets: `<name>/<asset>`."""
    return dg.AssetKey([spec.name, asset])


def model_tags(spec: ModelSpec) -> dict[str, str]:
    """Tags on a model's jobs, so its runs can be found and told apart."""
    return {MODEL_TAG: spec.name}
