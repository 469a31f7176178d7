"""`make dev` picks up a model YAML added or changed while it runs: `ml-assets watch-defs`
beside a real `dagster dev` reloads the code location, and the new model's job and sensors
appear without a restart."""

import json
import subprocess
import uuid

import pytest

from harness.live import BIN, LiveDagster, stop_group, wait_for
from harness.projects import bundled_attributes, make_project, model_yaml, project_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_model_yaml_added_under_dagster_dev_is_loaded_by_itself(tmp_path):
    package = f"team_{uuid.uuid4().hex[:8]}"
    first = model_yaml({**bundled_attributes("diabetes"), "name": "first"})
    root = make_project(tmp_path / "project", {"first": first}, package)
    workspace = tmp_path / "workspace.yaml"
    module = {"module_name": f"{package}.definitions", "location_name": package}
    workspace.write_text(  # JSON is YAML
        json.dumps({"load_from": [{"python_module": {**module, "working_directory": str(root)}}]})
    )
    live = LiveDagster(tmp_path / "live", workspace, location=package)
    said = tmp_path / "watch-defs.log"
    watcher = None
    try:
        live.start()
        with said.open("w") as log:
            watcher = subprocess.Popen(
                [str(BIN / "ml-assets"), "watch-defs", "--port", str(live.port),
                 "--location", package],
                cwd=root, env=project_env(root), stderr=log, start_new_session=True,
            )  # fmt: skip
        wait_for(lambda: "watching" in said.read_text(), 60, 0.5, what="the watcher")

        def jobs():
            data = live.graphql(
                "{ repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } } } } }"
            )
            nodes = data["repositoriesOrError"]["nodes"]
            return {job["name"] for node in nodes for job in node["jobs"]}

        assert "first_training_job" in jobs() and "second_training_job" not in jobs()
        second = model_yaml({**bundled_attributes("diabetes"), "name": "second"})
        (root / package / "defs" / "second").mkdir()
        (root / package / "defs" / "second" / "defs.yaml").write_text(second)
        wait_for(lambda: "second_training_job" in jobs(), 120, what="the new model's job")
        assert f"second changed; {package} reloaded (success)" in said.read_text()
    finally:
        if watcher is not None:
            stop_group(watcher)
        live.stop()
