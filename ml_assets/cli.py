"""`ml-assets`: the declared models; land simulated batches, inspect and roll back model
versions, predict, and start a model from a file.

Every command but `list`, `serve` and `new-model` takes the model: `ml-assets <command> --model NAME`.
With one model declared it may be left out.
"""

import argparse
import io
import os
import sys
import warnings
from pathlib import Path

import dagster as dg

from ml_assets.declare.errors import InvalidModelFile
from ml_assets.declare.load_checks import DeclarationWarning
from ml_assets.declare.project import declared_models, watch_defs, write_model_declaration
from ml_assets.declare.scaffold import ScaffoldError
from ml_assets.learn.champion import differs, unlike, version_inputs
from ml_assets.learn.contract import ContractViolation, validate_features
from ml_assets.learn.modeling import model_input
from ml_assets.learn.reference import load_reference_table
from ml_assets.learn.simulate import batch_file_name, simulate_batch
from ml_assets.learn.spec import ModelSpec
from ml_assets.pipeline.decisions import last_decision, measured_baseline
from ml_assets.pipeline.live_performance import live_status
from ml_assets.pipeline.tracking import mirror_rollback, sync_registry
from ml_assets.pipeline.versions import staleness
from ml_assets.serve.follower import DEFAULT_POLL_SECONDS
from ml_assets.serve.schema import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ROWS
from ml_assets.store.files import strict_json, write_atomically
from ml_assets.store.landing import LANDED_FILES, LandingZone
from ml_assets.store.mlflow_mirror import MirrorFailed, MlflowMirror
from ml_assets.store.registry import ModelRegistry, ModelVersion, RegistryError
from ml_assets.store.served import ServedRecords
from ml_assets.store.tables import UnreadableFile, read_table


class UsageError(ValueError):
    """A command asked for something that is not there; the message says what is."""


def chosen_model(name: str | None) -> ModelSpec:
    """The model a command is about: the one named, or the only one declared."""
    models = declared_models()
    if name is None:
        if len(models) == 1:
            return next(iter(models.values()))
        raise UsageError(
            f"{len(models)} models are declared; choose one with --model: {', '.join(models)}"
            if models
            else "no model is declared in ml_assets/defs/ (see `ml-assets new-model`)"
        )
    if name not in models:
        raise UsageError(f"no model named {name!r}; the models are: {', '.join(models)}")
    return models[name]


def simulate_batch_command(args: argparse.Namespace) -> int:
    """Write a simulated batch into the model's landing/ atomically and print its path."""
    spec = chosen_model(args.model)
    batch = simulate_batch(spec, load_reference_table(spec), rows=args.rows, seed=args.seed)
    landing = LandingZone(data_dir=args.data_dir).for_model(spec.name)
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


def version_summary(spec: ModelSpec, version: ModelVersion) -> dict:
    """The facts people ask about a model version, JSON-ready."""
    choice = version.card.get("model_choice") or {}  # the kind and params it was trained with
    return {
        "version": version.version,
        "created_at": version.card.get("created_at"),
        "estimator": version.card.get("estimator"),
        "kind": choice.get("kind"),
        "params": choice.get("params"),
        "training_rows": version.card.get("training_rows"),
        "decision_threshold": version.card.get("decision_threshold"),
        "metrics": {
            name: None if version.metrics.get(name) is None else float(version.metrics[name])
            for name in spec.task.metrics
            if name in version.metrics
        },
    }


def dagster_home() -> Path | None:
    """The Dagster instance folder: $DAGSTER_HOME, else ./.dagster_home; None if absent."""
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home")
    return home.resolve() if home.is_dir() else None


def status_report(spec: ModelSpec, data_dir: str | None) -> dict:
    """The production model, the one before it, the constant answer's metrics, the gate's last
    decision and the file ledger, as a JSON-ready dict.

    With a Dagster instance at hand the ledger is checked against the files Dagster
    registered: `lost` names any that is neither pending, archived nor quarantined; and the
    decision, the baseline and whether the model is stale (what changed since the last
    candidate was trained) come from the latest materializations, and so does `live`: each
    version that answered, newest first, its rows served and labelled and its live metrics
    against its own at promotion. Without one, the baseline is the one production beat, and
    staleness and live are unknown (None).
    """
    versions = ModelRegistry(data_dir=data_dir).for_model(spec.name)
    production, previous = versions.production(), versions.previous()
    registered, decision, baseline, stale, live = None, None, None, None, None
    home = dagster_home()
    if home is not None:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            registered = set(instance.get_dynamic_partitions(spec.named(LANDED_FILES)))
            decision = last_decision(spec, instance)
            baseline = measured_baseline(spec, instance)
            state = staleness(spec, instance)
            stale = {"stale": state["stale"], "reasons": state["reasons"]}
            live = live_status(instance, spec, ServedRecords(data_dir=data_dir))
    if baseline is None and production is not None:
        baseline = production.card.get("baseline_metrics")
    ledger = LandingZone(data_dir=data_dir).for_model(spec.name).ledger(registered)
    return {
        "model": spec.name,
        "task": spec.task.name,
        "production": None if production is None else version_summary(spec, production),
        "previous": None if previous is None else previous.version,
        "baseline": baseline,
        "last_decision": decision,
        "stale": stale,
        "live": live,
        "files": ledger.as_dict(),
    }


def status_command(args: argparse.Namespace) -> int:
    """Print the production model and the file ledger."""
    spec = chosen_model(args.model)
    report = status_report(spec, args.data_dir)
    if args.json:
        print(strict_json(report))
        return 0
    production = report["production"]
    if production is None:
        print(
            f"{spec.name}: no production model yet (run `make materialize MODEL={spec.name}`"
            " or materialize in the UI)"
        )
    else:
        print(f"{spec.name} in production: {production['version']} ({production['estimator']})")
        print(f"  created {production['created_at']}, {production['training_rows']} training rows")
        print("  holdout " + _metrics_line(spec, production["metrics"]))
        print(f"  previous: {report['previous'] or 'none'}")
    stale = report["stale"]
    if stale is not None and stale["stale"]:
        print("stale: retraining would see what changed: " + "; ".join(stale["reasons"]))
    elif stale is not None:
        print("up to date: nothing changed since the last candidate was trained")
    for entry in report["live"] or []:
        print(_live_line(spec, entry))
    files = report["files"]
    print(
        f"files: {files['landed']} landed = {files['archived']} archived"
        f" + {files['quarantined']} quarantined + {files['pending']} pending"
    )
    if files.get("lost"):
        print(f"LOST: registered but nowhere: {files['lost']}")
        return 1
    return 0


def _live_line(spec: ModelSpec, entry: dict) -> str:
    """`live 2026…: 442 served, 300 labelled: live MSE is … than at promotion, …`."""
    counts = (
        f"live {entry['version']}: {entry['served_rows']} served, {entry['labelled_rows']} labelled"
    )
    return f"{counts}{' DEGRADED' if entry['degraded'] else ''}: {entry['said']}"


def _metrics_line(spec: ModelSpec, metrics: dict) -> str:
    return "  ".join(
        f"{metric.label} {metric.shown(metrics[name])}"
        for name, metric in spec.task.metrics.items()
        if metrics.get(name) is not None
    )


def models_command(args: argparse.Namespace) -> int:
    """List the registered versions, newest first, with their metrics and aliases."""
    spec = chosen_model(args.model)
    versions = ModelRegistry(data_dir=args.data_dir).for_model(spec.name)
    production, previous = versions.production(), versions.previous()
    ever = versions.ever_in_production()
    rows = [
        {
            **version_summary(spec, version),
            "production": production is not None and version.version == production.version,
            "previous": previous is not None and version.version == previous.version,
            "ever_in_production": version.version in ever,
        }
        for version in reversed(versions.versions())
    ]
    if args.json:
        print(strict_json(rows))
        return 0
    if not rows:
        print(f"{spec.name}: no model versions yet")
    metric = spec.gate.metric
    for row in rows:
        marks = [name for name in ("production", "previous") if row[name]]
        alias = f"  [{', '.join(marks)}]" if marks else ""
        value = row["metrics"].get(metric.name)
        shown = "" if value is None else metric.shown(value)
        print(
            f"{row['version']}  {row['estimator']:<26} {metric.label} {shown:>9}"
            f"  {row['created_at']}{alias}"
        )
    return 0


def rollback_command(args: argparse.Namespace) -> int:
    """Put a version back in production (default: the previous one) and record it in Dagster."""
    spec = chosen_model(args.model)
    versions = ModelRegistry(data_dir=args.data_dir).for_model(spec.name)
    switch = versions.rollback(args.version)
    print(f"{spec.name} production: {switch.from_version} -> {switch.to_version}")
    said = mirror_rollback(spec, MlflowMirror(), switch.to_version)
    if said is not None:
        print(said)
    home = dagster_home()
    if home is None:
        print(
            "warning: no Dagster instance ($DAGSTER_HOME, else ./.dagster_home): the rollback"
            f" is done but not recorded in the UI's history of {spec.name}/production_model",
            file=sys.stderr,
        )
        return 0
    from ml_assets.pipeline.deployment import rollback_materialization

    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.report_runless_asset_event(rollback_materialization(spec, versions, switch))
    print(f"recorded as a materialization of {spec.name}/production_model in {home}")
    return 0


def mlflow_sync_command(args: argparse.Namespace) -> int:
    """Register in MLflow what it missed (nothing twice), and point champion at production."""
    spec = chosen_model(args.model)
    versions = ModelRegistry(data_dir=args.data_dir).for_model(spec.name)
    try:
        done = sync_registry(spec, MlflowMirror(), versions)
    except MirrorFailed as error:
        print(f"error: MLflow: {error}", file=sys.stderr)
        return 1
    print("\n".join(done) or f"MLflow already holds every production version of {spec.name}")
    return 0


def predict_command(args: argparse.Namespace) -> int:
    """Score a CSV or Parquet file with the production model (or --version)."""
    spec = chosen_model(args.model)
    source = Path(args.input)
    table, _ = read_table(source, columns=spec.column_names)
    features = validate_features(spec, table, source=str(source))
    versions = ModelRegistry(data_dir=args.data_dir).for_model(spec.name)
    version = versions.get(args.version) if args.version else versions.production()
    if version is None:
        raise RegistryError(
            f"nothing of {spec.name} is in production yet; name a version with --version"
        )
    model = versions.load(version.version)
    inputs = version_inputs(version.card) if differs(spec, version.card) else None
    # What the version takes that the declaration does not give: from the file if it has it.
    taken = [name for name in unlike(spec, inputs) if name in table.columns]
    missing = [name for name in unlike(spec, inputs) if name not in table.columns]
    if missing:
        print(
            f"warning: version {version.version} takes {', '.join(missing)}, which neither"
            f" the declaration nor {source.name} has: given as missing (imputed)",
            file=sys.stderr,
        )
    rows = features.drop(columns=taken, errors="ignore").join(table.reset_index(drop=True)[taken])
    predicted = spec.task.predict(model, model_input(spec, rows, inputs))
    scored = table.reset_index(drop=True).drop(columns=list(predicted), errors="ignore")
    scored = scored.join(predicted.reset_index(drop=True))
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


def list_command(args: argparse.Namespace) -> int:
    """The declared models: name, task, target, gate and production version."""
    registry = ModelRegistry(data_dir=args.data_dir)
    rows = []
    for spec in declared_models().values():
        production = registry.for_model(spec.name).production()
        metric = spec.gate.metric
        rows.append(
            {
                "name": spec.name,
                "task": spec.task.name,
                "target": spec.target,
                "kind": spec.kind.name,
                "gate": f"{metric.name} {'>' if metric.higher_is_better else '<'}"
                f" {spec.gate.threshold:g}",
                "production": production.version if production else None,
                "declared_in": str(spec.declared_in),
            }
        )
    if args.json:
        print(strict_json(rows))
        return 0
    if args.names:
        print("\n".join(row["name"] for row in rows))
        return 0
    for row in rows:
        print(
            f"{row['name']:<20} {row['task']:<15} target {row['target']!r}, {row['kind']},"
            f" gate {row['gate']}, production {row['production'] or 'none'}"
        )
    return 0


def new_model_command(args: argparse.Namespace) -> int:
    """Write ml_assets/defs/NAME/defs.yaml with a contract inferred from a file."""
    path, said = write_model_declaration(
        args.name, Path(args.source), args.target, task=args.task, force=args.force
    )
    for line in said:
        print(f"warning: {line}", file=sys.stderr)
    print(path)
    return 0


def watch_defs_command(args: argparse.Namespace) -> int:
    """Reload the code location of a running `dagster dev` when a model's YAML changes."""
    try:
        watch_defs(args.host, args.port, args.location)
    except KeyboardInterrupt:
        pass
    return 0


def served_models(names: list[str] | None) -> dict[str, ModelSpec]:
    """The models `serve` is asked for: those named, else every declared one."""
    models = declared_models()
    unknown = [name for name in names or () if name not in models]
    if unknown:
        raise UsageError(
            f"no model named {', '.join(map(repr, unknown))}; the models are: {', '.join(models)}"
        )
    return {name: models[name] for name in names} if names else models


def serve_command(args: argparse.Namespace) -> int:
    """Serve the production version of the chosen models (default: all) until interrupted."""
    import logging

    import uvicorn

    from ml_assets.serve.app import ServiceSettings, create_app

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = ServiceSettings(
        data_dir=args.data_dir,
        max_rows=args.max_rows,
        max_body_bytes=args.max_body_bytes,
        poll_seconds=args.poll_seconds,
        record=args.record,
    )
    app = create_app(served_models(args.models), settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=args.access_log)
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

    def command(name: str, handler, help: str, model: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help)
        if model:
            sub.add_argument("--model", help="the model's name (may be left out if only one)")
        sub.set_defaults(handler=handler)
        return sub

    listing = command("list", list_command, "the declared models", model=False)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("--names", action="store_true", help="the names only, one per line")

    simulate = command("simulate-batch", simulate_batch_command, "land a simulated batch")
    simulate.add_argument("--rows", type=_positive, default=100, help="rows in the batch")
    simulate.add_argument("--seed", type=int, default=None, help="seed for a repeatable batch")
    simulate.add_argument("--format", choices=("csv", "parquet"), default="csv")

    status = command("status", status_command, "the production model and the file ledger")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    models = command("models", models_command, "the registered model versions")
    models.add_argument("--json", action="store_true", help="machine-readable output")

    rollback = command("rollback", rollback_command, "put a model version back in production")
    rollback.add_argument("version", nargs="?", help="default: the previous production version")

    command(
        "mlflow-sync",
        mlflow_sync_command,
        "register in MLflow the production versions a failing server missed; point champion",
    )

    predict = command("predict", predict_command, "score a CSV or Parquet file")
    predict.add_argument("input", help="CSV or Parquet with the contract's feature columns")
    predict.add_argument("--output", help=".csv or .parquet (default: CSV on stdout)")
    predict.add_argument("--version", help="a registered version (default: production)")

    serve = command("serve", serve_command, "the HTTP prediction service", model=False)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    serve.add_argument("--port", type=_positive, default=8000)
    serve.add_argument(
        "--max-rows", type=_positive, default=DEFAULT_MAX_ROWS, help="rows a request may hold"
    )
    serve.add_argument(
        "--max-body-bytes", type=_positive, default=DEFAULT_MAX_BODY_BYTES, help="body size limit"
    )
    serve.add_argument(
        "--poll-seconds",
        type=float,
        default=DEFAULT_POLL_SECONDS,
        help="how often each model's production alias is read",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--no-record",
        dest="record",
        action="store_false",
        help="record no prediction (default: each model's `monitoring.record`, true unless said)",
    )
    serve.add_argument(
        "--model",
        dest="models",
        action="append",
        metavar="NAME",
        help="serve this model (repeatable; default: every declared one)",
    )

    watcher = command(
        "watch-defs",
        watch_defs_command,
        "reload a running dagster dev when a model's YAML changes (make dev runs it)",
        model=False,
    )
    watcher.add_argument("--host", default="127.0.0.1", help="dagster dev's address")
    watcher.add_argument("--port", type=_positive, default=3000, help="dagster dev's port")
    watcher.add_argument("--location", default="ml_assets", help="the code location to reload")

    new = command("new-model", new_model_command, "start a model from a table", model=False)
    new.add_argument("name", help="the model's name: lower-case letters, digits and _")
    new.add_argument("--from", dest="source", required=True, help="a CSV or Parquet table")
    new.add_argument("--target", required=True, help="the column to predict")
    new.add_argument(
        "--task", choices=("regression", "classification"), help="default: from the target"
    )
    new.add_argument("--force", action="store_true", help="replace an existing defs.yaml")
    return parser


def _said_plainly(show):
    """Warnings shown as before, but a declaration's as one `warning: ...` line (what a
    model's YAML loads with), not Python's file-and-line form."""

    def shown(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DeclarationWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return shown


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():  # Dagster's beta and preview notices are for developers
            warnings.simplefilter("ignore", dg.BetaWarning)
            warnings.simplefilter("ignore", dg.PreviewWarning)
            warnings.showwarning = _said_plainly(warnings.showwarning)
            return args.handler(args)
    except (
        ContractViolation,
        RegistryError,
        UnreadableFile,
        FileNotFoundError,
        UsageError,
        InvalidModelFile,
        ScaffoldError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
