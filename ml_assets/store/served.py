"""Each model's served predictions as `ml-assets serve` recorded them: sealed Parquet files
under `<data dir>/<model>/served/`, listed and read (the recorder in serve/ writes them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from ml_assets.store import settings

if TYPE_CHECKING:
    import pandas as pd

SERVED_FOLDER = "served"
SEALED = re.compile(r"served-[0-9TZ.]+-[A-Za-z0-9_.]+-\d+-\d+\.parquet")


def served_folder(model: str, data_dir: str | None = None) -> Path:
    """Where a model's served predictions are recorded."""
    return settings.model_dir(model, data_dir) / SERVED_FOLDER


class ServedRecords(dg.ConfigurableResource):
    """The sealed files of each model's served predictions."""

    data_dir: str | None = Field(
        default=None, description="data folder; default $ML_ASSETS_DATA_DIR, else ./data"
    )

    def sealed_files(self, model: str) -> list[str]:
        """The names of a model's sealed files, oldest first (their names start with the time
        of their first row)."""
        folder = served_folder(model, self.data_dir)
        if not folder.is_dir():
            return []
        return sorted(path.name for path in folder.iterdir() if SEALED.fullmatch(path.name))

    def read(self, model: str, name: str) -> pd.DataFrame:
        """One sealed file's records; a name that is not a sealed file's is refused."""
        import pandas as pd

        if not SEALED.fullmatch(name):
            raise ValueError(f"not a sealed file of served predictions: {name!r}")
        return pd.read_parquet(served_folder(model, self.data_dir) / name)
