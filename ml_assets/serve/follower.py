"""The production version of each model as the service holds it: loaded, checked, followed.

A background task reads each model's production alias every `poll_seconds` (a file of a few
bytes, read with `open`, so that NFS's close-to-open consistency sees another node's switch).
A new version is loaded with the registry's own checks (sha256, skops allow-list) and must
score one row of the contract's columns before it replaces the old one; a version that
fails is never served, the previous one stays, and `problem` says why. Requests only read
the in-memory `loaded` attribute: one version per request, no file read on the request path.

Concurrent JSON requests to one model are predicted together: while a prediction runs, the
requests that arrive wait and are then scored in one call. scikit-learn's fixed cost per call
(input validation, the ColumnTransformer's column selection: about 3 ms on a 2-core machine)
is paid once per batch instead of once per request; a request that arrives while nothing
runs is scored at once, alone. Predictions run on the event loop itself: in a worker thread
they fought the loop for the GIL and the throughput fell (980 against 1 600 single-row
requests a second at concurrency 16). A CSV table is predicted on its own, not batched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ml_assets.learn.champion import differs, unlike, version_inputs
from ml_assets.learn.modeling import model_input, records_input
from ml_assets.learn.spec import ColumnSpec, ModelSpec
from ml_assets.serve.schema import answer_rows, row_identifiers, table_identifiers
from ml_assets.store.memory import settle_loaded_objects
from ml_assets.store.registry import ModelVersion, ModelVersions, RegistryError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

log = logging.getLogger("ml_assets.serve.app")

DEFAULT_POLL_SECONDS = 0.5
DEFAULT_BATCH_ROWS = 1024
RETRY_REFUSED_SECONDS = 30  # a refused version is tried again this often (a file restored)


class NotServing(RuntimeError):
    """A model has no loaded version to answer with; the message says why."""


@dataclass(frozen=True)
class LoadedVersion:
    """A production version in memory: its card, its model, when it was put in production, and
    what it takes when the declaration has changed since it was trained (else None)."""

    version: ModelVersion
    model: Pipeline
    promoted_at: str | None
    inputs: tuple[ColumnSpec, ...] | None = None

    @property
    def name(self) -> str:
        return self.version.version


@dataclass
class _Waiting:
    rows: list[dict]
    answer: asyncio.Future


class ServedModel:
    """One model as served: its spec, the loaded production version, and why not if none."""

    def __init__(self, spec: ModelSpec, versions: ModelVersions, batch_rows: int):
        self.spec = spec
        self.versions = versions
        self.batch_rows = batch_rows
        self.loaded: LoadedVersion | None = None
        self.problem: str | None = None  # why production is not what is served, if it is not
        self._refused: dict[str, float] = {}  # version -> when it was refused
        self._waiting: list[_Waiting] = []
        self._draining = False

    def follow_production(self) -> None:
        """Load the production version if it is not the one served (blocking: a thread's job)."""
        try:
            production = self.versions.production()
        except RegistryError as error:
            self._refuse(None, "its card cannot be read", error)
            return
        if production is None:
            if self.loaded is None:
                self.problem = f"nothing of {self.spec.name} is in production yet"
            return
        if self.loaded is not None and production.version == self.loaded.name:
            self.problem = None
            return
        refused_at = self._refused.get(production.version)
        if refused_at is not None and time.monotonic() - refused_at < RETRY_REFUSED_SECONDS:
            return
        try:
            model = self.versions.load(production.version)
        except RegistryError as error:
            self._refuse(production.version, "its model file fails the registry's checks", error)
            return
        inputs = version_inputs(production.card) if differs(self.spec, production.card) else None
        try:
            self._probe(model, inputs)
        except Exception as error:  # noqa: BLE001 - whatever a model unfit for the contract raises
            self._refuse(production.version, "it cannot score a row of the contract", error)
            return
        previous = self.loaded
        self.loaded = LoadedVersion(
            production, model, self._promoted_at(production.version), inputs
        )
        missing = unlike(self.spec, inputs)
        if missing:
            log.warning(
                "%s: version %s takes %s, which the declaration no longer gives alike: given"
                " as missing (imputed) or converted until a version trained on it is promoted",
                self.spec.name,
                production.version,
                ", ".join(missing),
            )
        self.problem = None
        self._refused.pop(production.version, None)
        settle_loaded_objects()  # the new model's objects, out of the collector's walks
        log.info(
            "%s: serving version %s (was %s)",
            self.spec.name,
            production.version,
            previous.name if previous else "none",
        )

    def _probe(self, model: Pipeline, inputs: tuple[ColumnSpec, ...] | None) -> None:
        """Score one row with every feature missing: the pipeline imputes each, so any model
        made for this contract answers, with one column per class for a classifier."""
        row = self._input(inputs, [dict.fromkeys(self.spec.features)])
        scored = self.spec.task.predict(model, row)
        expected = list(self.spec.task.prediction_columns())
        if list(scored.columns) != expected or len(scored) != 1:
            raise ValueError(f"it answered {list(scored.columns)}, not {expected}")

    def _input(self, inputs: tuple[ColumnSpec, ...] | None, rows: list[dict]) -> pd.DataFrame:
        """The model input of validated JSON rows, for a version that takes the declaration's
        features (the fast path) or other ones (`inputs`)."""
        if inputs is None:
            return records_input(self.spec, rows)
        import pandas as pd

        return model_input(self.spec, pd.DataFrame(rows), inputs)

    def _refuse(self, version: str | None, reason: str, error: Exception) -> None:
        """Keep what is served; say why in `problem` (no path in it) and in the log (all)."""
        serving = self.loaded.name if self.loaded else "nothing"
        self.problem = (
            f"production version {version or '?'} is not served: {reason}; serving {serving}"
        )
        if version is not None:
            self._refused[version] = time.monotonic()
        log.error("%s: %s (%s)", self.spec.name, self.problem, error)

    def _promoted_at(self, version: str) -> str | None:
        switches = [entry for entry in self.versions.history() if entry["to_version"] == version]
        return switches[-1]["at"] if switches else None

    @property
    def version(self) -> str | None:
        """The version served, or None."""
        loaded = self.loaded
        return loaded.name if loaded else None

    def serving(self) -> LoadedVersion:
        """The version requests are answered with, or NotServing with the reason."""
        loaded = self.loaded
        if loaded is None:
            raise NotServing(self.problem or f"{self.spec.name} has no version loaded yet")
        return loaded

    async def predict_rows(self, rows: list[dict]) -> tuple[LoadedVersion, list[dict]]:
        """Answer validated JSON rows, together with other requests waiting to be scored."""
        self.serving()  # refuse at once, not after a wait
        answer = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(rows, answer))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await answer

    def predict_table(self, table: pd.DataFrame) -> tuple[LoadedVersion, list[dict]]:
        """Answer a validated table (a CSV request) on its own."""
        loaded = self.serving()
        identifiers = table_identifiers(self.spec, table)
        rows = model_input(self.spec, table, loaded.inputs)
        return loaded, _checked(*self._scored(loaded, rows, identifiers))

    async def _drain(self) -> None:
        try:
            while self._waiting:
                await asyncio.sleep(0)
                batch, rows = [], 0
                while self._waiting and (
                    not batch or rows + len(self._waiting[0].rows) <= self.batch_rows
                ):
                    waiting = self._waiting.pop(0)
                    batch.append(waiting)
                    rows += len(waiting.rows)
                self._answer(batch)
        finally:
            self._draining = False

    def _answer(self, batch: list[_Waiting]) -> None:
        try:
            loaded = self.serving()  # one version for the whole batch
            rows = [row for waiting in batch for row in waiting.rows]
            answers, finite = self._scored(
                loaded, self._input(loaded.inputs, rows), row_identifiers(self.spec, rows)
            )
        except Exception as error:  # noqa: BLE001 - it is every waiting request's answer
            for waiting in batch:
                if not waiting.answer.done():  # done: its client went away
                    waiting.answer.set_exception(error)
            return
        start = 0
        for waiting in batch:
            end = start + len(waiting.rows)
            if not waiting.answer.done():
                try:
                    answer = _checked(answers[start:end], finite[start:end])
                    waiting.answer.set_result((loaded, answer))
                except UnfiniteOutput as error:
                    waiting.answer.set_exception(error)
            start = end

    def _scored(
        self, loaded: LoadedVersion, rows: pd.DataFrame, identifiers: list[dict]
    ) -> tuple[list[dict], list[bool]]:
        """The answer to each of the model input's rows (with its identifiers), and whether its
        outputs are finite."""
        import numpy as np

        with np.errstate(over="ignore", invalid="ignore"):  # found just below, and refused
            scored = self.spec.task.predict(loaded.model, rows)
        numbers = [
            name
            for name, (kind, _) in self.spec.task.prediction_columns().items()
            if kind == "float64"
        ]
        finite = np.logical_and.reduce([np.isfinite(scored[name].to_numpy()) for name in numbers])
        return answer_rows(self.spec, scored, identifiers), finite.tolist()


class UnfiniteOutput(ValueError):
    """Values so far out of range that the model's output overflowed; `rows` are 1-based."""

    def __init__(self, rows: list[int]):
        super().__init__(f"the model's output is not a finite number for rows {rows}")
        self.rows = rows


def _checked(answers: list[dict], finite: list[bool]) -> list[dict]:
    if not all(finite):
        raise UnfiniteOutput([row + 1 for row, ok in enumerate(finite) if not ok][:5])
    return answers


async def follow_production(models: dict[str, ServedModel], poll_seconds: float) -> None:
    """Keep every model on its production version, forever (cancel the task to stop)."""
    while True:
        for served in models.values():
            try:
                await asyncio.to_thread(served.follow_production)
            except Exception:  # an unreadable share this time: tried again at the next poll
                log.exception("%s: reading the registry failed", served.spec.name)
        await asyncio.sleep(poll_seconds)
