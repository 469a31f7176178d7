import json

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.pipeline import Pipeline

from ml_assets.contract import FEATURES, TARGET
from ml_assets.modeling import ModelConfig, build_pipeline
from ml_assets.registry import CARD_FILE, MODEL_FILE, RegistryError


class MeanRegressor(RegressorMixin, BaseEstimator):
    """A type skops does not know, so loading it must be refused."""

    def fit(self, X, y):
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


def fitted(reference, kind="linear"):
    return build_pipeline(ModelConfig(model_kind=kind, n_estimators=10)).fit(
        reference[FEATURES], reference[TARGET]
    )


@pytest.mark.parametrize("kind", ["linear", "ridge", "gradient_boosting"])
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
    with pytest.raises(RegistryError, match="not a model version name"):
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
