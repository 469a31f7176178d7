"""The model registry: one immutable folder per version and an atomic production pointer.

models/<version>/model.skops   the fitted Pipeline, saved with skops (never pickle)
models/<version>/card.json     what it is: metrics, data, config, versions, the file's sha256
models/production.json         the production alias, switched with os.replace
models/previous.json           the alias production had before the last switch

A version folder is written under a hidden staging name and renamed into place whole, so a
reader sees a complete version or none.
"""

import hashlib
import json
import os
import platform
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import dagster as dg
import skops.io as sio
from pydantic import Field
from sklearn.pipeline import Pipeline

from ml_assets import settings
from ml_assets.files import file_sha256, write_atomically

MODEL_FILE = "model.skops"
CARD_FILE = "card.json"
# Types skops does not trust by default that our model kinds are made of; nothing else loads.
ALLOWED_UNTRUSTED_TYPES = frozenset({"sklearn.tree._tree.Tree"})
LIBRARIES = ("scikit-learn", "skops", "numpy", "pandas", "dagster")


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


def model_to_bytes(model: Pipeline) -> bytes:
    """Serialise a model with skops."""
    return sio.dumps(model)


def model_from_bytes(data: bytes, source: str) -> Pipeline:
    """Load a skops model, refusing any type outside skops's defaults and our allow-list."""
    untrusted = set(sio.get_untrusted_types(data=data))
    refused = untrusted - ALLOWED_UNTRUSTED_TYPES
    if refused:
        raise RegistryError(f"{source} contains types outside the allow-list: {sorted(refused)}")
    return sio.loads(data, trusted=sorted(untrusted))


def library_versions() -> dict[str, str]:
    """The versions of the libraries a model file depends on, and Python's."""
    versions = {name: metadata.version(name) for name in LIBRARIES}
    versions["python"] = platform.python_version()
    return versions


class ModelRegistry(dg.ConfigurableResource):
    """Versioned, integrity-checked model store under `<data dir>/models`."""

    data_dir: str | None = Field(
        default=None, description="data folder; default $ML_ASSETS_DATA_DIR, else ./data"
    )

    @property
    def root(self) -> Path:
        models = settings.data_dir(self.data_dir) / "models"
        models.mkdir(parents=True, exist_ok=True)
        return models

    def register(self, model: Pipeline, card: dict) -> ModelVersion:
        """Write a new immutable version (model file and card) and return it."""
        staging = self.root / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        model_path = staging / MODEL_FILE
        write_atomically(model_path, model_to_bytes(model))
        sha256 = file_sha256(model_path)
        created = datetime.now(UTC)
        version = f"{created:%Y%m%dT%H%M%S%fZ}-{sha256[:8]}"
        full_card = {
            **card,
            "version": version,
            "created_at": created.isoformat(),
            "model_file": MODEL_FILE,
            "sha256": sha256,
            "libraries": library_versions(),
        }
        write_atomically(staging / CARD_FILE, _json_bytes(full_card))
        os.rename(staging, self.root / version)
        return ModelVersion(version, self.root / version, full_card)

    def get(self, version: str) -> ModelVersion:
        """A registered version's card; a missing or half-written version is an error."""
        path = self.root / _plain_version(version)
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
                f"model version '{version}': {MODEL_FILE} has sha256 {actual}, its card says"
                f" {registered.card.get('sha256')}; refusing a changed file"
            )
        return model_from_bytes(data, source=f"model version '{version}'")

    def production(self) -> ModelVersion | None:
        """The version the production alias points at, or None before the first promotion."""
        return self._alias("production")

    def previous(self) -> ModelVersion | None:
        """The version production pointed at before the last switch."""
        return self._alias("previous")

    def promote(self, version: str) -> ModelVersion:
        """Point production at a complete version; the old production becomes `previous`."""
        target = self.get(version)
        current = self.production()
        if current is not None and current.version != version:
            self._set_alias("previous", current.version)
        self._set_alias("production", version)
        return target

    def _alias(self, name: str) -> ModelVersion | None:
        pointer = self.root / f"{name}.json"
        try:
            version = json.loads(pointer.read_text(encoding="utf-8"))["version"]
        except FileNotFoundError:
            return None
        return self.get(version)

    def _set_alias(self, name: str, version: str) -> None:
        pointer = {"version": version, "switched_at": datetime.now(UTC).isoformat()}
        write_atomically(self.root / f"{name}.json", _json_bytes(pointer))


def _plain_version(version: str) -> str:
    if not version or version.startswith(".") or Path(version).name != version:
        raise RegistryError(f"not a model version name: {version!r}")
    return version


def _json_bytes(document: dict) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
