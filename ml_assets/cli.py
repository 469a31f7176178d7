"""`ml-assets`: land simulated batches, inspect and roll back model versions, predict."""

import argparse
import io
import json
import os
import sys
import warnings
from pathlib import Path

import dagster as dg

from ml_assets.contract import ContractViolation, load_reference_table, validate_features
from ml_assets.files import write_atomically
from ml_assets.landing import LANDED_FILES, LandingZone
from ml_assets.registry import ModelRegistry, ModelVersion, RegistryError
from ml_assets.simulate import batch_file_name, simulate_batch
from ml_assets.tables import UnreadableFile, read_table


def simulate_batch_command(args: argparse.Namespace) -> int:
    """Write a simulated batch into landing/ atomically and print its path."""
    batch = simulate_batch(load_reference_table(), rows=args.rows, seed=args.seed)
    landing = LandingZone(data_dir=args.data_dir)
    path = landing.landing / batch_file_name(args.seed, suffix=f".{args.format}")
    if args.format == "csv":
        data = batch.to_csv(index=False).encode("utf-8")
    else:
        buffer = io.BytesIO()
        batch.to_parquet(buffer, engine="pyarrow", index=False)
        data = buffer.getvalue()
    write_atomically(path, data)  # the sensor never sees a half-written file
    print(path)
    return 0


def version_summary(version: ModelVersion) -> dict:
    """The facts people ask about a model version, JSON-ready."""
    return {
        "version": version.version,
        "created_at": version.card.get("created_at"),
        "estimator": version.card.get("estimator"),
        "training_rows": version.card.get("training_rows"),
        "metrics": {k: float(version.metrics[k]) for k in ("mse", "rmse", "mae", "r2")},
    }


def dagster_home() -> Path | None:
    """The Dagster instance folder: $DAGSTER_HOME, else ./.dagster_home; None if absent."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home")
    return home.resolve() if home.is_dir() else None


def registered_files() -> set[str] | None:
    """The landed files Dagster knows (raw_batches partitions), when an instance is here."""
    home = dagster_home()
    if home is None:
        return None
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return set(instance.get_dynamic_partitions(LANDED_FILES))


def status_report(data_dir: str | None) -> dict:
    """The production model, the one before it and the file ledger, as a JSON-ready dict.

    With a Dagster instance at hand the ledger is checked against the files Dagster
    registered: `lost` names any that is neither pending, archived nor quarantined.
    """
    registry = ModelRegistry(data_dir=data_dir)
    production, previous = registry.production(), registry.previous()
    ledger = LandingZone(data_dir=data_dir).ledger(registered_files())
    return {
        "production": None if production is None else version_summary(production),
        "previous": None if previous is None else previous.version,
        "files": ledger.as_dict(),
    }


def status_command(args: argparse.Namespace) -> int:
    """Print the production model and the file ledger."""
    report = status_report(args.data_dir)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    production = report["production"]
    if production is None:
        print("production model: none yet (run `make materialize` or materialize in the UI)")
    else:
        metrics = production["metrics"]
        print(f"production model: {production['version']} ({production['estimator']})")
        print(f"  created {production['created_at']}, {production['training_rows']} training rows")
        print(
            f"  holdout MSE {metrics['mse']:.2f}  RMSE {metrics['rmse']:.2f}"
            f"  MAE {metrics['mae']:.2f}  R² {metrics['r2']:.4f}"
        )
        print(f"  previous: {report['previous'] or 'none'}")
    files = report["files"]
    print(
        f"files: {files['landed']} landed = {files['archived']} archived"
        f" + {files['quarantined']} quarantined + {files['pending']} pending"
    )
    if files.get("lost"):
        print(f"LOST: registered but nowhere: {files['lost']}")
        return 1
    return 0


def models_command(args: argparse.Namespace) -> int:
    """List the registered versions, newest first, with their metrics and aliases."""
    registry = ModelRegistry(data_dir=args.data_dir)
    production, previous = registry.production(), registry.previous()
    ever = registry.ever_in_production()
    rows = [
        {
            **version_summary(version),
            "production": production is not None and version.version == production.version,
            "previous": previous is not None and version.version == previous.version,
            "ever_in_production": version.version in ever,
        }
        for version in reversed(registry.versions())
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no model versions yet")
    for row in rows:
        marks = [name for name in ("production", "previous") if row[name]]
        alias = f"  [{', '.join(marks)}]" if marks else ""
        print(
            f"{row['version']}  {row['estimator']:<26} MSE {row['metrics']['mse']:9.2f}"
            f"  R² {row['metrics']['r2']:.4f}  {row['created_at']}{alias}"
        )
    return 0


def rollback_command(args: argparse.Namespace) -> int:
    """Put a version back in production (default: the previous one) and record it in Dagster."""
    registry = ModelRegistry(data_dir=args.data_dir)
    switch = registry.rollback(args.version)
    print(f"production: {switch.from_version} -> {switch.to_version}")
    home = dagster_home()
    if home is None:
        print(
            "warning: no Dagster instance ($DAGSTER_HOME, else ./.dagster_home): the rollback"
            " is done but not recorded in the UI's history of production_model",
            file=sys.stderr,
        )
        return 0
    with warnings.catch_warnings():  # Dagster's preview notices are for developers
        warnings.simplefilter("ignore", dg.PreviewWarning)
        from ml_assets.assets.deployment import rollback_materialization

    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.report_runless_asset_event(rollback_materialization(registry, switch))
    print(f"recorded as a materialization of production_model in {home}")
    return 0


def predict_command(args: argparse.Namespace) -> int:
    """Score a CSV or Parquet file with the production model (or --version)."""
    source = Path(args.input)
    table, _ = read_table(source)
    features = validate_features(table, source=str(source))
    registry = ModelRegistry(data_dir=args.data_dir)
    version = registry.get(args.version) if args.version else registry.production()
    if version is None:
        raise RegistryError("nothing is in production yet; name a version with --version")
    scored = table.reset_index(drop=True).assign(
        prediction=registry.load(version.version).predict(features)
    )
    if args.output is None:
        scored.to_csv(sys.stdout, index=False)
        return 0
    output = Path(args.output)
    if output.suffix.lower() in (".parquet", ".pq"):
        data = scored.to_parquet(engine="pyarrow", index=False)
    elif output.suffix.lower() == ".csv":
        data = scored.to_csv(index=False).encode("utf-8")
    else:
        raise UnreadableFile(f"{output}: write .csv or .parquet")
    write_atomically(output, data)
    print(f"{len(scored)} predictions by {version.version} written to {output}", file=sys.stderr)
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ml-assets", description=__doc__)
    parser.add_argument(
        "--data-dir", help="data folder (default: $ML_ASSETS_DATA_DIR, else ./data)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser("simulate-batch", help="land a simulated batch of new rows")
    simulate.add_argument("--rows", type=_positive, default=100, help="rows in the batch")
    simulate.add_argument("--seed", type=int, default=None, help="seed for a repeatable batch")
    simulate.add_argument("--format", choices=("csv", "parquet"), default="csv")
    simulate.set_defaults(handler=simulate_batch_command)

    status = commands.add_parser("status", help="the production model and the file ledger")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=status_command)

    models = commands.add_parser("models", help="the registered model versions")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(handler=models_command)

    rollback = commands.add_parser("rollback", help="put a model version back in production")
    rollback.add_argument("version", nargs="?", help="default: the previous production version")
    rollback.set_defaults(handler=rollback_command)

    predict = commands.add_parser("predict", help="score a CSV or Parquet file")
    predict.add_argument("input", help="CSV or Parquet with the contract's feature columns")
    predict.add_argument("--output", help=".csv or .parquet (default: CSV on stdout)")
    predict.add_argument("--version", help="a registered version (default: production)")
    predict.set_defaults(handler=predict_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ContractViolation, RegistryError, UnreadableFile, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
