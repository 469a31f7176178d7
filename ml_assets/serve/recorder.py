"""Every served prediction, recorded: the row's inputs (ids included), its `prediction_id`, the
prediction (and each class's probability), the version that answered and when.

A request only appends its rows to a list in memory; every `flush_seconds` a background task
writes what came in as one record batch to the model's open segment, an Arrow IPC stream
(`<data>/<m>/served/.open-<host>-<pid>-<n>.arrows`) flushed to the operating system, so a
killed process loses at most the last second. A segment is sealed into a Parquet file
(`served-<first UTC time>-<host>-<pid>-<n>.parquet`, written whole then renamed) when it
reaches `rotate_bytes` or `rotate_seconds`, and on a clean shutdown; a segment a dead process
left open on this host is sealed when the next service starts, its last batch dropped only if
the kill cut it in half.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import re
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ml_assets.learn.served_records import record_columns
from ml_assets.learn.spec import ModelSpec
from ml_assets.store.files import write_atomically
from ml_assets.store.served import OPEN_SEGMENTS, whole_batches

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger("ml_assets.serve.recorder")

DEFAULT_FLUSH_SECONDS = 1.0
DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024
DEFAULT_ROTATE_SECONDS = 3600.0
LARGE_REQUEST = 100  # rows from which a request is made a table as it is recorded
_SEGMENT = re.compile(r"\.open-(?P<host>.+)-(?P<pid>\d+)-(?P<n>\d+)\.arrows")


def record_schema(spec: ModelSpec) -> pa.Schema:
    """The Arrow schema of a model's served records (`record_columns`)."""
    import pyarrow as pa

    types = {
        "served_at": pa.timestamp("ms", tz="UTC"),
        "timestamp": pa.timestamp("us"),  # UTC, without an offset, as the contract keeps times
    }
    return pa.schema(
        pa.field(name, types.get(kind) or getattr(pa, kind)(), nullable=source == "row")
        for name, (source, _, kind) in record_columns(spec).items()
    )


class ServedRecorder:
    """One model's recorder: `record` on the request path, `flush` and `rotate_if_due` on a
    timer, `recover` at start and `close` at shutdown."""

    def __init__(
        self,
        spec: ModelSpec,
        folder: Path,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
        rotate_seconds: float = DEFAULT_ROTATE_SECONDS,
    ):
        self.spec, self.folder = spec, folder
        self.rotate_bytes, self.rotate_seconds = rotate_bytes, rotate_seconds
        self._pending: collections.deque = collections.deque()  # requests, or tables of them
        self._segment: Path | None = None
        self._sink = self._writer = None
        self._opened_at = 0.0
        self._count = 0
        self._host = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())

    def record(self, version: str, rows: list[dict] | pd.DataFrame, answers: list[dict]) -> None:
        """Keep one request's validated rows (JSON's dicts, or a CSV request's table) and their
        answers (with their prediction ids).

        A large request is made a table at once: its thousands of dicts are freed at once,
        and the next flush writes it as it is.
        """
        request = (version, time.time(), rows, answers)
        self._pending.append(self._table([request]) if len(answers) >= LARGE_REQUEST else request)

    def flush(self) -> int:
        """Write what came in since the last flush to the open segment; the rows written."""
        import pyarrow as pa

        pending = [self._pending.popleft() for _ in range(len(self._pending))]
        if not pending:
            return 0
        try:
            tables, requests = [], []
            for item in [*pending, None]:  # consecutive small requests: one conversion
                if isinstance(item, tuple):
                    requests.append(item)
                    continue
                if requests:
                    tables.append(self._table(requests))
                    requests = []
                if item is not None:
                    tables.append(item)
            batch = pa.concat_tables(tables)
        except (ValueError, TypeError) as error:  # Arrow's conversion errors are these
            log.error("%s: %d requests' rows not recorded: %s", self.spec.name, len(pending), error)
            return 0
        try:
            if self._writer is None:
                self._open()
            self._writer.write_table(batch)
            self._sink.flush()  # in the operating system's hands: a killed process keeps it
        except OSError:
            self._pending.extendleft(reversed(pending))  # tried again at the next flush
            raise
        return batch.num_rows

    def close(self) -> None:
        """Flush, then seal the open segment into a Parquet file."""
        self.flush()
        self._seal()

    def recover(self) -> list[Path]:
        """Seal the segments that dead processes of this host left open; the files made."""
        sealed = []
        for segment in sorted(self.folder.glob(OPEN_SEGMENTS)):
            match = _SEGMENT.fullmatch(segment.name)
            if match is None or match["host"] != self._host or _alive(int(match["pid"])):
                continue
            made = _sealed(segment)
            if made is not None:
                sealed.append(made)
        return sealed

    def _table(self, requests: list) -> pa.Table:
        """Requests' records as a table of the record schema."""
        import pyarrow as pa

        sources = record_columns(self.spec)
        inputs = self._inputs(requests, sources)
        answers = [answer for _, _, _, request in requests for answer in request]
        arrays = []
        for field in self.schema:
            source, key, _ = sources[field.name]
            if source == "row":
                arrays.append(inputs.column(field.name))
                continue
            if source == "answer":
                values = [answer[key] for answer in answers]
            elif source == "probability":
                values = [answer["probabilities"][key] for answer in answers]
            elif key == "version":
                values = [
                    v for version, _, _, request in requests for v in [version] * len(request)
                ]
            else:  # served_at, in milliseconds
                values = [
                    ms for _, t, _, request in requests for ms in [int(t * 1000)] * len(request)
                ]
            arrays.append(pa.array(values, type=field.type))
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def _inputs(self, requests: list, sources: dict) -> pa.Table:
        """The requests' rows as one table of the record's input columns: JSON requests' dicts
        in one conversion (Arrow's, not a loop of ours), a CSV request's table as it is."""
        import pyarrow as pa

        keys = {name: key for name, (source, key, _) in sources.items() if source == "row"}
        schema = pa.schema([self.schema.field(name).with_name(keys[name]) for name in keys])
        parts, listed = [], []
        for _, _, rows, _ in requests:
            if isinstance(rows, list):
                listed += rows
                continue
            if listed:
                parts.append(pa.Table.from_pylist(listed, schema=schema))
                listed = []
            table = rows.reindex(columns=list(keys.values()))  # an absent nullable id: missing
            parts.append(pa.Table.from_pandas(table, schema=schema, preserve_index=False))
        if listed or not parts:
            parts.append(pa.Table.from_pylist(listed, schema=schema))
        return pa.concat_tables(parts).rename_columns(list(keys))

    @functools.cached_property
    def schema(self) -> pa.Schema:
        return record_schema(self.spec)

    def _open(self) -> None:
        import pyarrow as pa

        self.folder.mkdir(parents=True, exist_ok=True)
        self._count += 1
        self._segment = self.folder / f".open-{self._host}-{os.getpid()}-{self._count}.arrows"
        self._sink = self._segment.open("wb")
        self._writer = pa.ipc.new_stream(self._sink, self.schema)
        self._opened_at = time.monotonic()

    def rotate_if_due(self) -> None:
        """Seal the open segment once it is `rotate_bytes` large or `rotate_seconds` old."""
        if self._writer is None:
            return
        too_old = time.monotonic() - self._opened_at >= self.rotate_seconds
        if too_old or self._sink.tell() >= self.rotate_bytes:
            self._seal()

    def _seal(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._sink.close()
        self._writer = self._sink = None
        _sealed(self._segment)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _sealed(segment: Path) -> Path | None:
    """A segment's complete batches as a Parquet file beside it; the segment then removed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    batches = whole_batches(segment)
    if not batches:
        segment.unlink()
        return None
    table = pa.Table.from_batches(batches)
    first = table["served_at"][0].as_py().strftime("%Y%m%dT%H%M%S.%fZ")
    name = segment.name.removeprefix(".open-").removesuffix(".arrows")
    target = segment.with_name(f"served-{first}-{name}.parquet")
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_atomically(target, sink.getvalue().to_pybytes())
    segment.unlink()  # its rows are in the Parquet file now
    return target


async def flush_records(recorders: dict[str, ServedRecorder], flush_seconds: float) -> None:
    """Flush every recorder each `flush_seconds`, forever (cancel the task to stop).

    The flush runs on the event loop itself: in a thread it fought the loop for the GIL, and
    1 000-row requests lost a quarter of their throughput (a tenth on the loop); sealing a
    segment into Parquet, seconds of work once a rotation, runs in a thread.
    """
    while True:
        await asyncio.sleep(flush_seconds)
        for name, recorder in recorders.items():
            try:
                recorder.flush()
                await asyncio.to_thread(recorder.rotate_if_due)
            except Exception:  # a full disk, a lost share: kept, and tried again next time
                log.exception("%s: recording served predictions failed", name)
