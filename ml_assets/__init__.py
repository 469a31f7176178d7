"""ml_assets: tabular models kept trained, checked and deployed as data arrives, each declared
in one YAML file as a `TabularModel` Dagster component."""

import dagster  # noqa: F401  (most of what a process holds: settled before ours is loaded)

from ml_assets.store.memory import settle_loaded_objects

settle_loaded_objects()  # collections during our load would walk all of Dagster's objects

from ml_assets.declare.component import TabularModel

__all__ = ["TabularModel"]
