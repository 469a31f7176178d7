"""The ml_assets code location: every model declared in ml_assets/defs/<name>/defs.yaml, and
what all of them share."""

from pathlib import Path

import dagster as dg

from ml_assets.shared import shared_definitions
from ml_assets.store.memory import settle_loaded_objects

defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    shared_definitions(),
)

settle_loaded_objects()
