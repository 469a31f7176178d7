"""Training: the dataset, its cleaned features, the candidate model and its holdout metrics."""

import hashlib
import itertools
from typing import TYPE_CHECKING

import dagster as dg

from ml_assets.assets.ingestion import FILE_SYSTEM_RETRY
from ml_assets.contract import COLUMNS, FEATURES, TARGET, column_rules, table_schema
from ml_assets.modeling import (
    ModelConfig,
    build_pipeline,
    prediction_fingerprint,
    regression_metrics,
)
from ml_assets.registry import ModelRegistry
from ml_assets.reporting import float_metadata, table_metadata
from ml_assets.splits import (
    HOLDOUT,
    REFERENCE_SOURCE,
    ROW_ID_COLUMN,
    TRAIN,
    hashed_split,
    id_numbers,
    pick_strings,
    reference_holdout,
    reference_split,
    row_ids,
)

if TYPE_CHECKING:
    import pandas as pd

# The assets' tables are pandas DataFrames and the model a scikit-learn Pipeline; their
# parameters carry no such annotations so that loading the definitions imports neither.
ROW_COLUMNS = {
    "row_id": ROW_ID_COLUMN,
    "split": ("string", "train or holdout; never changes once given"),
    "source": ("string", "'reference' or the landed file the row came from"),
}


def data_fingerprint(table: "pd.DataFrame") -> str:
    """A sha256 over the sorted ids of the training rows, then of the holdout rows: equal
    tables (in any row order), equal fingerprints."""
    import numpy as np

    ids, holdout = id_numbers(table["row_id"]), (table["split"] == HOLDOUT).to_numpy()
    # Two sorts of the ids themselves: a quarter less time than ordering (id, split) pairs.
    train_ids = np.sort(ids[~holdout]).astype("<u8")
    holdout_ids = np.sort(ids[holdout]).astype("<u8")
    count = np.array([len(holdout_ids)], dtype="<u8")  # where one part ends and the other starts
    return hashlib.sha256(count.tobytes() + train_ids.tobytes() + holdout_ids.tobytes()).hexdigest()


def _split_counts(table: "pd.DataFrame") -> dict[str, dg.MetadataValue]:
    counts = table["split"].value_counts()
    return {
        "train_rows": dg.MetadataValue.int(int(counts.get(TRAIN, 0))),
        "holdout_rows": dg.MetadataValue.int(int(counts.get(HOLDOUT, 0))),
        "data_fingerprint": dg.MetadataValue.text(data_fingerprint(table)),
    }


@dg.asset(
    group_name="training",
    ins={"raw_batches": dg.AssetIn(metadata={"allow_missing_partitions": True})},
    retry_policy=FILE_SYSTEM_RETRY,
    kinds={"pandas", "parquet"},
)
def dataset(reference_data, raw_batches: dict) -> dg.Output:
    """Reference rows plus every ingested batch, de-duplicated, with stable ids and splits."""
    import numpy as np
    import pandas as pd

    names = sorted(raw_batches)
    # Ingestion gives rows their ids; batches ingested before it did get them here.
    parts = [
        part if "row_id" in part else part.assign(row_id=row_ids(part))
        for part in [reference_data, *(raw_batches[name] for name in names)]
    ]
    # De-duplicated by id as an integer (faster to hash than the hex string), part by part:
    # filtering copies every column, so only a part that holds a repeat is copied twice.
    numbers = id_numbers(pd.concat([part["row_id"] for part in parts], ignore_index=True))
    repeated = pd.Series(numbers).duplicated(keep="first").to_numpy()
    bounds = np.cumsum([0, *map(len, parts)])
    kept = [~repeated[start:end] for start, end in itertools.pairwise(bounds)]
    # Whole-table steps only from here: with many small batches, a step per batch would cost
    # more than their rows.
    table = pd.concat(
        [part if keep.all() else part[keep] for part, keep in zip(parts, kept, strict=True)],
        ignore_index=True,
    )[["row_id", *COLUMNS]]
    split = hashed_split(table["row_id"])  # for all rows at once, then the reference's own
    split.iloc[: kept[0].sum()] = reference_split(reference_data).to_numpy()[kept[0]]
    table["split"] = split
    sources = np.repeat(np.arange(len(parts)), [keep.sum() for keep in kept])
    table["source"] = pick_strings([REFERENCE_SOURCE, *names], sources)
    return dg.Output(
        table,
        metadata={
            **table_metadata(table, table_schema(ROW_COLUMNS)),
            **_split_counts(table),
            "batches": dg.MetadataValue.int(len(raw_batches)),
            "duplicate_rows_dropped": dg.MetadataValue.int(int(repeated.sum())),
        },
    )


@dg.asset(group_name="training", kinds={"pandas"})
def features(dataset) -> dg.Output:
    """The cleaned table the model trains on: complete rows with plausible values."""
    import pandas as pd

    # Column by column: a frame of the converted columns would first copy them into one 2-D
    # block (0.3 s at 1 000 000 rows, more than all the rest of this step).
    values = {
        name: pd.to_numeric(dataset[name], errors="coerce").astype("float64") for name in COLUMNS
    }
    complete = pd.Series(True, index=dataset.index)
    for column in values.values():
        complete &= column.notna()
    plausible = pd.Series(True, index=dataset.index)
    for rule in column_rules():
        plausible &= values[rule.name].between(rule.low, rule.high) | values[rule.name].isna()
    keep = complete & plausible
    table = dataset.assign(**values)[keep].reset_index(drop=True)
    return dg.Output(
        table,
        metadata={
            **table_metadata(table, table_schema(ROW_COLUMNS)),
            **_split_counts(table),
            "rows_dropped_incomplete": dg.MetadataValue.int(int((~complete).sum())),
            "rows_dropped_implausible": dg.MetadataValue.int(int((complete & ~plausible).sum())),
        },
    )


@dg.asset(
    group_name="training",
    io_manager_key="model_io_manager",
    pool="training",
    kinds={"scikitlearn"},
)
def candidate_model(config: ModelConfig, features) -> dg.Output:
    """A scikit-learn Pipeline fitted on the training rows of the features."""
    train = features[features["split"] == TRAIN]
    model = build_pipeline(config).fit(train[FEATURES], train[TARGET])
    regressor = model.named_steps["regressor"]
    return dg.Output(
        model,
        metadata={
            "model_kind": dg.MetadataValue.text(config.model_kind),
            "estimator": dg.MetadataValue.text(type(regressor).__name__),
            "config": dg.MetadataValue.json(config.model_dump()),
            "training_rows": dg.MetadataValue.int(len(train)),
            "data_fingerprint": dg.MetadataValue.text(data_fingerprint(features)),
            **float_metadata("train", regression_metrics(model, train, train[TARGET])),
        },
    )


@dg.asset(
    group_name="training",
    io_manager_key="json_io_manager",
    retry_policy=FILE_SYSTEM_RETRY,
    kinds={"scikitlearn"},
)
def model_metrics(
    context: dg.AssetExecutionContext,
    candidate_model,
    features,
    registry: ModelRegistry,
) -> dg.Output[dict]:
    """Holdout metrics of the candidate and of the current production model, on the same rows."""
    holdout = features[features["split"] == HOLDOUT]
    trusted = reference_holdout(features)
    production = registry.production()
    champion = registry.load(production.version) if production is not None else None

    def score(rows: "pd.DataFrame") -> dict:
        return {
            "rows": len(rows),
            "candidate": regression_metrics(candidate_model, rows, rows[TARGET]),
            "production": None
            if champion is None
            else regression_metrics(champion, rows, rows[TARGET]),
        }

    gate, everything = score(trusted), score(holdout)
    value = {
        "candidate": gate["candidate"],
        "production": gate["production"],
        "production_version": production.version if production else None,
        "holdout_rows": gate["rows"],
        "all_holdout": everything,
        "training_rows": int((features["split"] == TRAIN).sum()),
        "data_fingerprint": data_fingerprint(features),
        # production_model checks it deploys the very model measured here.
        "candidate_fingerprint": prediction_fingerprint(candidate_model, trusted),
    }
    context.log.info(
        f"reference holdout ({gate['rows']} rows): candidate MSE {gate['candidate']['mse']:.2f}, "
        f"production {production.version if production else 'none'} MSE "
        f"{gate['production']['mse'] if gate['production'] else float('nan'):.2f}"
    )
    metadata = {
        **float_metadata("candidate", gate["candidate"]),
        "holdout_rows": dg.MetadataValue.int(gate["rows"]),
        "all_holdout_rows": dg.MetadataValue.int(everything["rows"]),
        "candidate_all_holdout_mse": dg.MetadataValue.float(everything["candidate"]["mse"]),
        "training_rows": dg.MetadataValue.int(value["training_rows"]),
        "production_version": dg.MetadataValue.text(value["production_version"] or "none"),
    }
    if champion is not None:
        metadata.update(float_metadata("production", gate["production"]))
        metadata["production_all_holdout_mse"] = dg.MetadataValue.float(
            everything["production"]["mse"]
        )
    return dg.Output(value, metadata=metadata)
