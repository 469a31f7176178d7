"""Metadata that people want to see on a materialization: counts, previews, column schemas
from the contract, metrics as floats."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import dagster as dg

from ml_assets.learn.spec import ModelSpec
from ml_assets.pipeline.naming import asset_key

if TYPE_CHECKING:
    import pandas as pd

PREVIEW_ROWS = 5
CANDIDATE_FACTS = ("config", "chosen", "search_trials", "leaderboard")
# A contract's column types as the UI's column schema names them.
COLUMN_SCHEMA_TYPES = {
    "number": "float64",
    "integer": "int64",
    "category": "string",
    "boolean": "bool",
    "datetime": "datetime64[ns]",
}


def table_metadata(table: pd.DataFrame, schema: dg.TableSchema) -> dict[str, dg.MetadataValue]:
    """The row count, a Markdown preview and the column schema of a table (the columns never
    change, so their count is not a number to plot)."""
    return {
        "dagster/row_count": dg.MetadataValue.int(len(table)),
        "dagster/column_schema": dg.MetadataValue.table_schema(schema),
        "preview": dg.MetadataValue.md(table.head(PREVIEW_ROWS).to_markdown(index=False)),
    }


def candidate_facts(spec: ModelSpec, instance: dg.DagsterInstance) -> dict:
    """What the stored candidate_model's materialization says of it: the run `config` it was
    trained with, the kind and params `chosen` (by the config, or by the search), and the
    search's trials and leaderboard (None when it did not search)."""
    event = instance.get_latest_materialization_event(asset_key(spec, "candidate_model"))
    metadata = event.asset_materialization.metadata if event else {}
    return {name: metadata[name].value if name in metadata else None for name in CANDIDATE_FACTS}


def float_metadata(prefix: str, values: dict[str, float | None]) -> dict[str, dg.MetadataValue]:
    """Metrics as plain float metadata (`<prefix>_mse`, ...), so the UI plots them over time;
    a metric undefined on the rows (None, or not finite) is left out."""
    return {
        f"{prefix}_{name}": dg.MetadataValue.float(float(value))
        for name, value in values.items()
        if value is not None and math.isfinite(value)
    }


def interval_metadata(interval: dict, prefix: str = "") -> dict[str, dg.MetadataValue]:
    """A bootstrap interval's ends as float metadata (`<prefix>interval_low`, ...), so the UI
    plots them over time; nothing when undefined."""
    if interval.get("low") is None:
        return {}
    return {
        f"{prefix}interval_low": dg.MetadataValue.float(float(interval["low"])),
        f"{prefix}interval_high": dg.MetadataValue.float(float(interval["high"])),
    }


def table_schema(
    spec: ModelSpec, extra_columns: dict[str, tuple[str, str]] | None = None
) -> dg.TableSchema:
    """The contract as a Dagster column schema, plus any (type, description) extra columns."""
    columns = [
        dg.TableColumn(
            name=column.name,
            type=COLUMN_SCHEMA_TYPES[column.type],
            description=f"{column.description} ({column.rules})".lstrip(),
            constraints=dg.TableColumnConstraints(nullable=column.nullable),
        )
        for column in spec.columns
    ]
    for name, (kind, description) in (extra_columns or {}).items():
        columns.append(dg.TableColumn(name=name, type=kind, description=description))
    return dg.TableSchema(columns=columns)
