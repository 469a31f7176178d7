"""What loading a model's YAML checks against its data and scikit-learn, and remembers.

The reference table must pass its own contract and allow its split; a classification takes
its classes from it when the YAML names none; the estimator must take the declared
parameters, and is fitted once on a hundred training rows drawn at random (every class
among them, whatever the file's order) so that scikit-learn judges their values too; what a
data scientist would question (a threshold a constant answer passes, a feature that alone
predicts the target, an identifier taken for a feature: `learn/sanity.py`) is measured and
warned about. That needs pandas, pandera and scikit-learn (seconds of imports), so it is done
once per change of the YAML, the reference file or those libraries: the result is kept in
`<data dir>/<name>/checked.json`, and a load that finds it up to date reads only that file.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import warnings
from importlib import metadata

from ml_assets.declare.errors import DeclarationError
from ml_assets.learn.spec import ModelSpec
from ml_assets.store import settings
from ml_assets.store.files import strict_json, write_atomically

CHECKED_FILE = "checked.json"
CHECKS_VERSION = 5  # bump when what is checked here changes
FIT_ROWS = 100  # training rows, drawn at random, the estimator is fitted on at load
LIBRARIES = ("scikit-learn", "pandas", "pandera", "pyarrow")

_memory: dict[str, dict] = {}


def checked_against_data(draft: ModelSpec, declaration: dict) -> ModelSpec:
    """The spec with its classes, once the checks passed now or for the same inputs before."""
    key = _key(draft, declaration)
    facts = _memory.get(key) or _remembered(draft.name, key)
    if facts is None:
        facts = _check(draft)
        _remember(draft.name, key, facts)
    _memory[key] = facts
    spec = dataclasses.replace(
        _with_classes(draft, tuple(facts["classes"])),
        baseline_score=facts["baseline_score"],
        data_warnings=tuple(facts["data_warnings"]),
    )
    threshold = spec.threshold_warning(spec.gate.threshold)
    for said in (*spec.data_warnings, *([f"gate.threshold: {threshold}"] if threshold else [])):
        _warn(f"{spec.declared_in}: {said}")
    return spec


def _warn(message: str) -> None:
    """A DeclarationWarning; also on Dagster's logger where Python's warnings go to logging.

    Dagster's commands and code servers (`dg check defs`, `dagster dev`) route warnings into
    logging (`logging.captureWarnings`), to a logger that drops them: there the warning is
    logged as Dagster logs its own, so that it is seen.
    """
    warnings.warn(message, DeclarationWarning, stacklevel=3)
    if getattr(warnings.showwarning, "__module__", None) == "logging":
        logging.getLogger("dagster").warning(f"DeclarationWarning: {message}")


class DeclarationWarning(UserWarning):
    """A declaration that loads but that a data scientist would question."""


def _with_classes(draft: ModelSpec, classes: tuple[str, ...]) -> ModelSpec:
    if classes == draft.classes:
        return draft
    return dataclasses.replace(draft, task=type(draft.task)(classes))


@functools.cache
def _library_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in LIBRARIES}


def _key(draft: ModelSpec, declaration: dict) -> str:
    reference = draft.reference
    if reference.path is not None:
        status = reference.path.stat()
        source = [str(reference.path), status.st_size, status.st_mtime_ns]
    else:
        source = [reference.sklearn]
    document = {
        "declaration": declaration,
        "source": source,
        "libraries": _library_versions(),
        "checks": CHECKS_VERSION,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def _checked_path(name: str):
    return settings.model_dir(name) / CHECKED_FILE


def _remembered(name: str, key: str) -> dict | None:
    try:
        document = json.loads(_checked_path(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document.get("facts") if document.get("key") == key else None


def _remember(name: str, key: str, facts: dict) -> None:
    path = _checked_path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, strict_json({"key": key, "facts": facts}).encode())
    except OSError:
        pass  # a read-only data folder: the checks run again at the next load


def _check(draft: ModelSpec) -> dict:
    """Read the reference, check it and the estimator; the facts later loads need."""
    from ml_assets.learn.contract import ContractViolation
    from ml_assets.learn.reference import load_reference_table
    from ml_assets.learn.sanity import data_warnings
    from ml_assets.learn.threads import fitting_threads
    from ml_assets.store.tables import UnreadableFile

    try:
        table = load_reference_table(draft)
    except UnreadableFile as error:
        raise DeclarationError(("reference", "path"), str(error)) from None
    except ContractViolation as error:
        raise DeclarationError(
            ("reference",), f"the reference table breaks its own contract: {error}"
        ) from None
    classes = draft.classes
    if draft.task.predicts_classes and not classes:
        classes = tuple(sorted(str(label) for label in table[draft.target].dropna().unique()))
    if draft.task.predicts_classes and len(classes) < 2:
        raise DeclarationError(
            ("target",),
            f"the reference table holds {len(classes)} class of {draft.target!r}:"
            " a classifier needs two or more",
        )
    if draft.decision_threshold is not None and len(classes) != 2:
        raise DeclarationError(
            ("model", "decision_threshold"),
            f"applies to two classes; {draft.target!r} has {len(classes)}: {', '.join(classes)}",
        )
    spec = _with_classes(draft, classes)
    training = _training_rows(spec, table)
    with fitting_threads([spec.kind]):
        _check_estimator(spec, training)
        baseline, suspicions = data_warnings(spec, table)
    return {
        "classes": list(classes),
        "rows": len(table),
        "baseline_score": baseline,
        "data_warnings": suspicions,
    }


def _training_rows(spec: ModelSpec, table):
    from ml_assets.learn.splits import TRAIN, reference_split, representative_rows

    try:
        split = reference_split(spec, table)
    except ValueError as error:  # e.g. a class too rare to stratify by
        raise DeclarationError(("reference",), f"the reference split fails: {error}") from None
    return representative_rows(spec, table[split == TRAIN], FIT_ROWS)


def _check_estimator(spec: ModelSpec, training) -> None:
    from ml_assets.learn.modeling import build_pipeline, model_input

    kind = spec.kind
    unknown = kind.unknown_params(spec.params)
    if unknown:
        accepted = ", ".join(kind.estimator_class()().get_params(deep=False))
        raise DeclarationError(
            ("model", "params"),
            f"{kind.estimator} does not take {', '.join(unknown)}; it takes: {accepted}",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence on a hundred rows says nothing
            # A tuned threshold's folds need more rows of each class than a hundred hold.
            build_pipeline(spec, kind.name, spec.params, tune_threshold=False).fit(
                model_input(spec, training), training[spec.target]
            )
    except (ValueError, TypeError) as error:
        rows = f"{len(training)} training rows of the reference (drawn at random, every class)"
        if spec.params:
            raise DeclarationError(
                ("model", "params"),
                f"{kind.estimator} with these parameters cannot be fitted on {rows}: {error}",
            ) from None
        raise DeclarationError(
            ("model", "kind"), f"{kind.estimator} cannot be fitted on {rows}: {error}"
        ) from None
