"""Metadata that people want to see on a materialization: counts, previews, schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    import pandas as pd

PREVIEW_ROWS = 5


def table_metadata(table: pd.DataFrame, schema: dg.TableSchema) -> dict[str, dg.MetadataValue]:
    """The row count, a Markdown preview and the column schema of a table (the columns never
    change, so their count is not a number to plot)."""
    return {
        "dagster/row_count": dg.MetadataValue.int(len(table)),
        "dagster/column_schema": dg.MetadataValue.table_schema(schema),
        "preview": dg.MetadataValue.md(table.head(PREVIEW_ROWS).to_markdown(index=False)),
    }


def float_metadata(prefix: str, values: dict[str, float | None]) -> dict[str, dg.MetadataValue]:
    """Metrics as plain float metadata (`<prefix>_mse`, ...), so the UI plots them over time;
    a metric undefined on the rows (None) is left out."""
    return {
        f"{prefix}_{name}": dg.MetadataValue.float(value)
        for name, value in values.items()
        if value is not None
    }
