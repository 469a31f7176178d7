"""Small file-system helpers shared by the landing zone and the model registry, and the
strict JSON every output of the product is written in."""

import hashlib
import json
import math
import os
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target, flush to disk, then rename over it: readers never see half."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def finite(value):
    """A document with every float that is not finite (NaN, ±inf) as None: JSON has no such
    numbers, and a metric undefined on some rows is null, not NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def strict_json(document, indent: int | None = 2, sort_keys: bool = False) -> str:
    """JSON that every parser reads: `finite(document)`, refused (ValueError) if anything not
    finite remains."""
    return json.dumps(finite(document), indent=indent, sort_keys=sort_keys, allow_nan=False)
