"""The landing zone: where files arrive, and where every landed byte ends up.

Each model has its own under `<data dir>/<model>/`: landing/ holds what has arrived and is
not yet taken; archive/ every ingested file and quarantine/ every refused file, byte for
byte, with a reason file beside it. Nothing here deletes: every landed file is archived,
quarantined or still pending.

Each landed file becomes one `raw_batches` partition whose key is its file name. A name that
is not a safe partition key (control characters, commas, brackets, '...', over 200 bytes),
or that was already used by an earlier file, is renamed in landing/ first: to a cleaned name
with the content's hash. So every landing is ingested once, under its own key.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from ml_assets.store import settings
from ml_assets.store.files import file_sha256, strict_json, write_atomically
from ml_assets.store.tables import UnreadableFile, read_table

if TYPE_CHECKING:
    import pandas as pd

LABELS_FOLDER = "labels"
LANDED_FILES = "landed_files"  # <model>_landed_files: raw_batches' partitions, one per file
REASON_SUFFIX = ".reason.json"
# Names writers use while a file is not finished; such files are never taken.
TEMPORARY_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".filepart", ".swp")
MAX_KEY_BYTES = 200
_UNSAFE_KEY = re.compile(r"[\x00-\x1f\x7f,\[\]/\\]|\.\.\.")


@dataclass(frozen=True)
class Ledger:
    """Where every landed file is now; `lost` names registered files found nowhere."""

    archived: int
    quarantined: int
    pending: int
    registered: int | None = None  # partitions known to Dagster, when it was asked
    lost: list[str] = field(default_factory=list)

    @property
    def landed(self) -> int:
        return self.archived + self.quarantined + self.pending

    def as_dict(self) -> dict:
        document = {
            "landed": self.landed,
            "archived": self.archived,
            "quarantined": self.quarantined,
            "pending": self.pending,
        }
        if self.registered is not None:
            document["registered"] = self.registered
            document["lost"] = self.lost
        return document


def is_safe_key(name: str) -> bool:
    """Whether a file name can be a partition key as it is."""
    return (
        bool(name)
        and name not in {".", ".."}
        and len(name.encode("utf-8", "surrogateescape")) <= MAX_KEY_BYTES
        and not _UNSAFE_KEY.search(name)
        and name.isprintable()
    )


def cleaned_key(name: str, digest: str, count: int = 0) -> str:
    """A safe key for a name: its printable part, shortened, the content hash, a count."""
    lowered = name.lower()
    suffix = next((s for s in (".csv.gz", ".csv", ".parquet", ".pq") if lowered.endswith(s)), "")
    stem = name[: len(name) - len(suffix)]
    stem = _UNSAFE_KEY.sub("_", "".join(c if c.isprintable() else "_" for c in stem))
    stem = stem.encode("utf-8", "ignore")[:120].decode("utf-8", "ignore").strip(". ") or "file"
    return f"{stem}.{digest[:12]}{f'-{count}' if count else ''}{suffix}"


class LandingZone(dg.ConfigurableResource):
    """Each model's landing/, archive/ and quarantine/, under `<data dir>/<model>/`."""

    data_dir: str | None = Field(
        default=None, description="data folder; default $ML_ASSETS_DATA_DIR, else ./data"
    )
    # A second, not more: it is most of a landed file's wait for its run (docs/latency-
    # performance.md); a writer that pauses longer should write a temporary and rename it.
    settle_seconds: float = Field(
        default=1.0, ge=0, description="a file untouched this long is complete"
    )
    max_file_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="larger files are quarantined unread"
    )

    def for_model(self, model: str) -> ModelLanding:
        """One model's landing zone; no other model's files are ever in it."""
        return ModelLanding(
            root=settings.model_dir(model, self.data_dir),
            settle_seconds=self.settle_seconds,
            max_file_bytes=self.max_file_bytes,
        )

    def labels_for_model(self, model: str) -> ModelLanding:
        """Where a model's delayed labels land: `<data dir>/<model>/labels/`."""
        return ModelLanding(
            root=settings.model_dir(model, self.data_dir) / LABELS_FOLDER,
            settle_seconds=self.settle_seconds,
            max_file_bytes=self.max_file_bytes,
            drop="",
        )


@dataclass(frozen=True)
class ModelLanding:
    """landing/, archive/ and quarantine/ of one model; or of its labels, dropped into the
    root itself (`drop=""`: labels/, labels/archive/, labels/quarantine/)."""

    root: Path
    settle_seconds: float = 1.0
    max_file_bytes: int = 512 * 1024 * 1024
    drop: str = "landing"

    @property
    def landing(self) -> Path:
        return _folder(self.root / self.drop)

    @property
    def archive_dir(self) -> Path:
        return _folder(self.root / "archive")

    @property
    def quarantine_dir(self) -> Path:
        return _folder(self.root / "quarantine")

    def pending_files(self) -> list[str]:
        """Names of the files (and links) waiting in landing/, writers' temporaries aside."""
        return sorted(
            entry.name
            for entry in os.scandir(self.landing)
            if (entry.is_file(follow_symlinks=False) or entry.is_symlink())
            and not entry.name.endswith(TEMPORARY_SUFFIXES)
        )

    def complete_files(self, now: float | None = None) -> list[str]:
        """Pending files untouched for `settle_seconds`: a file still being written waits."""
        now = time.time() if now is None else now
        complete = []
        for name in self.pending_files():
            try:
                modified = (self.landing / name).lstat().st_mtime
            except FileNotFoundError:
                continue  # taken by a run between the listing and now
            if now - modified >= self.settle_seconds:
                complete.append(name)
        return complete

    def fingerprint(self, name: str) -> str:
        """The sha256 of a file's bytes; of its target's name for a link (never followed)."""
        path = self._inside(self.landing, name)
        if path.is_symlink():
            return hashlib.sha256(os.readlink(path).encode("utf-8", "surrogateescape")).hexdigest()
        return file_sha256(path)

    def claim(self, name: str, registered: set[str]) -> tuple[str, str]:
        """The partition key (and sha256) for a complete file, renaming it in landing if needed.

        The name stays the key when it is safe and not used by an earlier file: one that is
        archived or quarantined under it.
        """
        digest = self.fingerprint(name)
        reused = name in registered and any(
            (folder / name).exists() or (folder / name).is_symlink()
            for folder in (self.archive_dir, self.quarantine_dir)
        )
        if is_safe_key(name) and not reused:
            return name, digest
        for count in itertools.count():
            key = cleaned_key(name, digest, count)
            if key not in registered and not (self.landing / key).exists():
                break
        os.rename(self._inside(self.landing, name), self.landing / key)
        return key, digest

    def source_path(self, key: str) -> Path:
        """A batch's file: in landing/ until ingested, in archive/ after (for re-runs)."""
        for folder in (self.landing, self.archive_dir):
            path = self._inside(folder, key)
            if path.is_symlink() or path.is_file():
                return path
        raise FileNotFoundError(
            f"'{key}' is neither in {self.landing} nor in {self.archive_dir}"
            f" (a refused file stays in {self.quarantine_dir})"
        )

    def read_table(
        self, key: str, columns: list[str] | None = None
    ) -> tuple[pd.DataFrame, list[str]]:
        """The batch's rows and what was normalised; links and oversized files are refused.

        Header names are matched to `columns` (the contract's) but for case and spaces.
        """
        path = self.source_path(key)
        if path.is_symlink():
            raise UnreadableFile(
                f"{key}: a symbolic link (to {os.readlink(path)!r}); links are not followed"
            )
        size = path.stat().st_size
        if size > self.max_file_bytes:
            raise UnreadableFile(f"{key}: {size} bytes, over the limit of {self.max_file_bytes}")
        return read_table(path, name=key, columns=columns)

    def archive(self, key: str) -> Path:
        """Move an ingested file to archive/, byte for byte; a no-op if already there."""
        source = self.source_path(key)
        if source.parent == self.archive_dir:
            return source
        return self._move(source, self.archive_dir)

    def quarantine(self, key: str, reason: dict) -> Path:
        """Move a refused file to quarantine/ with a machine-readable reason file beside it."""
        target = self._move(self.source_path(key), self.quarantine_dir)
        reason_path = target.with_name(target.name + REASON_SUFFIX)
        document = strict_json({"file": key, "stored_as": target.name, **reason})
        write_atomically(reason_path, (document + "\n").encode("utf-8"))
        return target

    def whereabouts(self, key: str) -> str | None:
        """'pending', 'archived' or 'quarantined': where a registered file is; None if lost."""
        for place, folder in (
            ("pending", self.landing),
            ("archived", self.archive_dir),
            ("quarantined", self.quarantine_dir),
        ):
            path = folder / key
            if path.is_symlink() or path.exists():
                return place
        return None

    def ledger(self, registered: set[str] | None = None) -> Ledger:
        """Counts of archived, quarantined and pending files; with the registered keys, the
        ones that are nowhere."""
        quarantined = [
            entry.name
            for entry in os.scandir(self.quarantine_dir)
            if not entry.is_dir(follow_symlinks=False) and not entry.name.endswith(REASON_SUFFIX)
        ]
        archived = [
            entry for entry in os.scandir(self.archive_dir) if entry.is_file(follow_symlinks=False)
        ]
        lost = (
            None
            if registered is None
            else sorted(key for key in registered if self.whereabouts(key) is None)
        )
        return Ledger(
            archived=len(archived),
            quarantined=len(quarantined),
            pending=len(self.pending_files()),
            registered=None if registered is None else len(registered),
            lost=lost or [],
        )

    def _inside(self, folder: Path, name: str) -> Path:
        """The path of `name` directly inside `folder`; a name that would leave it is refused."""
        if not name or name in {".", ".."} or "/" in name or "\x00" in name:
            raise ValueError(f"not a plain file name: {name!r}")
        return folder / name

    def _move(self, source: Path, folder: Path) -> Path:
        """Move without overwriting: a name already taken there gets a count appended."""
        target = folder / source.name
        for count in itertools.count(1):
            if not (target.exists() or target.is_symlink()):
                break
            target = folder / f"{source.name}.{count}"
        os.rename(source, target)
        return target


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
