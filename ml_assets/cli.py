"""`ml-assets`: simulate a batch, and report the production model and the file ledger."""

import argparse
import io
import json
import sys

from ml_assets.contract import load_reference_table
from ml_assets.files import write_atomically
from ml_assets.landing import LandingZone
from ml_assets.registry import ModelRegistry
from ml_assets.simulate import batch_file_name, simulate_batch


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


def status_report(data_dir: str | None) -> dict:
    """The production model and the file ledger, as a JSON-ready dict."""
    production = ModelRegistry(data_dir=data_dir).production()
    ledger = LandingZone(data_dir=data_dir).ledger()
    return {
        "production": None
        if production is None
        else {
            "version": production.version,
            "created_at": production.card.get("created_at"),
            "estimator": production.card.get("estimator"),
            "training_rows": production.card.get("training_rows"),
            "metrics": {k: float(production.metrics[k]) for k in ("mse", "rmse", "mae", "r2")},
        },
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
    files = report["files"]
    print(
        f"files: {files['landed']} landed = {files['archived']} archived"
        f" + {files['quarantined']} quarantined + {files['pending']} pending"
    )
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
