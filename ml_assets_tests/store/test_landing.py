import json
import os
import time

import pytest

from ml_assets.store.landing import REASON_SUFFIX, LandingZone, cleaned_key, is_safe_key
from ml_assets.store.tables import UnreadableFile
from ml_assets_tests.conftest import DIABETES, land


def test_only_settled_files_are_complete_and_temporaries_wait(landing, reference):
    land(landing, "old.csv", reference.head(3), age=60)
    land(landing, "fresh.csv", reference.head(3), age=0)
    land(landing, ".hidden.csv", reference.head(3), age=60)
    land(landing, "upload.csv.part", b"partial", age=60)
    land(landing, ".batch.csv.1234.tmp", b"partial", age=60)
    (landing.landing / "folder").mkdir()
    assert landing.pending_files() == [".hidden.csv", "fresh.csv", "old.csv"]
    assert landing.complete_files() == [".hidden.csv", "old.csv"]
    assert landing.complete_files(now=time.time() + 10) == [".hidden.csv", "fresh.csv", "old.csv"]


def test_archive_keeps_the_bytes_and_leaves_landing(landing, reference):
    path = land(landing, "a.csv", reference.head(3))
    original = path.read_bytes()
    archived = landing.archive("a.csv")
    assert archived.read_bytes() == original
    assert not path.exists()
    assert landing.source_path("a.csv") == archived  # a re-run reads the archived copy
    assert landing.whereabouts("a.csv") == "archived"


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


def test_ledger_counts_every_file_and_finds_lost_ones(landing, reference):
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
    ledger = landing.ledger(registered={"a.csv", "b.csv", "c.csv", "gone.csv"})
    assert ledger.lost == ["gone.csv"]
    assert ledger.as_dict()["registered"] == 4


@pytest.mark.parametrize("name", ["../escape.csv", "sub/x.csv", "..", "", "a\x00b.csv"])
def test_paths_that_leave_the_folder_are_refused(landing, name):
    with pytest.raises(ValueError, match="not a plain file name"):
        landing.source_path(name)


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("batch 1.csv", True),
        ("données-été.csv", True),
        (".hidden.csv", True),
        ("..\\..\\evil.csv", False),
        ("a,b.csv", False),
        ("a[1].csv", False),
        ("a...b.csv", False),
        ("line\nbreak.csv", False),
        ("x" * 201 + ".csv", False),
        ("é" * 100 + ".csv", False),  # 200 characters but 204 bytes
    ],
)
def test_which_names_are_safe_keys(name, safe):
    assert is_safe_key(name) is safe
    cleaned = cleaned_key(name, "0123456789abcdef")
    assert is_safe_key(cleaned)
    assert cleaned.endswith(".csv") and "0123456789ab" in cleaned


def test_claim_keeps_safe_names_and_renames_the_rest(landing, reference):
    land(landing, "good.csv", reference.head(2))
    assert landing.claim("good.csv", set())[0] == "good.csv"
    land(landing, "a,b.csv", reference.head(2))
    key, digest = landing.claim("a,b.csv", set())
    assert key == f"a_b.{digest[:12]}.csv"
    assert landing.pending_files() == [key, "good.csv"]


def test_a_name_used_before_gets_a_new_key_and_both_files_are_kept(landing, reference):
    land(landing, "batch.csv", reference.head(2))
    assert landing.claim("batch.csv", set())[0] == "batch.csv"
    assert landing.claim("batch.csv", {"batch.csv"})[0] == "batch.csv"  # still waiting: same
    first = landing.archive("batch.csv")
    land(landing, "batch.csv", reference.head(3))
    key, digest = landing.claim("batch.csv", {"batch.csv"})
    assert key == f"batch.{digest[:12]}.csv"
    land(landing, "batch.csv", reference.head(3))  # the same content a third time
    again, _ = landing.claim("batch.csv", {"batch.csv", key})
    assert again == f"batch.{digest[:12]}-1.csv"
    assert (
        first.exists() and (landing.landing / key).exists() and (landing.landing / again).exists()
    )


def test_a_symlink_is_never_followed(landing, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("age\n1\n")
    os.symlink(secret, landing.landing / "link.csv")
    assert landing.pending_files() == ["link.csv"]
    landing.fingerprint("link.csv")  # hashes the link, not the target
    with pytest.raises(UnreadableFile, match="symbolic link"):
        landing.read_table("link.csv")
    stored = landing.quarantine("link.csv", {"error": "link"})
    assert stored.is_symlink() and os.readlink(stored) == str(secret)
    assert secret.read_text() == "age\n1\n"


def test_files_over_the_size_limit_are_refused_unread(data_dir, reference):
    small = LandingZone(data_dir=str(data_dir), max_file_bytes=100).for_model("diabetes")
    land(small, "big.csv", reference.head(20))
    with pytest.raises(UnreadableFile, match="over the limit of 100"):
        small.read_table("big.csv")


def test_each_model_has_its_own_folders_and_names_cannot_leave_the_data_folder(data_dir):
    zone = LandingZone(data_dir=str(data_dir))
    assert zone.for_model("diabetes").landing == data_dir / "diabetes" / "landing"
    assert zone.for_model("breast_cancer").landing == data_dir / "breast_cancer" / "landing"
    for name in ("../elsewhere", "Diabetes", "", "a/b"):
        with pytest.raises(ValueError, match="not a model name"):
            zone.for_model(name)


def test_header_names_match_the_contract_but_for_case_and_spaces(landing, reference):
    renamed = reference.head(3).rename(columns={"bmi": " BMI ", "age": "Age"})
    land(landing, "a.csv", renamed.assign(Comment="x"))
    table, notes = landing.read_table("a.csv", columns=DIABETES.column_names)
    assert {"bmi", "age", "Comment"} <= set(table.columns)
    assert any("→ 'bmi'" in note and "'Age' → 'age'" in note for note in notes)


def test_parquet_is_read(landing, reference):
    path = landing.landing / "a.parquet"
    reference.head(4).to_parquet(path, index=False)
    table, notes = landing.read_table("a.parquet")
    assert table.equals(reference.head(4)) and notes == []
