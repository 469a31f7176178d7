"""Row identity and the stable train/holdout assignment.

A row's id is a hash of its values, so the same record gets the same id in every run and
every file. Its split never changes once given: reference rows keep the split of the
reference flow (`train_test_split(test_size=0.2, random_state=42)`), every other row is
assigned from its id. So a model is never scored on rows it was trained on, whatever lands.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ml_assets.contract import COLUMNS

if TYPE_CHECKING:  # imported where used: loading the definitions stays light
    import numpy as np
    import pandas as pd

HOLDOUT_FRACTION = 0.2
REFERENCE_SPLIT_SEED = 42
TRAIN, HOLDOUT = "train", "holdout"
ROW_ID_COLUMN = ("string", "hash of the row's values: the same record has the same id everywhere")
REFERENCE_SOURCE = "reference"
ID_DIGITS = 16


def row_ids(table: pd.DataFrame) -> pd.Series:
    """A 16-hex-digit id per row from its contract values (float64, rounded to 1e-9)."""
    import numpy as np
    import pandas as pd

    values = np.ascontiguousarray(table[COLUMNS].to_numpy(dtype="float64").round(9) + 0.0)
    rows = values.view(np.dtype((np.void, values.shape[1] * 8))).ravel()  # one bytes per row
    ids = [hashlib.sha256(row).hexdigest()[:ID_DIGITS] for row in rows.tolist()]
    return pd.Series(ids, index=table.index, name="row_id")


def reference_split(table: pd.DataFrame) -> pd.Series:
    """The reference flow's split of the bundled table, by position."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import train_test_split

    _, holdout_positions = train_test_split(
        np.arange(len(table)), test_size=HOLDOUT_FRACTION, random_state=REFERENCE_SPLIT_SEED
    )
    split = np.full(len(table), TRAIN, dtype=object)
    split[holdout_positions] = HOLDOUT
    return pd.Series(split, index=table.index, name="split")


def hashed_split(ids: pd.Series) -> pd.Series:
    """A split drawn from each row id: holdout when the id's first 32 bits fall below 20%."""
    import numpy as np

    fraction = (id_numbers(ids) >> 32) / 2**32  # the first 8 hex digits, as a fraction
    split = pick_strings([TRAIN, HOLDOUT], (fraction < HOLDOUT_FRACTION).astype(np.int8))
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
