"""The landing zone: where files arrive, and where every landed byte ends up.

landing/ holds what has arrived and is not yet taken; archive/ every ingested file and
quarantine/ every refused file, byte for byte, with a reason file beside it. Nothing here
deletes: landed = archived + quarantined + pending.
"""

import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from ml_assets import settings
from ml_assets.files import file_sha256, write_atomically

REASON_SUFFIX = ".reason.json"
READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


class UnsupportedFile(ValueError):
    """A landed file that cannot be read as a table."""


@dataclass(frozen=True)
class Ledger:
    """Where every landed file is now."""

    archived: int
    quarantined: int
    pending: int

    @property
    def landed(self) -> int:
        return self.archived + self.quarantined + self.pending

    def as_dict(self) -> dict[str, int]:
        return {
            "landed": self.landed,
            "archived": self.archived,
            "quarantined": self.quarantined,
            "pending": self.pending,
        }


class LandingZone(dg.ConfigurableResource):
    """landing/, archive/ and quarantine/ under the data folder."""

    data_dir: str | None = Field(
        default=None, description="data folder; default $ML_ASSETS_DATA_DIR, else ./data"
    )
    settle_seconds: float = Field(
        default=2.0, ge=0, description="a file untouched this long is complete"
    )

    @property
    def root(self) -> Path:
        return settings.data_dir(self.data_dir)

    @property
    def landing(self) -> Path:
        return _folder(self.root / "landing")

    @property
    def archive_dir(self) -> Path:
        return _folder(self.root / "archive")

    @property
    def quarantine_dir(self) -> Path:
        return _folder(self.root / "quarantine")

    def pending_files(self) -> list[str]:
        """Names of the files waiting in landing/ (hidden names are writers' temporaries)."""
        return sorted(
            entry.name
            for entry in os.scandir(self.landing)
            if entry.is_file(follow_symlinks=False) and not entry.name.startswith(".")
        )

    def complete_files(self, now: float | None = None) -> list[str]:
        """Pending files untouched for `settle_seconds`: a file still being written waits."""
        now = time.time() if now is None else now
        complete = []
        for name in self.pending_files():
            try:
                modified = (self.landing / name).stat().st_mtime
            except FileNotFoundError:
                continue  # taken by a run between the listing and now
            if now - modified >= self.settle_seconds:
                complete.append(name)
        return complete

    def fingerprint(self, name: str) -> str:
        """The sha256 of a pending file."""
        return file_sha256(self._landed_path(name))

    def source_path(self, name: str) -> Path:
        """A batch's file: in landing/ until ingested, in archive/ after (for re-runs)."""
        for folder in (self.landing, self.archive_dir):
            path = folder / _plain_name(name)
            if path.is_file():
                return path
        raise FileNotFoundError(
            f"'{name}' is neither in {self.landing} nor in {self.archive_dir}"
            f" (a refused file stays in {self.quarantine_dir})"
        )

    def read_table(self, name: str) -> pd.DataFrame:
        """The batch's rows, read by the file's suffix (CSV or Parquet)."""
        path = self.source_path(name)
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            raise UnsupportedFile(
                f"{name}: unsupported file type '{path.suffix}'; use one of {sorted(READERS)}"
            )
        try:
            return reader(path)
        except ValueError as error:  # parser errors, bad encodings, broken Parquet
            raise UnsupportedFile(f"{name}: cannot be read as a table: {error}") from error

    def archive(self, name: str) -> Path:
        """Move an ingested file to archive/, byte for byte; a no-op if already there."""
        source = self.source_path(name)
        if source.parent == self.archive_dir:
            return source
        return self._move(source, self.archive_dir)

    def quarantine(self, name: str, reason: dict) -> Path:
        """Move a refused file to quarantine/ with a machine-readable reason file beside it."""
        target = self._move(self.source_path(name), self.quarantine_dir)
        reason_path = target.with_name(target.name + REASON_SUFFIX)
        document = json.dumps({"file": name, "stored_as": target.name, **reason}, indent=2)
        write_atomically(reason_path, (document + "\n").encode("utf-8"))
        return target

    def ledger(self) -> Ledger:
        """Counts of archived, quarantined and pending files."""
        quarantined = [
            entry.name
            for entry in os.scandir(self.quarantine_dir)
            if entry.is_file() and not entry.name.endswith(REASON_SUFFIX)
        ]
        return Ledger(
            archived=sum(1 for entry in os.scandir(self.archive_dir) if entry.is_file()),
            quarantined=len(quarantined),
            pending=len(self.pending_files()),
        )

    def _landed_path(self, name: str) -> Path:
        return self.landing / _plain_name(name)

    def _move(self, source: Path, folder: Path) -> Path:
        """Move without overwriting: a name already taken gets the file's hash (and a count)."""
        target = folder / source.name
        if target.exists():
            digest = file_sha256(source)[:12]
            for count in itertools.count():
                suffix = f".{count}" if count else ""
                target = folder / f"{source.stem}.{digest}{suffix}{source.suffix}"
                if not target.exists():
                    break
        os.replace(source, target)
        return target


def _plain_name(name: str) -> str:
    """Refuse anything but a bare file name, so no path can leave its folder."""
    if not name or name in {".", ".."} or Path(name).name != name or "\\" in name:
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
