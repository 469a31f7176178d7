"""IO managers: tables as Parquet (pyarrow), models with skops, small documents as JSON.

An asset `<model>/<name>` is stored as `<data dir>/<model>/storage/<name>.<ext>`, or as
`<base>/<model>/<name>.<ext>` under a base folder or fsspec URL (`s3://...`, through
universal-pathlib) when one is set, so the steps of a distributed run can share it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dagster as dg

from ml_assets.store.files import strict_json, write_atomically
from ml_assets.store.registry import model_from_bytes, model_to_bytes
from ml_assets.store.settings import data_dir, storage_url

if TYPE_CHECKING:  # universal-pathlib (fsspec) is imported by the steps that store values
    import pandas as pd
    from upath import UPath


def _tolerates_missing(context: dg.InputContext) -> bool:
    """An input that reads whatever partitions have a stored value (raw_batches in dataset)."""
    return bool(context.definition_metadata.get("allow_missing_partitions"))


class _BytesIOManager(dg.UPathIOManager):
    """Stores each output as one file; local files are replaced atomically."""

    def __init__(self, base_path: UPath, in_model_folders: bool):
        super().__init__(base_path=base_path)
        self.in_model_folders = in_model_folders

    def get_asset_relative_path(self, context) -> UPath:
        from upath import UPath

        model, *rest = context.asset_key.path
        return UPath(model, "storage", *rest) if self.in_model_folders else UPath(model, *rest)

    def to_bytes(self, obj) -> bytes:
        raise NotImplementedError

    def from_bytes(self, data: bytes, path: UPath):
        raise NotImplementedError

    def dump_to_path(self, context: dg.OutputContext, obj, path: UPath) -> None:
        data = self.to_bytes(obj)
        if path.protocol in ("", "file"):
            write_atomically(Path(path.path), data)
        else:
            path.write_bytes(data)

    def load_from_path(self, context: dg.InputContext, path: UPath):
        return self.from_bytes(path.read_bytes(), path)

    def load_input(self, context: dg.InputContext):
        if _tolerates_missing(context) and not (
            context.has_asset_partitions and context.asset_partition_keys
        ):
            return {}  # no partitions yet: an empty mapping, where UPathIOManager gives None
        return super().load_input(context)

    def load_partitions(self, context: dg.InputContext):
        """The partitions asked for, read as UPathIOManager reads them, logged in one line.

        Its default writes a debug event per partition: on SQLite, 5 s for 1 000 landed files,
        more than reading them. An input that tolerates missing partitions always gets a
        mapping {partition key: value}, also for one partition (where the default gives the
        bare value).
        """
        tolerant = _tolerates_missing(context)
        loaded, missing = {}, []
        for key, path in self._get_paths_for_partitions(context).items():  # Dagster's layout
            try:
                loaded[key] = self.load_from_path(context, path)
            except FileNotFoundError:
                if not tolerant:
                    raise
                missing.append(key)
        asset = context.asset_key.to_user_string()
        context.log.debug(f"Loaded {len(loaded)} partition(s) of {asset}")
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            context.log.warning(
                f"Skipped {len(missing)} partition(s) of {asset} with no stored value: {shown}"
            )
        if tolerant or len(context.asset_partition_keys) != 1:
            return loaded
        return next(iter(loaded.values()))


class ParquetIOManager(_BytesIOManager):
    extension = ".parquet"

    def to_bytes(self, obj: pd.DataFrame) -> bytes:
        # zstd, not pandas' default snappy: read back in half the time (every table is read
        # by more steps than write it) and a third smaller on our float columns.
        return obj.to_parquet(engine="pyarrow", index=False, compression="zstd")

    def from_bytes(self, data: bytes, path: UPath) -> pd.DataFrame:
        import pyarrow as pa
        import pyarrow.parquet as pq

        # pyarrow's file reader, without pandas' dataset layer: a fifth to a third less time
        # per file, which adds up over a thousand landed batches.
        return pq.ParquetFile(pa.BufferReader(data)).read().to_pandas()


class SkopsIOManager(_BytesIOManager):
    extension = ".skops"

    def to_bytes(self, obj) -> bytes:
        return model_to_bytes(obj)

    def from_bytes(self, data: bytes, path: UPath):
        return model_from_bytes(data, source=str(path))


class JsonIOManager(_BytesIOManager):
    extension = ".json"

    def to_bytes(self, obj: dict) -> bytes:
        return (strict_json(obj, sort_keys=True) + "\n").encode("utf-8")

    def from_bytes(self, data: bytes, path: UPath) -> dict:
        return json.loads(data)


_FORMATS = {"parquet": ParquetIOManager, "skops": SkopsIOManager, "json": JsonIOManager}


class AssetStorage(dg.ConfigurableIOManagerFactory):
    """Where asset values live: under `base_dir` if set, else $ML_ASSETS_STORAGE_URL, else in
    each model's folder, `<data dir>/<model>/storage`."""

    format: Literal["parquet", "skops", "json"] = "parquet"
    base_dir: str | None = None

    def create_io_manager(self, context) -> dg.UPathIOManager:
        from upath import UPath

        base = self.base_dir or storage_url()
        manager = _FORMATS[self.format]
        if base is None:
            return manager(base_path=UPath(data_dir()), in_model_folders=True)
        return manager(base_path=UPath(base), in_model_folders=False)
