"""Security habits, checked: no pickle anywhere, no shell, loopback by default."""

import re

import pytest

from harness.live import REPO
from ml_assets_tests.test_end_to_end import materialize

SOURCES = sorted((REPO / "ml_assets").rglob("*.py"))
PICKLE_MAGIC = b"\x80"  # every pickle protocol from 2 on starts with PROTO


def test_no_source_uses_pickle_joblib_or_a_shell():
    assert SOURCES
    for path in SOURCES:
        text = path.read_text()
        assert not re.search(
            r"^\s*(import|from)\s+(pickle|cloudpickle|dill|joblib)\b", text, re.MULTILINE
        ), path
        assert "shell=True" not in text, path
        assert "os.system(" not in text, path


def test_the_ui_binds_to_loopback_unless_told_otherwise():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^HOST \?= 127\.0\.0\.1$", makefile, re.MULTILINE)
    assert "dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)" in makefile


@pytest.mark.slow
def test_nothing_the_pipeline_stores_is_a_pickle(instance, data_dir):
    assert materialize(instance).success
    stored = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".skops" for p in stored)
    assert all(p.relative_to(data_dir).parts[0] == "diabetes" for p in stored)
    for path in stored:
        assert not path.read_bytes().startswith(PICKLE_MAGIC), path
        assert path.suffix not in {".pkl", ".pickle", ".joblib"}, path
