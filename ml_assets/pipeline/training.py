"""Training: the dataset, its cleaned features, the candidate model and its holdout metrics."""

import hashlib
import itertools
from typing import TYPE_CHECKING

import dagster as dg

from ml_assets.learn.champion import (
    PREDICTIONS_FILE,
    RESCORED,
    Answers,
    production_answers,
    version_inputs,
)
from ml_assets.learn.contract import utc_times
from ml_assets.learn.gate_statistics import constant_answer, measure
from ml_assets.learn.importance import permutation_importances
from ml_assets.learn.labels import LABELLED_SOURCE, labelled_batch
from ml_assets.learn.live import labelled_once
from ml_assets.learn.model_card import card_metrics, importance_markdown, metrics_table
from ml_assets.learn.modeling import (
    build_pipeline,
    estimator_of,
    model_input,
    prediction_fingerprint,
)
from ml_assets.learn.reference import reference_columns
from ml_assets.learn.search import FALLBACK, leaderboard, search, status_counts, trial_record
from ml_assets.learn.spec import ModelSpec
from ml_assets.learn.splits import (
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
from ml_assets.learn.threads import fitting_threads
from ml_assets.pipeline.ingestion import FILE_SYSTEM_RETRY
from ml_assets.pipeline.metadata import (
    float_metadata,
    interval_metadata,
    table_metadata,
    table_schema,
)
from ml_assets.pipeline.naming import asset_key
from ml_assets.pipeline.run_config import model_config_class, resolved_params
from ml_assets.pipeline.tracking import mirror_candidate
from ml_assets.pipeline.versions import code_version
from ml_assets.store.mlflow_mirror import MlflowMirror
from ml_assets.store.registry import ModelRegistry, ModelVersion, ModelVersions, RegistryError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

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


def evaluate(spec: ModelSpec, model, rows: "pd.DataFrame") -> dict:
    """Every metric of the model's task on the given rows."""
    return spec.task.evaluate(model, model_input(spec, rows), rows[spec.target])


def cleaned(spec: ModelSpec, dataset: "pd.DataFrame") -> tuple["pd.DataFrame", dict[str, int]]:
    """The rows a model may learn from: every required value present, every value plausible
    by the contract; and how many rows each rule dropped."""
    import numpy as np
    import pandas as pd

    # Column by column: a frame of the converted columns would first copy them into one 2-D
    # block (0.3 s at 1 000 000 rows, more than all the rest of this step).
    values, complete = {}, pd.Series(True, index=dataset.index)
    plausible = pd.Series(True, index=dataset.index)
    for column in spec.columns:
        raw = dataset[column.name]
        if column.numeric:
            value = pd.to_numeric(raw, errors="coerce").astype("float64")
            fits = pd.Series(np.isfinite(value.to_numpy()), index=dataset.index)
            if column.type == "integer":
                fits &= value % 1 == 0
            if column.min is not None:
                fits &= value >= column.min
            if column.max is not None:
                fits &= value <= column.max
        elif column.type == "datetime":
            value = utc_times(raw)
            fits = value.notna()
            if column.min is not None:
                fits &= value >= pd.Timestamp(column.min)
            if column.max is not None:
                fits &= value <= pd.Timestamp(column.max)
        else:
            value = raw.astype("boolean" if column.type == "boolean" else "str")
            allowed = spec.classes if column.name == spec.target else column.allowed
            fits = value.isin(list(allowed)) if allowed is not None else value.notna()
        present = value.notna()
        if not column.nullable:
            complete &= present
        plausible &= fits | ~present
        values[column.name] = value.astype("Int64") if column.type == "integer" else value
    keep = complete & plausible
    dropped = {
        "rows_dropped_incomplete": int((~complete).sum()),
        "rows_dropped_implausible": int((complete & ~plausible).sum()),
    }
    return dataset.assign(**values)[keep].reset_index(drop=True), dropped


def production_answers_on(
    spec: ModelSpec, versions: ModelVersions, production: ModelVersion | None, rows: "pd.DataFrame"
) -> tuple[Answers | None, "Pipeline | None"]:
    """Production's answers on the gate's rows, whatever the declaration became
    (`champion.production_answers`), and its model when the registry can load it."""
    import io

    import pandas as pd

    if production is None:
        return None, None
    try:
        model = versions.load(production.version)
    except RegistryError as error:
        dg.get_dagster_logger().warning(f"production {production.version}: {error}")
        model = None
    kept = versions.attachment(production.version, PREDICTIONS_FILE)
    stored = None if kept is None else pd.read_parquet(io.BytesIO(kept))
    answers = production_answers(
        spec,
        model,
        production.card,
        rows,
        stored,
        lambda columns: reference_columns(spec, columns),
    )
    return answers, model


def training_assets(spec: ModelSpec) -> list[dg.AssetsDefinition]:
    """dataset, features, candidate_model and model_metrics of one model."""
    model_config = model_config_class(spec)

    @dg.asset(
        key=asset_key(spec, "dataset"),
        code_version=code_version(spec, "dataset"),
        group_name=spec.name,
        ins={
            "reference_data": dg.AssetIn(asset_key(spec, "reference_data")),
            "raw_batches": dg.AssetIn(
                asset_key(spec, "raw_batches"), metadata={"allow_missing_partitions": True}
            ),
            "labels": dg.AssetIn(
                asset_key(spec, "labels"),
                partition_mapping=dg.AllPartitionMapping(),
                metadata={"allow_missing_partitions": True},
            ),
        },
        retry_policy=FILE_SYSTEM_RETRY,
        kinds={"pandas", "parquet"},
    )
    def dataset(reference_data, raw_batches: dict, labels: dict) -> dg.Output:
        """Reference rows plus every ingested batch and the served rows whose labels came,
        de-duplicated, with stable ids and splits."""
        import numpy as np
        import pandas as pd

        names = sorted(raw_batches)
        labelled, refused = labelled_batch(spec, labelled_once(list(labels.values())))
        # Ingestion gives rows their ids; batches ingested before it did get them here.
        parts = [
            part if "row_id" in part else part.assign(row_id=row_ids(spec, part))
            for part in [reference_data, *(raw_batches[name] for name in names), labelled]
        ]
        # De-duplicated by id as an integer (faster to hash than the hex string), part by part:
        # filtering copies every column, so only a part that holds a repeat is copied twice.
        numbers = id_numbers(pd.concat([part["row_id"] for part in parts], ignore_index=True))
        repeated = pd.Series(numbers).duplicated(keep="first").to_numpy()
        bounds = np.cumsum([0, *map(len, parts)])
        kept = [~repeated[start:end] for start, end in itertools.pairwise(bounds)]
        # Whole-table steps only from here: with many small batches, a step per batch would
        # cost more than their rows.
        table = pd.concat(
            [part if keep.all() else part[keep] for part, keep in zip(parts, kept, strict=True)],
            ignore_index=True,
        )[["row_id", *spec.column_names]]
        split = hashed_split(spec, table["row_id"])  # for all rows at once, then the reference's
        split.iloc[: kept[0].sum()] = reference_split(spec, reference_data).to_numpy()[kept[0]]
        table["split"] = split
        sources = np.repeat(np.arange(len(parts)), [keep.sum() for keep in kept])
        table["source"] = pick_strings([REFERENCE_SOURCE, *names, LABELLED_SOURCE], sources)
        counts = _split_counts(table)
        return dg.Output(
            table,
            data_version=dg.DataVersion(counts["data_fingerprint"].value),
            metadata={
                **table_metadata(table, table_schema(spec, ROW_COLUMNS)),
                **counts,
                "batches": dg.MetadataValue.int(len(raw_batches)),
                "labelled_rows": dg.MetadataValue.int(len(labelled)),
                "labelled_rows_refused": dg.MetadataValue.int(refused),
                "duplicate_rows_dropped": dg.MetadataValue.int(int(repeated.sum())),
            },
        )

    @dg.asset(
        key=asset_key(spec, "features"),
        code_version=code_version(spec, "features"),
        group_name=spec.name,
        ins={"dataset": dg.AssetIn(asset_key(spec, "dataset"))},
        kinds={"pandas"},
    )
    def features(dataset) -> dg.Output:
        """The cleaned table the model trains on: required values present, values plausible."""
        table, dropped = cleaned(spec, dataset)
        counts = _split_counts(table)
        return dg.Output(
            table,
            data_version=dg.DataVersion(counts["data_fingerprint"].value),
            metadata={
                **table_metadata(table, table_schema(spec, ROW_COLUMNS)),
                **counts,
                **{name: dg.MetadataValue.int(count) for name, count in dropped.items()},
            },
        )

    @dg.asset(
        key=asset_key(spec, "candidate_model"),
        code_version=code_version(spec, "candidate_model"),
        group_name=spec.name,
        ins={"features": dg.AssetIn(asset_key(spec, "features"))},
        io_manager_key="model_io_manager",
        pool="training",
        kinds={"scikitlearn"},
    )
    def candidate_model(config: model_config, features) -> dg.Output:
        """A scikit-learn Pipeline (the declared preprocessing, then the estimator) fitted on
        the training rows of the features: the declared kind, or the best of the search."""
        train = features[features["split"] == TRAIN]
        rows, target = model_input(spec, train), train[spec.target]
        chosen, searched = {"kind": config.kind, "params": resolved_params(spec, config)}, {}
        if spec.search is not None and config.budget_seconds > 0:
            time_column = spec.reference.time_column
            found = search(
                spec, rows, target, config.budget_seconds,
                times=None if time_column is None else utc_times(train[time_column]),
            )  # fmt: skip
            if found.outcome == FALLBACK:
                dg.get_dagster_logger().warning(f"search: {found.reason}")
            chosen = {"kind": found.kind, "params": found.params}
            metric = spec.task.metrics[spec.search.metric or spec.gate.metric.name]
            searched = {
                "search_outcome": dg.MetadataValue.text(found.outcome),
                "search_reason": dg.MetadataValue.text(found.reason),
                "leaderboard": dg.MetadataValue.md(leaderboard(found, metric.label)),
                "search_trials": dg.MetadataValue.json(
                    [trial_record(trial) for trial in found.trials]
                ),
                "trials": dg.MetadataValue.int(len(found.trials)),
                **{
                    f"trials_{status.split()[0]}": dg.MetadataValue.int(count)
                    for status, count in status_counts(found).items()
                },
                "search_seconds": dg.MetadataValue.float(found.seconds),
                "budget_seconds": dg.MetadataValue.float(config.budget_seconds),
            }
        kind = spec.task.kinds[chosen["kind"]]
        unknown = kind.unknown_params(chosen["params"])
        if unknown:
            raise dg.Failure(
                description=f"{kind.estimator} does not take {', '.join(unknown)}",
                allow_retries=False,
            )
        with fitting_threads([kind]) as threads:
            model = build_pipeline(spec, chosen["kind"], chosen["params"]).fit(rows, target)
            train_metrics = evaluate(spec, model, train)
        return dg.Output(
            model,
            metadata={
                "model_kind": dg.MetadataValue.text(chosen["kind"]),
                "estimator": dg.MetadataValue.text(type(estimator_of(spec, model)).__name__),
                "config": dg.MetadataValue.json(config.model_dump()),
                "chosen": dg.MetadataValue.json(chosen),
                **searched,
                "training_rows": dg.MetadataValue.int(len(train)),
                "threads": dg.MetadataValue.int(threads),
                "data_fingerprint": dg.MetadataValue.text(data_fingerprint(features)),
                **float_metadata("train", train_metrics),
            },
        )

    @dg.asset(
        key=asset_key(spec, "model_metrics"),
        code_version=code_version(spec, "model_metrics"),
        group_name=spec.name,
        ins={
            "candidate_model": dg.AssetIn(asset_key(spec, "candidate_model")),
            "features": dg.AssetIn(asset_key(spec, "features")),
        },
        io_manager_key="json_io_manager",
        retry_policy=FILE_SYSTEM_RETRY,
        pool="training",  # scoring and importance use the estimators' threads too
        kinds={"scikitlearn"},
    )
    def model_metrics(
        context: dg.AssetExecutionContext,
        candidate_model,
        features,
        registry: ModelRegistry,
        mlflow: MlflowMirror,
    ) -> dg.Output[dict]:
        """Holdout metrics of the candidate, of the production model and of a constant answer,
        on the same rows, with the bootstrap intervals the gate decides on."""
        versions = registry.for_model(spec.name)
        train = features[features["split"] == TRAIN]
        holdout = features[features["split"] == HOLDOUT]
        trusted = reference_holdout(features)
        production = versions.production()
        rows, target = model_input(spec, trusted), trusted[spec.target]
        with fitting_threads():
            champion, champion_model = production_answers_on(spec, versions, production, trusted)
            outputs = {
                "candidate": spec.task.outputs(candidate_model, rows),
                "production": None if champion is None else champion.outputs,
                "baseline": spec.task.outputs(constant_answer(spec, train), rows),
            }
            everything = {
                "rows": len(holdout),
                "candidate": evaluate(spec, candidate_model, holdout),
                "production": None,  # on every holdout row: only where it is rescored alike
            }
            if champion is not None and champion.how == RESCORED:
                inputs = version_inputs(production.card)
                everything["production"] = spec.task.evaluate(
                    champion_model,
                    model_input(spec, holdout, inputs),
                    holdout[spec.target],
                )
            importances = permutation_importances(spec, candidate_model, trusted)
        gate = {
            name: None if answers is None else spec.task.scores(target, answers)
            for name, answers in outputs.items()
        }
        value = {
            "candidate": gate["candidate"],
            "production": gate["production"],
            "baseline": gate["baseline"],
            "production_version": production.version if production else None,
            "production_compared": None if champion is None else champion.said,
            "holdout_rows": len(trusted),
            "statistics": measure(spec, target, outputs, gate),
            "importance": importances.features,
            "importance_metric": spec.gate.metric.name,
            "importance_measured_on": importances.measured_on,
            "all_holdout": everything,
            "training_rows": len(train),
            "data_fingerprint": data_fingerprint(features),
            # production_model checks it deploys the very model measured here.
            "candidate_fingerprint": prediction_fingerprint(spec, candidate_model, trusted),
        }
        metric, statistics = spec.gate.metric, value["statistics"]
        champion_value = gate["production"][metric.name] if gate["production"] else None
        context.log.info(
            f"reference holdout ({len(trusted)} rows): candidate {metric.label}"
            f" {metric.shown(gate['candidate'][metric.name])}, production"
            f" {production.version if production else 'none'} {metric.label}"
            f" {'none' if champion_value is None else metric.shown(champion_value)}"
            f"{'' if champion is None else f' ({champion.said})'}, constant"
            f" answer {metric.label} {metric.shown(gate['baseline'][metric.name])}"
        )
        metadata = {
            **float_metadata("candidate", gate["candidate"]),
            **interval_metadata(statistics["candidate"][metric.name], f"candidate_{metric.name}_"),
            **float_metadata("baseline", gate["baseline"]),
            "metrics": dg.MetadataValue.md(metrics_table(spec.task.metrics, card_metrics(value))),
            "feature_importance": dg.MetadataValue.md(
                importance_markdown(value["importance"], metric, importances.measured_on)
            ),
            "holdout_rows": dg.MetadataValue.text(f"{len(trusted)} reference rows"),
            "all_holdout_rows": dg.MetadataValue.int(everything["rows"]),
            **float_metadata(
                "candidate_all_holdout", {metric.name: everything["candidate"][metric.name]}
            ),
            "training_rows": dg.MetadataValue.int(value["training_rows"]),
            "production_version": dg.MetadataValue.text(value["production_version"] or "none"),
        }
        if gate["production"] is not None:
            metadata.update(float_metadata("production", gate["production"]))
        if everything["production"] is not None:
            metadata.update(
                float_metadata(
                    "production_all_holdout", {metric.name: everything["production"][metric.name]}
                )
            )
        if champion is not None:
            metadata["production_compared"] = dg.MetadataValue.text(champion.said)
        value["mlflow_run_id"] = mirror_candidate(context, spec, mlflow, value, candidate_model)
        if value["mlflow_run_id"] is not None:
            metadata["mlflow_run_id"] = dg.MetadataValue.text(value["mlflow_run_id"])
        return dg.Output(value, metadata=metadata)

    return [dataset, features, candidate_model, model_metrics]
