"""The model registry: one immutable folder per version and atomic aliases, per model.

Under `<data dir>/<model>/`:

models/<version>/model.skops   the fitted Pipeline, saved with skops (never pickle)
models/<version>/card.json     what it is: metrics, data, config, versions, the file's sha256
models/<version>/*.png         the holdout plots of its model card
models/production.json         the production alias, switched with os.replace
models/previous.json           what production pointed at before the last switch
models/history.jsonl           every switch of the production alias, oldest first

A version folder is written under a hidden staging name and renamed into place whole, so a
reader sees a complete version or none. Alias switches hold an exclusive lock, so two
promotions racing in two processes leave production and previous consistent.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from ml_assets.store import settings
from ml_assets.store.files import strict_json, write_atomically

if TYPE_CHECKING:  # skops and scikit-learn are imported when a model is read or written
    from sklearn.pipeline import Pipeline

MODEL_FILE = "model.skops"
CARD_FILE = "card.json"
HISTORY_FILE = "history.jsonl"
# Types skops does not trust by default that our model kinds are made of (the dtypes a
# ColumnTransformer records, the trees of the ensembles, the folds of a TargetEncoder);
# nothing else loads.
ALLOWED_UNTRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.model_selection._split.KFold",
        "sklearn.model_selection._split.StratifiedKFold",
        # hist_gradient_boosting: its trees, and its own encoder of the categories
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "functools.partial",
        "sklearn.utils.validation.check_array",
        # lightgbm: the estimator and its booster (the model as LightGBM's own text)
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.basic.Booster",
        "collections.OrderedDict",
        # a tuned decision threshold (TunedThresholdClassifierCV): its scorer of the metric
        # it was tuned for, and the scorer's metadata routing
        "sklearn.metrics._scorer._CurveScorer",
        "sklearn.metrics._scorer._Scorer",
        "sklearn.metrics._classification.accuracy_score",
        "sklearn.metrics._classification.balanced_accuracy_score",
        "sklearn.metrics._classification.f1_score",
        "sklearn.utils._metadata_requests.MetadataRequest",
        "sklearn.utils._metadata_requests.MethodMetadataRequest",
    }
)
LIBRARIES = ("scikit-learn", "lightgbm", "skops", "numpy", "pandas", "dagster")
STALE_STAGING_SECONDS = 3600


class RegistryError(RuntimeError):
    """The registry cannot give what was asked: a missing, incomplete or altered version."""


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version and its card."""

    version: str
    path: Path
    card: dict

    @property
    def metrics(self) -> dict[str, float]:
        return self.card.get("metrics", {})


@dataclass(frozen=True)
class Switch:
    """One change of the production alias."""

    from_version: str | None
    to_version: str
    reason: str  # "promotion" or "rollback"


def model_to_bytes(model: Pipeline) -> bytes:
    """Serialise a model with skops."""
    import skops.io as sio

    return sio.dumps(model)


def model_from_bytes(data: bytes, source: str) -> Pipeline:
    """Load a skops model, refusing any type outside skops's defaults and our allow-list."""
    import skops.io as sio

    try:
        untrusted = set(sio.get_untrusted_types(data=data))
    except (zipfile.BadZipFile, ValueError, KeyError) as error:
        raise RegistryError(f"{source} is not a readable skops file: {error}") from None
    refused = untrusted - ALLOWED_UNTRUSTED_TYPES
    if refused:
        raise RegistryError(f"{source} contains types outside the allow-list: {sorted(refused)}")
    return sio.loads(data, trusted=sorted(untrusted))


def library_versions() -> dict[str, str]:
    """The versions of the libraries a model file depends on, and Python's."""
    versions = {name: metadata.version(name) for name in LIBRARIES}
    versions["python"] = platform.python_version()
    return versions


def code_revision() -> str | None:
    """The code's git revision: $ML_ASSETS_GIT_REVISION (set it in images), else `git`."""
    if os.environ.get(settings.REVISION_VARIABLE):
        return os.environ[settings.REVISION_VARIABLE]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


class ModelRegistry(dg.ConfigurableResource):
    """Versioned, integrity-checked model stores, one under each `<data dir>/<model>/models`."""

    data_dir: str | None = Field(
        default=None, description="data folder; default $ML_ASSETS_DATA_DIR, else ./data"
    )
    keep_versions: int = Field(
        default=20,
        ge=1,
        description="how many recent versions to keep, besides every one ever in production",
    )

    def for_model(self, model: str) -> ModelVersions:
        """One model's versions and aliases; no other model's are ever among them."""
        return ModelVersions(
            settings.model_dir(model, self.data_dir) / "models", self.keep_versions
        )


@dataclass(frozen=True)
class ModelVersions:
    """The versions, aliases and history of one model."""

    folder: Path
    keep_versions: int = 20

    @property
    def root(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder

    def register(
        self, model: Pipeline, card: dict, attachments: dict[str, bytes] | None = None
    ) -> ModelVersion:
        """Write a new immutable version (model file, card, attachments) and return it."""
        staging = self.root / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        data = model_to_bytes(model)
        write_atomically(staging / MODEL_FILE, data)
        for name, content in (attachments or {}).items():
            write_atomically(staging / _plain(name), content)
        sha256 = hashlib.sha256(data).hexdigest()
        created = datetime.now(UTC)
        version = f"{created:%Y%m%dT%H%M%S%fZ}-{sha256[:8]}"
        full_card = {
            **card,
            "version": version,
            "created_at": created.isoformat(),
            "model_file": MODEL_FILE,
            "sha256": sha256,
            "libraries": library_versions(),
            "code_revision": code_revision(),
            "attachments": sorted(attachments or {}),
        }
        write_atomically(staging / CARD_FILE, _json_bytes(full_card))
        os.rename(staging, self.root / version)
        return ModelVersion(version, self.root / version, full_card)

    def get(self, version: str) -> ModelVersion:
        """A registered version's card; a missing or half-written version is an error."""
        path = self.root / _plain(version)
        try:
            card = json.loads((path / CARD_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RegistryError(f"model version '{version}' is not in {self.root}") from None
        except json.JSONDecodeError as error:
            raise RegistryError(f"model version '{version}' has a damaged card: {error}") from None
        return ModelVersion(version, path, card)

    def versions(self) -> list[ModelVersion]:
        """Every complete version, oldest first."""
        names = sorted(
            entry.name
            for entry in os.scandir(self.root)
            if entry.is_dir() and not entry.name.startswith(".")
        )
        return [self.get(name) for name in names]

    def load(self, version: str) -> Pipeline:
        """Load a version's model after checking its sha256 and the types it contains."""
        registered = self.get(version)
        model_path = registered.path / MODEL_FILE
        if not model_path.is_file():
            raise RegistryError(f"model version '{version}' has no {MODEL_FILE}")
        data = model_path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != registered.card.get("sha256"):
            raise RegistryError(
                f"model version '{version}': {model_path} has sha256 {actual}, its card says"
                f" {registered.card.get('sha256')}; refusing a changed file"
            )
        return model_from_bytes(data, source=f"model version '{version}'")

    def attachment(self, version: str, name: str) -> bytes | None:
        """A file kept beside a version's model (a plot, its predictions at promotion), or
        None when it has none of that name."""
        path = self.get(version).path / _plain(name)
        return path.read_bytes() if path.is_file() else None

    def production(self) -> ModelVersion | None:
        """The version the production alias points at, or None before the first promotion."""
        return self._alias("production")

    def previous(self) -> ModelVersion | None:
        """The version production pointed at before the last switch."""
        return self._alias("previous")

    def promote(self, version: str, reason: str = "promotion") -> Switch:
        """Point production at a complete version; the old production becomes `previous`."""
        self.get(version)  # refuse an unknown or damaged version before touching an alias
        with self._locked():
            current = self._alias_version("production")
            self._record_unlogged_switch(current)
            if current == version:
                return Switch(current, version, reason)
            if current is not None:
                self._set_alias("previous", current)
            self._set_alias("production", version)
            switch = Switch(current, version, reason)
            self._append_history(switch)
        return switch

    def rollback(self, to_version: str | None = None) -> Switch:
        """Put a version back in production: by default the previous one."""
        current = self.production()
        if current is None:
            raise RegistryError("nothing is in production: there is nothing to roll back")
        target = to_version or self._alias_version("previous")
        if target is None:
            raise RegistryError("no previous production version to roll back to; name one")
        if target == current.version:
            raise RegistryError(f"'{target}' is already in production")
        return self.promote(target, reason="rollback")

    def history(self) -> list[dict]:
        """Every switch of the production alias, oldest first."""
        path = self.root / HISTORY_FILE
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def ever_in_production(self) -> set[str]:
        """Every version the production alias has pointed at."""
        return {entry["to_version"] for entry in self.history()}

    def prune(self) -> list[str]:
        """Delete old versions never in production, keeping the newest `keep_versions`.

        The production and previous versions are never deleted, nor any version that was
        ever in production. Staging folders left by a killed writer are cleared after an hour.
        """
        protected = self.ever_in_production() | {
            v for v in (self._alias_version("production"), self._alias_version("previous")) if v
        }
        names = [v.version for v in self.versions()]
        recent = set(names[-self.keep_versions :])
        removed = [name for name in names if name not in protected | recent]
        for name in removed:
            shutil.rmtree(self.root / name)
        cutoff = time.time() - STALE_STAGING_SECONDS
        for entry in os.scandir(self.root):
            if entry.name.startswith(".staging-") and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry.path)
        return removed

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.root / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _alias_version(self, name: str) -> str | None:
        try:
            return json.loads((self.root / f"{name}.json").read_text(encoding="utf-8"))["version"]
        except FileNotFoundError:
            return None

    def _alias(self, name: str) -> ModelVersion | None:
        version = self._alias_version(name)
        return None if version is None else self.get(version)

    def _set_alias(self, name: str, version: str) -> None:
        pointer = {"version": version, "switched_at": datetime.now(UTC).isoformat()}
        write_atomically(self.root / f"{name}.json", _json_bytes(pointer))

    def _record_unlogged_switch(self, current: str | None) -> None:
        """The aliases are the truth and the history follows them: a writer killed between
        the two left the last switch unlogged, which is recorded now."""
        history = self.history()
        logged = history[-1]["to_version"] if history else None
        if current is not None and current != logged:
            self._append_history(Switch(logged, current, "recovered"))

    def _append_history(self, switch: Switch) -> None:
        entry = {
            "at": datetime.now(UTC).isoformat(),
            "from_version": switch.from_version,
            "to_version": switch.to_version,
            "reason": switch.reason,
        }
        with (self.root / HISTORY_FILE).open("a", encoding="utf-8") as stream:
            stream.write(strict_json(entry, indent=None, sort_keys=True) + "\n")
            stream.flush()
            os.fsync(stream.fileno())


def _plain(name: str) -> str:
    if not name or name.startswith(".") or Path(name).name != name:
        raise RegistryError(f"not a plain name inside the registry: {name!r}")
    return name


def _json_bytes(document: dict) -> bytes:
    return (strict_json(document, sort_keys=True) + "\n").encode("utf-8")
