"""Throwaway dg projects that declare models with `ml_assets.TabularModel`, as a team's own
project would: its own defs folder and definitions, ml_assets as a library."""

import os
import textwrap
from pathlib import Path

import yaml

from harness.live import REPO

BUNDLED = REPO / "ml_assets" / "defs"


def bundled_attributes(model: str) -> dict:
    """The attributes of one of the bundled models' YAML files."""
    return yaml.safe_load((BUNDLED / model / "defs.yaml").read_text())["attributes"]


def model_yaml(attributes: dict) -> str:
    return yaml.safe_dump(
        {"type": "ml_assets.TabularModel", "attributes": attributes},
        sort_keys=False,
        allow_unicode=True,
    )


SHARED = """\
from pathlib import Path

import dagster as dg

from ml_assets.shared import shared_definitions

defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    shared_definitions(),
)
"""


def make_project(
    root: Path, models: dict[str, str], package: str = "team_models", definitions: str = SHARED
) -> Path:
    """A project at `root` whose defs folder holds one folder per model, with its YAML text;
    its definitions are ml_assets' way (the defs folder and what the models share) unless
    other text is given."""
    (root / package / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [project]
            name = "{package}"
            version = "0"

            [tool.dg]
            directory_type = "project"

            [tool.dg.project]
            root_module = "{package}"
            defs_module = "{package}.defs"
            code_location_target_module = "{package}.definitions"
            """
        )
    )
    (root / package / "__init__.py").write_text("")
    (root / package / "defs" / "__init__.py").write_text("")
    (root / package / "definitions.py").write_text(definitions)
    for folder, text in models.items():
        (root / package / "defs" / folder).mkdir()
        (root / package / "defs" / folder / "defs.yaml").write_text(text)
    return root


def project_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment a command of the project runs in: its package importable."""
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}
