"""Row identity and the stable train/holdout assignment.

A row's id is a hash of its values, so the same record gets the same id in every run and
every file. Its split never changes once given: reference rows keep the split of the
reference flow (`train_test_split(reference, test_size, random_state, stratify)`), every
other row is assigned from its id. So a model is never scored on rows it was trained on,
whatever lands.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ml_assets.learn.spec import ModelSpec
from ml_assets.learn.tasks import RANDOM_STATE

if TYPE_CHECKING:  # imported where used: loading the definitions stays light
    import numpy as np
    import pandas as pd

TRAIN, HOLDOUT = "train", "holdout"
ROW_ID_COLUMN = ("string", "hash of the row's values: the same record has the same id everywhere")
REFERENCE_SOURCE = "reference"
ID_DIGITS = 16
VALUE_BYTES = 8  # each value takes eight bytes of the row that is hashed


def _value_bytes(column: pd.Series, numeric: bool) -> np.ndarray:
    """Eight bytes per value: a number as float64 (rounded to 1e-9), a text value as the start
    of its sha256, a missing value as NaN in either case."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column):  # nanoseconds since 1970, NaN if missing
        nanoseconds = column.astype("datetime64[ns]").astype("int64")  # whatever the unit read
        values = nanoseconds.astype("float64").where(column.notna(), np.nan)
        return np.ascontiguousarray(values.to_numpy() + 0.0).view(np.uint8).reshape(-1, VALUE_BYTES)
    if numeric:
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        return np.ascontiguousarray(values.round(9) + 0.0).view(np.uint8).reshape(-1, VALUE_BYTES)
    missing = np.array([np.nan]).view(np.uint8)
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    digests = [
        hashlib.sha256(str(value).encode("utf-8")).digest()[:VALUE_BYTES] for value in uniques
    ]
    table = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(-1, VALUE_BYTES)
    table = np.vstack([table, missing])  # code -1 (missing) picks the last row
    return table[codes]


def row_ids(spec: ModelSpec, table: pd.DataFrame) -> pd.Series:
    """A 16-hex-digit id per row from its contract values.

    Numbers, integers and booleans count as float64 values, so a table of numbers hashes as
    the float64 bytes of its rows.
    """
    import numpy as np
    import pandas as pd

    parts = [_value_bytes(table[column.name], column.type != "category") for column in spec.columns]
    values = np.ascontiguousarray(np.hstack(parts)) if parts else np.empty((len(table), 0))
    rows = values.view(np.dtype((np.void, values.shape[1]))).ravel()  # one bytes per row
    ids = [hashlib.sha256(row).hexdigest()[:ID_DIGITS] for row in rows.tolist()]
    return pd.Series(ids, index=table.index, name="row_id")


def reference_split(spec: ModelSpec, table: pd.DataFrame) -> pd.Series:
    """The reference flow's split of the reference table, by position: train_test_split's, or
    by time the latest rows (as many as train_test_split would hold out; equal times in the
    file's order)."""
    import math

    import numpy as np
    import pandas as pd
    from sklearn.model_selection import train_test_split

    reference = spec.reference
    if reference.time_column is not None:
        order = np.argsort(table[reference.time_column].to_numpy(), kind="stable")
        holdout_positions = order[len(table) - math.ceil(reference.test_size * len(table)) :]
    else:
        _, holdout_positions = train_test_split(
            np.arange(len(table)),
            test_size=reference.test_size,
            random_state=reference.random_state,
            stratify=table[spec.target].to_numpy() if reference.stratify else None,
        )
    split = np.full(len(table), TRAIN, dtype=object)
    split[holdout_positions] = HOLDOUT
    return pd.Series(split, index=table.index, name="split")


def hashed_split(spec: ModelSpec, ids: pd.Series) -> pd.Series:
    """A split drawn from each row id: holdout when the id's first 32 bits fall below the
    holdout's share."""
    import numpy as np

    fraction = (id_numbers(ids) >> 32) / 2**32  # the first 8 hex digits, as a fraction
    holdout = (fraction < spec.reference.test_size).astype(np.int8)
    split = pick_strings([TRAIN, HOLDOUT], holdout)
    return split.set_axis(ids.index).rename("split")


def pick_strings(words: list[str], picks: np.ndarray) -> pd.Series:
    """A string column holding words[pick] for each pick, built by Arrow.

    A twentieth of the time of making a million Python strings for pandas to convert.
    """
    import pandas as pd
    import pyarrow as pa

    return pd.Series(pa.array(words).take(pa.array(picks)), dtype="str")


def id_numbers(ids: pd.Series) -> np.ndarray:
    """The 16-hex-digit ids as unsigned 64-bit integers, decoded all at once."""
    import numpy as np
    import pyarrow as pa

    # Arrow keeps a column's strings back to back in one buffer: decoding that buffer costs
    # a fifth of building a million Python strings first.
    column = pa.array(ids, type=pa.large_string())
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        return np.empty(0, dtype=np.uint64)
    _, offsets, data = column.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[[column.offset, column.offset + len(column)]]
    digits = memoryview(data)[bounds[0] : bounds[1]].tobytes().decode("ascii")
    if column.null_count or len(digits) != ID_DIGITS * len(column):
        raise ValueError(f"row ids must be {ID_DIGITS} hex digits each")
    return np.frombuffer(bytes.fromhex(digits), dtype=">u8").astype(np.uint64)


def reference_holdout(table: pd.DataFrame) -> pd.DataFrame:
    """The holdout rows of the reference data: the rows the deployment gate trusts.

    A landed batch's own holdout rows are scored too, but never decide: a poisoned batch
    must not grade its own model.
    """
    return table[(table["split"] == HOLDOUT) & (table["source"] == REFERENCE_SOURCE)]


def representative_rows(spec: ModelSpec, table: pd.DataFrame, rows: int) -> pd.DataFrame:
    """At most `rows` rows drawn at random (seeded), with every class of a classification
    among them, whatever order the file is in (an export sorted by its target included); the
    whole table when it has no more rows."""
    import pandas as pd

    if len(table) <= rows:
        return table
    shuffled = table.sample(frac=1.0, random_state=RANDOM_STATE).reset_index(drop=True)
    if not spec.task.predicts_classes:
        return shuffled.iloc[:rows]
    one_of_each = shuffled.groupby(spec.target, sort=False).head(1)
    rest = shuffled.drop(one_of_each.index).iloc[: max(rows - len(one_of_each), 0)]
    return pd.concat([one_of_each, rest])
