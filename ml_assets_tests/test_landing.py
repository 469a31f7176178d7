import json
import time

import pytest

from ml_assets.landing import REASON_SUFFIX, UnsupportedFile
from ml_assets_tests.conftest import land


def test_only_settled_visible_files_are_complete(landing, reference):
    land(landing, "old.csv", reference.head(3), age=60)
    land(landing, "fresh.csv", reference.head(3), age=0)
    land(landing, ".writer.tmp", b"partial", age=60)
    (landing.landing / "folder").mkdir()
    assert landing.pending_files() == ["fresh.csv", "old.csv"]
    assert landing.complete_files() == ["old.csv"]
    assert landing.complete_files(now=time.time() + 10) == ["fresh.csv", "old.csv"]


def test_archive_keeps_the_bytes_and_leaves_landing(landing, reference):
    path = land(landing, "a.csv", reference.head(3))
    original = path.read_bytes()
    archived = landing.archive("a.csv")
    assert archived.read_bytes() == original
    assert not path.exists()
    assert landing.source_path("a.csv") == archived  # a re-run reads the archived copy


def test_same_name_twice_keeps_both_files(landing, reference):
    land(landing, "a.csv", reference.head(3))
    first = landing.archive("a.csv")
    land(landing, "a.csv", reference.head(4))
    second = landing.archive("a.csv")
    assert first != second and first.exists() and second.exists()
    assert second.read_bytes() == reference.head(4).to_csv(index=False).encode()


def test_quarantine_keeps_the_bytes_and_writes_a_reason(landing):
    land(landing, "bad.csv", b"\x00\x01garbage")
    stored = landing.quarantine("bad.csv", {"error": "unreadable", "problems": []})
    assert stored.read_bytes() == b"\x00\x01garbage"
    reason = json.loads(stored.with_name(stored.name + REASON_SUFFIX).read_text())
    assert reason["file"] == "bad.csv" and reason["error"] == "unreadable"
    assert landing.ledger().as_dict() == {
        "landed": 1,
        "archived": 0,
        "quarantined": 1,
        "pending": 0,
    }


def test_ledger_counts_every_file(landing, reference):
    for name in ("a.csv", "b.csv", "c.csv"):
        land(landing, name, reference.head(2))
    landing.archive("a.csv")
    landing.quarantine("b.csv", {"error": "x"})
    assert landing.ledger().as_dict() == {
        "landed": 3,
        "archived": 1,
        "quarantined": 1,
        "pending": 1,
    }


@pytest.mark.parametrize("name", ["../escape.csv", "sub/x.csv", "..", "", "a\\b.csv"])
def test_paths_that_leave_the_folder_are_refused(landing, name):
    with pytest.raises(ValueError, match="not a plain file name"):
        landing.source_path(name)


def test_unsupported_and_unparseable_files(landing, reference):
    land(landing, "a.txt", b"hello")
    with pytest.raises(UnsupportedFile, match="unsupported file type"):
        landing.read_table("a.txt")
    land(landing, "b.parquet", b"not parquet at all")
    with pytest.raises(UnsupportedFile, match="cannot be read"):
        landing.read_table("b.parquet")


def test_parquet_is_read(landing, reference):
    path = landing.landing / "a.parquet"
    reference.head(4).to_parquet(path, index=False)
    assert landing.read_table("a.parquet").equals(reference.head(4))
