"""ml_assets: tabular models kept trained, checked and deployed as data arrives, each declared
in one YAML file as a `TabularModel` Dagster component."""

from ml_assets.component import TabularModel

__all__ = ["TabularModel"]
