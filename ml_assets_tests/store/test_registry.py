import itertools
import json

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.pipeline import Pipeline

from ml_assets.learn.modeling import build_pipeline
from ml_assets.store.registry import CARD_FILE, MODEL_FILE, ModelRegistry, RegistryError
from ml_assets_tests.conftest import DIABETES

FEATURES, TARGET = DIABETES.features, DIABETES.target


class MeanRegressor(RegressorMixin, BaseEstimator):
    """A type skops does not know, so loading it must be refused."""

    def fit(self, X, y):
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


def fitted(reference, kind="linear"):
    params = {"n_estimators": 10} if kind in ("gradient_boosting", "random_forest") else {}
    return build_pipeline(DIABETES, kind, params).fit(reference[FEATURES], reference[TARGET])


@pytest.mark.parametrize("kind", ["linear", "ridge", "gradient_boosting", "random_forest"])
def test_register_then_load_gives_the_same_predictions(registry, reference, kind):
    model = fitted(reference, kind)
    version = registry.register(model, card={"metrics": {"mse": 1.0}})
    loaded = registry.load(version.version)
    np.testing.assert_array_equal(
        loaded.predict(reference[FEATURES]), model.predict(reference[FEATURES])
    )
    card = json.loads((version.path / CARD_FILE).read_text())
    assert card["sha256"] and card["libraries"]["scikit-learn"]
    assert not (version.path / MODEL_FILE).read_bytes().startswith(b"\x80")  # not a pickle


def test_promote_switches_production_and_keeps_previous(registry, reference):
    assert registry.production() is None
    first = registry.register(fitted(reference), card={})
    second = registry.register(fitted(reference, "ridge"), card={})
    registry.promote(first.version)
    assert registry.production().version == first.version
    assert registry.previous() is None
    registry.promote(second.version)
    assert registry.production().version == second.version
    assert registry.previous().version == first.version
    assert [v.version for v in registry.versions()] == sorted([first.version, second.version])


def test_a_changed_model_file_is_refused(registry, reference):
    version = registry.register(fitted(reference), card={})
    model_file = version.path / MODEL_FILE
    model_file.write_bytes(model_file.read_bytes() + b"\x00")
    with pytest.raises(RegistryError, match="refusing a changed file"):
        registry.load(version.version)


def test_untrusted_types_are_refused(registry, reference):
    model = Pipeline([("regressor", MeanRegressor())]).fit(reference[FEATURES], reference[TARGET])
    version = registry.register(model, card={})
    with pytest.raises(RegistryError, match="outside the allow-list"):
        registry.load(version.version)


def test_missing_or_half_written_versions_give_clear_errors(registry, reference):
    with pytest.raises(RegistryError, match="is not in"):
        registry.load("20990101T000000000000Z-deadbeef")
    with pytest.raises(RegistryError, match="not a plain name"):
        registry.get("../elsewhere")
    version = registry.register(fitted(reference), card={})
    (version.path / MODEL_FILE).unlink()
    with pytest.raises(RegistryError, match="has no model.skops"):
        registry.load(version.version)
    (registry.root / ".staging-abc").mkdir()  # what a killed writer leaves behind
    assert [v.version for v in registry.versions()] == [version.version]


def test_promoting_an_unknown_version_leaves_production_alone(registry, reference):
    good = registry.register(fitted(reference), card={})
    registry.promote(good.version)
    with pytest.raises(RegistryError):
        registry.promote("20990101T000000000000Z-deadbeef")
    assert registry.production().version == good.version


def test_a_file_that_is_not_skops_gives_a_clear_error():
    from ml_assets.store.registry import model_from_bytes

    with pytest.raises(RegistryError, match="not a readable skops file"):
        model_from_bytes(b"definitely not a zip archive", source="x.skops")


def test_the_card_records_what_the_version_is(registry, reference, monkeypatch):
    monkeypatch.setenv("ML_ASSETS_GIT_REVISION", "abc123")
    version = registry.register(
        fitted(reference), card={"metrics": {"mse": 1.0}}, attachments={"plot.png": b"\x89PNG"}
    )
    card = version.card
    assert card["code_revision"] == "abc123"
    assert set(card["libraries"]) >= {"scikit-learn", "skops", "dagster", "python"}
    assert card["attachments"] == ["plot.png"]
    assert (version.path / "plot.png").read_bytes() == b"\x89PNG"
    with pytest.raises(RegistryError):
        registry.register(fitted(reference), card={}, attachments={"../escape.png": b""})


def test_rollback_goes_back_and_forth_and_is_in_the_history(registry, reference):
    first = registry.register(fitted(reference), card={}).version
    second = registry.register(fitted(reference, "ridge"), card={}).version
    registry.promote(first)
    registry.promote(second)
    switch = registry.rollback()
    assert (switch.from_version, switch.to_version, switch.reason) == (second, first, "rollback")
    assert registry.production().version == first
    assert registry.previous().version == second
    assert registry.rollback().to_version == second  # rolling back a rollback
    assert registry.rollback(first).to_version == first  # an explicit version
    assert [(h["from_version"], h["to_version"], h["reason"]) for h in registry.history()] == [
        (None, first, "promotion"),
        (first, second, "promotion"),
        (second, first, "rollback"),
        (first, second, "rollback"),
        (second, first, "rollback"),
    ]


def test_rollback_refuses_what_it_cannot_do(registry, reference):
    with pytest.raises(RegistryError, match="nothing is in production"):
        registry.rollback()
    only = registry.register(fitted(reference), card={}).version
    registry.promote(only)
    with pytest.raises(RegistryError, match="no previous production version"):
        registry.rollback()
    with pytest.raises(RegistryError, match="already in production"):
        registry.rollback(only)
    with pytest.raises(RegistryError, match="is not in"):
        registry.rollback("20990101T000000000000Z-deadbeef")
    assert registry.production().version == only


def test_prune_keeps_recent_and_every_production_version(data_dir, reference):
    import os
    import time

    registry = ModelRegistry(data_dir=str(data_dir), keep_versions=2).for_model("diabetes")
    names = [registry.register(fitted(reference), card={}).version for _ in range(6)]
    registry.promote(names[0])
    registry.promote(names[2])  # production; names[0] is previous and was in production
    stale = registry.root / ".staging-old"
    stale.mkdir()
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = registry.root / ".staging-new"  # a writer still at work
    fresh.mkdir()
    removed = registry.prune()
    assert removed == [names[1], names[3]]
    assert [v.version for v in registry.versions()] == [names[0], names[2], names[4], names[5]]
    assert not stale.exists() and fresh.exists()
    registry.promote(names[4])
    registry.promote(names[5])
    assert registry.prune() == []  # all that is left was in production or is recent


def _promote_repeatedly(data_dir: str, versions: list[str], rounds: int) -> None:
    registry = ModelRegistry(data_dir=data_dir).for_model("diabetes")
    for _ in range(rounds):
        for version in versions:
            registry.promote(version)


def test_promotions_racing_in_two_processes_stay_consistent(registry, reference, data_dir):
    import multiprocessing

    names = [registry.register(fitted(reference), card={}).version for _ in range(4)]
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_promote_repeatedly, args=(str(data_dir), names[:2], 40)),
        context.Process(target=_promote_repeatedly, args=(str(data_dir), names[2:], 40)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    production = registry.production()
    assert production.version in names
    registry.load(production.version)  # the alias points at a complete, loadable version
    history = registry.history()
    assert len(history) >= 2
    for before, after in itertools.pairwise(history):
        assert after["from_version"] == before["to_version"]  # no switch was lost
    assert history[-1]["to_version"] == production.version
    assert registry.previous().version == history[-1]["from_version"]


def test_two_models_never_see_each_others_versions(data_dir, registry, reference):
    registry.promote(registry.register(fitted(reference), card={}).version)
    other = ModelRegistry(data_dir=str(data_dir)).for_model("breast_cancer")
    assert other.production() is None and other.versions() == []
    assert registry.root == data_dir / "diabetes" / "models"


def test_a_switch_left_unlogged_by_a_kill_is_recorded_by_the_next_promotion(registry, reference):
    a, b, c = (registry.register(fitted(reference), card={}).version for _ in range(3))
    registry.promote(a)
    registry._set_alias("production", b)  # the writer died between the switch and the log
    registry.promote(c)
    assert [(h["from_version"], h["to_version"], h["reason"]) for h in registry.history()] == [
        (None, a, "promotion"),
        (a, b, "recovered"),
        (b, c, "promotion"),
    ]
