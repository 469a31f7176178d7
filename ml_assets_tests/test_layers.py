"""The layers, read from the code: imports run downwards (declare → pipeline → learn → store,
serve → learn and store), no module imports itself back through others, learn imports no
Dagster and store only for its resource classes, and the bench leans on the harness, not on
the tests. Every import counts, at the top of a module, inside a function or for typing."""

import ast
import graphlib
from pathlib import Path

import pytest

from harness.live import REPO

PACKAGE = REPO / "ml_assets"
# What each layer may import of ml_assets besides itself; the top (the package, definitions,
# shared, cli and defs/) may import any of them.
MAY_IMPORT = {
    "declare": {"pipeline", "learn", "store"},
    "pipeline": {"learn", "store"},
    "learn": {"store"},
    "store": set(),
    "serve": {"learn", "store"},
}
# Dagster in store/ is the base classes of the resources that do its I/O, and nothing else.
STORE_MODULES_WITH_DAGSTER = {
    "ml_assets.store.landing": "LandingZone is a dg.ConfigurableResource",
    "ml_assets.store.registry": "ModelRegistry is a dg.ConfigurableResource",
    "ml_assets.store.mlflow_mirror": "MlflowMirror is a dg.ConfigurableResource",
    "ml_assets.store.served": "ServedRecords is a dg.ConfigurableResource",
    "ml_assets.store.storage": "AssetStorage is an IO manager (dg.UPathIOManager)",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, wherever the import statement stands; `from package
    import module` counts as the module."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {
    name: {other for other in imported_modules(path) if other in MODULES and other != name}
    for name, path in MODULES.items()
}


def layer(module: str) -> str:
    """`learn` for ml_assets.learn.spec; `top` for what stands beside the layers."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MAY_IMPORT else "top"


def test_every_module_belongs_to_a_layer_or_is_one_of_the_few_at_the_top():
    top = sorted(name for name in MODULES if layer(name) == "top")
    assert top == [
        "ml_assets",
        "ml_assets.cli",
        "ml_assets.definitions",
        "ml_assets.defs",
        "ml_assets.shared",
    ]


def test_no_module_imports_itself_back_through_others():
    try:
        order = list(graphlib.TopologicalSorter(GRAPH).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import circle: {' -> '.join(error.args[1])}")
    assert set(order) == set(MODULES)


def test_imports_only_run_downwards():
    upwards = [
        f"{name} imports {other}"
        for name, imported in GRAPH.items()
        if layer(name) != "top"
        for other in imported
        if layer(other) != layer(name) and layer(other) not in MAY_IMPORT[layer(name)]
    ]
    assert upwards == []


def test_the_ml_imports_no_dagster_and_the_io_only_for_its_resource_classes():
    def uses_dagster(name: str) -> bool:
        return any(
            other == "dagster" or other.startswith(("dagster.", "dagster_"))
            for other in imported_modules(MODULES[name])
        )

    learn = [name for name in MODULES if layer(name) == "learn" and uses_dagster(name)]
    store = {name for name in MODULES if layer(name) == "store" and uses_dagster(name)}
    assert learn == []
    assert store == set(STORE_MODULES_WITH_DAGSTER)


def test_the_checker_sees_an_upward_import_and_a_circle(tmp_path):
    """The rules above can fail: an import written in a function is still found."""
    source = tmp_path / "spec.py"
    source.write_text("def f():\n    from ml_assets.pipeline.naming import asset_key\n")
    assert "ml_assets.pipeline.naming" in imported_modules(source)
    assert layer("ml_assets.pipeline.naming") not in MAY_IMPORT["learn"]
    circular = {"a": {"b"}, "b": {"a"}}
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(circular).static_order())


def test_the_bench_and_the_harness_import_nothing_of_the_tests():
    files = [*(REPO / "bench").glob("*.py"), *(REPO / "harness").glob("*.py")]
    leaning = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in files
        for name in imported_modules(path)
        if name.split(".")[0] == "ml_assets_tests"
    ]
    assert files and leaning == []
