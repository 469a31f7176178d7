"""Each model's served predictions as `ml-assets serve` recorded them: sealed Parquet files
under `<data dir>/<model>/served/`, listed and read, and the segments still open, read as far
as they are whole (the recorder in serve/ writes them)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from ml_assets.store import settings

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger("ml_assets.store.served")

SERVED_FOLDER = "served"
SEALED = re.compile(r"served-[0-9TZ.]+-[A-Za-z0-9_.]+-\d+-\d+\.parquet")
OPEN_SEGMENTS = ".open-*.arrows"  # written by a service, batch by batch, until sealed


def whole_batches(segment: Path) -> list[pa.RecordBatch]:
    """The record batches of an open segment that are whole: a batch cut by a kill, or being
    written, is left out with what follows it."""
    import pyarrow as pa

    batches = []
    try:
        with pa.ipc.open_stream(str(segment)) as reader:
            while True:
                batches.append(reader.read_next_batch())
    except StopIteration:
        pass
    except (pa.ArrowInvalid, OSError) as error:  # what came before is whole
        log.info("%s: %d whole batches (%s)", segment.name, len(batches), error)
    return batches


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

    def unsealed(self, model: str) -> pd.DataFrame | None:
        """The records in the segments services still write (whole batches only), or None
        when there are none: served predictions a label may already name."""
        import pandas as pd
        import pyarrow as pa

        segments = sorted(served_folder(model, self.data_dir).glob(OPEN_SEGMENTS))
        tables = [  # each segment apart: services of two declarations write two schemas
            pa.Table.from_batches(batches).to_pandas()
            for batches in map(whole_batches, segments)
            if batches
        ]
        return pd.concat(tables, ignore_index=True) if tables else None
