"""The project a command is about: where it is, the models its defs folder declares, a new
model's YAML written into it (`ml-assets new-model`), and its defs folder watched while
`make dev` runs (`ml-assets watch-defs`)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import dagster as dg
from pydantic import ValidationError

from ml_assets.declare.component import (
    TabularModel,
    refuse_a_second_declaration,
    scaffolded_yaml,
)
from ml_assets.declare.errors import InvalidModelFile
from ml_assets.declare.load_checks import DeclarationWarning
from ml_assets.declare.scaffold import ScaffoldError
from ml_assets.learn.spec import ModelSpec


def project_root(start: Path | None = None) -> Path:
    """The dg project a command is about: the nearest above `start` (the working directory)
    whose pyproject.toml has a [tool.dg] table, else ml_assets' own."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        config = folder / "pyproject.toml"
        if config.is_file() and "[tool.dg" in config.read_text(encoding="utf-8"):
            return folder
    return Path(__file__).resolve().parents[2]


def model_tree(root: Path | None = None) -> dg.ComponentTree:
    """The component tree of a project (default: `project_root()`), its package importable."""
    root = root or project_root()
    if str(root) not in sys.path:  # a team's project run from its folder, not installed
        sys.path.insert(0, str(root))
    return dg.ComponentTree.for_project(root)


def declared_models(root: Path | None = None) -> dict[str, ModelSpec]:
    """The models a project's defs folder declares, by name, each checked as at load."""
    tree = model_tree(root)
    try:
        components = tree.get_all_components(of_type=TabularModel)
    except Exception as error:  # Dagster wraps the file's error in its tree's: say the file's
        cause = error
        while cause is not None and not isinstance(cause, InvalidModelFile | ValidationError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise InvalidModelFile(str(cause)) from None
    for component in components:
        refuse_a_second_declaration(component.spec, components)
    return {component.spec.name: component.spec for component in components}


def write_model_declaration(
    name: str,
    source: Path,
    target: str,
    task: str | None = None,
    force: bool = False,
    root: Path | None = None,
) -> tuple[Path, list[str]]:
    """Write <defs folder>/<name>/defs.yaml in the project, then load the project as the
    definitions would; what does not load yet is kept, and the error says what to change.
    Returns the file and what loading it warned about (also written at the top of the file)."""
    root = root or project_root()
    path = model_tree(root).defs_module_path / name / "defs.yaml"
    if path.exists() and not force:
        raise ScaffoldError(f"{path} exists; pass --force to replace it")
    text = scaffolded_yaml(name, source, target, task, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DeclarationWarning)
            declared_models(root)
    except InvalidModelFile as error:
        raise ScaffoldError(
            f"{path} is written, but does not load yet:\n{error}\nChange what it says in the"
            " file, then `dg check defs` (or start again with --force)"
        ) from None
    said = [
        str(warning.message).removeprefix(f"{path}: ")
        for warning in caught
        if issubclass(warning.category, DeclarationWarning)
        and str(warning.message).startswith(f"{path}: ")
    ]
    if said:
        header = "".join(f"# Warning when loaded: {line}\n" for line in said)
        path.write_text(header + text, encoding="utf-8")  # comments: the declaration is the same
    return path, said


def watch_defs(host: str, port: int, location: str, root: Path | None = None) -> None:
    """Reload a running `dagster dev`'s code location whenever a YAML file in the project's
    defs folder is added, changed or removed, until interrupted; each reload is said on
    stderr. Dagster itself reloads only when asked (the UI's Reload button)."""
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
    from watchfiles import watch

    folder = model_tree(root).defs_module_path.resolve()
    client = DagsterGraphQLClient(host, port_number=port)

    def model_of(path: str) -> str:
        """The model folder a changed path is, or is in."""
        changed = Path(path).resolve()
        return changed.name if changed.parent == folder else changed.parent.name

    def a_model(_, path: str) -> bool:
        """A YAML file, or a model's folder added or removed: a file written at once into a
        new folder can come before the folder is watched, and its event be missed."""
        if path.endswith((".yaml", ".yml")):
            return True
        changed = Path(path).resolve()
        return changed.parent == folder and not changed.name.startswith(("_", "."))

    watching = watch(
        folder,
        watch_filter=a_model,
        rust_timeout=1000,
        yield_on_timeout=True,  # an empty first yield: the watch has begun
    )
    ready = False
    for changes in watching:
        if not ready:
            print(f"watching {folder}: a changed model YAML reloads {location}", file=sys.stderr)
            ready = True
        if not changes:
            continue
        changed = ", ".join(sorted({model_of(path) for _, path in changes}))
        try:
            info = client.reload_repository_location(location)
        except DagsterGraphQLClientError as error:
            print(f"{changed} changed; reloading {location} failed: {error}", file=sys.stderr)
            continue
        said = info.status.value.lower()
        if info.message:
            said += f": {info.message}"
        print(f"{changed} changed; {location} reloaded ({said})", file=sys.stderr)
