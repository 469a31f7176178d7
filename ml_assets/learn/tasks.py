"""The two tasks a model may have, regression and classification: each knows its metrics and
which way is better, its model kinds, its prediction columns and its model card.

Code asks the task (`spec.task.evaluate(...)`, `spec.task.kinds`), never `if task == ...`.
Nothing here imports scikit-learn, NumPy or matplotlib until a model is fitted or scored.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ml_assets.learn.plots import (
    REGRESSION_PLOTS,
    classification_card,
    classification_plot_files,
    regression_plots,
)
from ml_assets.learn.resampling import (
    Resampled,
    classification_layout,
    classification_metrics,
    regression_metrics,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

# The estimators that draw random numbers get this seed, so the same data gives the same model.
RANDOM_STATE = 42
MIN_TRUSTED_HOLDOUT_ROWS = 50  # below this, the gate's verdict is said to be shaky
TOO_GOOD_R2 = 0.999  # a holdout R² this high is a leak far more often than a model


@dataclass(frozen=True)
class Metric:
    """A holdout metric: its label for people, which way is better, and its best value."""

    name: str
    label: str
    higher_is_better: bool
    best: float

    @property
    def threshold_check(self) -> str:
        """The gate check that compares it with the threshold: `mse_below_threshold`, ..."""
        return f"{self.name}_{'above' if self.higher_is_better else 'below'}_threshold"

    def beats(self, value: float, threshold: float) -> bool:
        """Whether a value is strictly better than a threshold."""
        return value > threshold if self.higher_is_better else value < threshold

    def worst_allowed(
        self, production: float, absolute: float | None, relative: float | None
    ) -> float:
        """The worst value that still counts as no worse than production, given tolerances.

        Each tolerance that is set must hold; a negative one demands an improvement. With
        neither set, production's own value.
        """
        sign = -1.0 if self.higher_is_better else 1.0  # "worse" is down for scores, up for errors
        limits = []
        if absolute is not None:
            limits.append(production + sign * absolute)
        if relative is not None:
            limits.append(production + sign * abs(production) * relative)
        if not limits:
            return production
        return max(limits) if self.higher_is_better else min(limits)

    def no_worse(self, value: float, allowed: float) -> bool:
        return value >= allowed if self.higher_is_better else value <= allowed

    def at_best(self, value: float) -> bool:
        return abs(value - self.best) < 1e-12

    @staticmethod
    def shown(value: float) -> str:
        """A value as people read it: 2900.19, 0.9737."""
        return f"{value:.2f}" if abs(value) >= 100 else f"{value:.4g}"

    @staticmethod
    def shown_change(value: float, previous: float) -> str:
        """A change as people read it, signed, as precise as the values: −8.73, +0.0088."""
        change = value - previous
        digits = f"{abs(change):.2f}" if abs(previous) >= 100 else f"{abs(change):.4g}"
        return f"{'−' if change < 0 else '+'}{digits}"


@dataclass(frozen=True)
class ModelKind:
    """A model kind a YAML file may name: the scikit-learn estimator and what we set on it."""

    name: str
    estimator: str  # dotted path of the scikit-learn class
    settings: dict[str, Any] = field(default_factory=dict, hash=False)  # params override these
    # Takes missing values and categories itself: the pipeline passes them through unencoded.
    native_categories: bool = False

    def estimator_class(self) -> type:
        module, _, name = self.estimator.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def unknown_params(self, params: dict[str, Any]) -> list[str]:
        """The parameters the estimator does not take."""
        accepted = self.estimator_class()().get_params(deep=False)
        return sorted(name for name in params if name not in accepted)

    def build(self, params: dict[str, Any]):
        """The estimator with scikit-learn's defaults, our settings, then the given params."""
        return self.estimator_class()(**{**self.settings, **params})


@dataclass(frozen=True)
class DecisionThreshold:
    """When a two-class model answers its positive class (the second in sorted order, as
    scikit-learn takes it): its probability at or above a fixed value, or a value tuned on the
    training rows for a metric (`Classification.decided`)."""

    value: float | None = None
    tuned_for: str | None = None  # the metric the threshold is tuned for

    @property
    def shown(self) -> str:
        return f"{self.value:g}" if self.tuned_for is None else f"tuned for {self.tuned_for}"


def _kind(
    name: str, estimator: str, random: bool = True, native: bool = False, **settings: Any
) -> ModelKind:
    if random:
        settings["random_state"] = RANDOM_STATE
    return ModelKind(name, estimator, settings, native_categories=native)


class Task:
    """What regression and classification have in common; the subclasses differ in the rest."""

    name: str
    metrics: ClassVar[dict[str, Metric]]
    kinds: ClassVar[dict[str, ModelKind]]
    estimator_step: str  # the Pipeline step that holds the estimator
    predicts_classes: bool  # whether it has classes, from the YAML or the reference
    probe_metric: str  # how well one feature alone predicts the target (1 is perfectly)
    baseline_name: str  # the constant answer, as scikit-learn writes it
    # Metrics that must not get detectably worse than production's besides the gate metric.
    guard_metrics: ClassVar[tuple[str, ...]] = ()

    def __init__(self, classes: tuple[str, ...] = ()):
        self.classes = tuple(classes)  # the classes to predict; none for a regression

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.classes == self.classes

    def __hash__(self) -> int:
        return hash((self.name, self.classes))

    def evaluate(self, model: Pipeline, rows: pd.DataFrame, target: pd.Series) -> dict[str, float]:
        """Every metric of the task, as plain floats (None where undefined on these rows)."""
        return self.scores(target, self.outputs(model, rows))

    def outputs(self, model: Pipeline, rows: pd.DataFrame) -> Any:
        """What the metrics are computed from: the model's answers for the rows."""
        raise NotImplementedError

    def scores(self, target: pd.Series, outputs: Any) -> dict[str, float]:
        """`evaluate` from the outputs already computed."""
        raise NotImplementedError

    def outputs_of(self, predicted: pd.DataFrame) -> Any:
        """The outputs from a table of `predict`'s columns (predictions kept with a version)."""
        raise NotImplementedError

    def resampled(
        self, target: pd.Series, outputs: Any, names: list[str], layout: np.ndarray | None = None
    ) -> Resampled:
        """The named metrics of many resamples of the rows at once (`resampling`), from
        weights whose columns are the rows in `layout` order (default: as given)."""
        raise NotImplementedError

    def weight_layout(self, target: pd.Series, outputs: Any, names: list[str]) -> np.ndarray | None:
        """The row order in which these metrics of these outputs are the cheapest to resample."""
        return None

    def correct(self, target: pd.Series, outputs: Any) -> np.ndarray | None:
        """Which rows the model answered right, for an exact paired test; None for a number."""
        return None

    def prediction_columns(self) -> dict[str, tuple[str, str]]:
        """The columns `predict` adds: name -> (type, description)."""
        raise NotImplementedError

    def predict(self, model: Pipeline, rows: pd.DataFrame) -> pd.DataFrame:
        """The prediction columns for the rows, in the rows' order."""
        raise NotImplementedError

    def fingerprint_values(self, model: Pipeline, rows: pd.DataFrame) -> np.ndarray:
        """What identifies a fitted model by its outputs on given rows."""
        raise NotImplementedError

    def card(self, target: pd.Series, model: Pipeline, rows: pd.DataFrame) -> tuple[dict, dict]:
        """The model card's task part on holdout rows: facts for the card, PNG plots by name."""
        raise NotImplementedError

    def plot_files(self) -> tuple[str, ...]:
        raise NotImplementedError

    def folds(self, count: int):
        """Cross-validation folds of the rows, shuffled with the seed."""
        raise NotImplementedError

    def baseline(self):
        """The constant answer a model must beat, as a scikit-learn estimator."""
        raise NotImplementedError

    def probe(self):
        """A model of one feature alone, to find one that predicts the target by itself."""
        raise NotImplementedError

    def decided(self, estimator, threshold: DecisionThreshold | None, tune: bool = True):
        """The estimator answering by the decision threshold (two classes), or as it is."""
        return estimator

    def threshold_facts(self, model: Pipeline) -> dict | None:
        """The decision threshold a fitted model answers by, for its card; None without one."""
        return None

    def too_good(self, scores: dict[str, float | None], rows: int) -> str | None:
        """Why a holdout score is too good to be true (a leak, most likely), or None."""
        raise NotImplementedError


class Regression(Task):
    """A number to predict: squared and absolute errors, R²."""

    name = "regression"
    estimator_step = "regressor"
    predicts_classes = False
    metrics: ClassVar[dict[str, Metric]] = {
        metric.name: metric
        for metric in (
            Metric("mse", "MSE", higher_is_better=False, best=0.0),
            Metric("rmse", "RMSE", higher_is_better=False, best=0.0),
            Metric("mae", "MAE", higher_is_better=False, best=0.0),
            Metric("r2", "R²", higher_is_better=True, best=1.0),
        )
    }
    kinds: ClassVar[dict[str, ModelKind]] = {
        kind.name: kind
        for kind in (
            _kind("linear", "sklearn.linear_model.LinearRegression", random=False),
            _kind("ridge", "sklearn.linear_model.Ridge"),
            _kind("gradient_boosting", "sklearn.ensemble.GradientBoostingRegressor"),
            _kind("random_forest", "sklearn.ensemble.RandomForestRegressor"),
            _kind(
                "hist_gradient_boosting",
                "sklearn.ensemble.HistGradientBoostingRegressor",
                native=True,
            ),
            _kind("lightgbm", "lightgbm.LGBMRegressor", verbose=-1, n_jobs=0),
        )
    }

    def outputs(self, model, rows):
        return model.predict(rows)

    def outputs_of(self, predicted):
        return predicted["prediction"].to_numpy(dtype="float64")

    def scores(self, target, outputs):
        import numpy as np
        from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

        predicted = outputs
        mse = float(mean_squared_error(target, predicted))
        return {
            "mse": mse,
            "rmse": float(np.sqrt(mse)),
            "mae": float(mean_absolute_error(target, predicted)),
            "r2": float(r2_score(target, predicted)) if len(target) > 1 else None,
        }

    def resampled(self, target, outputs, names, layout=None):
        return regression_metrics(target, outputs, names, layout)

    def prediction_columns(self):
        return {"prediction": ("float64", "the model's prediction of the target")}

    def predict(self, model, rows):
        import pandas as pd

        return pd.DataFrame({"prediction": model.predict(rows)}, index=rows.index)

    def fingerprint_values(self, model, rows):
        return model.predict(rows)

    # MSE on a small holdout is decided by its few largest errors; a model whose typical
    # error grew (a batch of shuffled targets) shows it in its MAE.
    guard_metrics = ("mae",)

    def folds(self, count):
        from sklearn.model_selection import KFold

        return KFold(n_splits=count, shuffle=True, random_state=RANDOM_STATE)

    probe_metric = "r2"

    baseline_name = 'DummyRegressor(strategy="mean")'

    def baseline(self):
        from sklearn.dummy import DummyRegressor

        return DummyRegressor(strategy="mean")

    def probe(self):
        from sklearn.tree import DecisionTreeRegressor

        return DecisionTreeRegressor(min_samples_leaf=5, random_state=RANDOM_STATE)

    def too_good(self, scores, rows):
        r2 = scores.get("r2")
        if r2 is None or r2 < TOO_GOOD_R2:
            return None
        return f"holdout R² {r2:.8g} on {rows} rows is too good to be true (≥ {TOO_GOOD_R2:g})"

    def plot_files(self):
        return REGRESSION_PLOTS

    def card(self, target, model, rows):
        return {}, regression_plots(target, model.predict(rows))


@dataclass(frozen=True)
class ClassOutputs:
    """A classifier's answers: the predicted class of each row, and a probability per class."""

    predicted: np.ndarray  # text
    probabilities: np.ndarray  # a column per declared class, in the declared order


class Classification(Task):
    """A class to predict, from the classes the YAML names (else the reference's)."""

    name = "classification"
    estimator_step = "classifier"
    predicts_classes = True
    metrics: ClassVar[dict[str, Metric]] = {
        metric.name: metric
        for metric in (
            Metric("accuracy", "accuracy", higher_is_better=True, best=1.0),
            Metric("balanced_accuracy", "balanced accuracy", higher_is_better=True, best=1.0),
            Metric("f1_macro", "macro F1", higher_is_better=True, best=1.0),
            Metric("log_loss", "log loss", higher_is_better=False, best=0.0),
            Metric("roc_auc", "ROC AUC", higher_is_better=True, best=1.0),
        )
    }
    kinds: ClassVar[dict[str, ModelKind]] = {
        kind.name: kind
        for kind in (
            _kind("logistic_regression", "sklearn.linear_model.LogisticRegression", max_iter=1000),
            _kind("gradient_boosting", "sklearn.ensemble.GradientBoostingClassifier"),
            _kind("random_forest", "sklearn.ensemble.RandomForestClassifier"),
            _kind(
                "hist_gradient_boosting",
                "sklearn.ensemble.HistGradientBoostingClassifier",
                native=True,
            ),
            _kind("lightgbm", "lightgbm.LGBMClassifier", verbose=-1, n_jobs=0),
        )
    }

    # Accuracy on a small holdout can only tie at its ceiling; a model whose probabilities
    # got worse (a batch of shuffled labels) shows it in its log loss.
    guard_metrics = ("log_loss",)
    # The metrics of the answered classes, which a decision threshold moves (not the
    # probabilities' log loss and ROC AUC).
    threshold_metrics = ("accuracy", "balanced_accuracy", "f1_macro")
    THRESHOLD_FOLDS = 5

    def decided(self, estimator, threshold, tune=True):
        """`FixedThresholdClassifier(estimator, threshold=value)`, or
        `TunedThresholdClassifierCV(estimator, scoring=<metric>, cv=<the task's 5 shuffled,
        stratified folds>)`, both on `predict_proba`; with `tune=False` a tuned threshold is
        left out (the search scores its trials without it)."""
        if threshold is None or (threshold.tuned_for is not None and not tune):
            return estimator
        from sklearn.model_selection import FixedThresholdClassifier, TunedThresholdClassifierCV

        if threshold.tuned_for is None:
            return FixedThresholdClassifier(
                estimator, threshold=threshold.value, response_method="predict_proba"
            )
        return TunedThresholdClassifierCV(
            estimator,
            scoring=threshold.tuned_for,
            cv=self.folds(self.THRESHOLD_FOLDS),
            response_method="predict_proba",
        )

    def threshold_facts(self, model):
        from sklearn.model_selection import FixedThresholdClassifier, TunedThresholdClassifierCV

        step = model.named_steps[self.estimator_step]
        if isinstance(step, TunedThresholdClassifierCV):
            return {
                "threshold": float(step.best_threshold_),
                "positive_class": str(step.classes_[1]),
                "tuned_for": step.scoring,
                "tuned_score": float(step.best_score_),
            }
        if isinstance(step, FixedThresholdClassifier):
            return {"threshold": float(step.threshold), "positive_class": str(step.classes_[1])}
        return None

    def probability_column(self, label: str) -> str:
        return f"probability_{label}"

    def probabilities(self, model: Pipeline, rows: pd.DataFrame) -> np.ndarray:
        """One column per declared class, in the declared order (0 for a class never trained on)."""
        import numpy as np

        raw = model.predict_proba(rows)
        known = {str(label): index for index, label in enumerate(model.classes_)}
        columns = [
            raw[:, known[label]] if label in known else np.zeros(len(rows))
            for label in self.classes
        ]
        return np.column_stack(columns) if columns else np.empty((len(rows), 0))

    def outputs(self, model, rows):
        import numpy as np

        predicted = np.asarray(model.predict(rows), dtype=object).astype(str)
        return ClassOutputs(predicted, self.probabilities(model, rows))

    def outputs_of(self, predicted):
        import numpy as np

        columns = [
            predicted[self.probability_column(label)].to_numpy(dtype="float64")
            if self.probability_column(label) in predicted
            else np.zeros(len(predicted))  # a class the version never knew
            for label in self.classes
        ]
        return ClassOutputs(
            predicted["prediction"].astype(str).to_numpy(dtype=object), np.column_stack(columns)
        )

    def scores(self, target, outputs):
        import numpy as np
        from sklearn.metrics import (
            accuracy_score,
            balanced_accuracy_score,
            f1_score,
            log_loss,
            roc_auc_score,
        )

        actual = np.asarray(target, dtype=object).astype(str)
        predicted, probabilities = outputs.predicted, outputs.probabilities
        labels = list(self.classes)
        # log_loss and roc_auc_score take the probability columns in the labels' sorted order.
        by_name = sorted(range(len(labels)), key=labels.__getitem__)
        metrics = {
            "accuracy": float(accuracy_score(actual, predicted)),
            "balanced_accuracy": float(balanced_accuracy_score(actual, predicted)),
            "f1_macro": float(f1_score(actual, predicted, average="macro")),
            "log_loss": float(log_loss(actual, probabilities[:, by_name], labels=sorted(labels))),
            "roc_auc": None,
        }
        try:  # undefined when the rows hold a single class
            if len(labels) == 2:  # the positive class is the second in sorted order, as
                positive = sorted(labels)[1]  # scikit-learn's roc_auc_score takes it
                score = roc_auc_score(actual == positive, probabilities[:, labels.index(positive)])
            else:
                score = roc_auc_score(
                    actual,
                    probabilities[:, by_name],
                    multi_class="ovr",
                    average="macro",
                    labels=sorted(labels),
                )
            metrics["roc_auc"] = float(score)
        except ValueError:
            pass
        # scikit-learn answers NaN (with a warning) where a metric is undefined on the rows,
        # a single class among them: undefined is None, as JSON and the metadata say it.
        return {
            name: None if value is not None and math.isnan(value) else value
            for name, value in metrics.items()
        }

    def resampled(self, target, outputs, names, layout=None):
        return classification_metrics(
            target, outputs.predicted, outputs.probabilities, self.classes, names, layout
        )

    def weight_layout(self, target, outputs, names):
        if "roc_auc" not in names:
            return None
        return classification_layout(target, outputs.probabilities, self.classes)

    def correct(self, target, outputs):
        import numpy as np

        return np.asarray(target, dtype=object).astype(str) == outputs.predicted

    def prediction_columns(self):
        columns = {"prediction": ("string", "the predicted class")}
        for label in self.classes:
            columns[self.probability_column(label)] = (
                "float64",
                f"the model's probability that the class is {label}",
            )
        return columns

    def predict(self, model, rows):
        import numpy as np
        import pandas as pd

        probabilities = self.probabilities(model, rows)
        table = pd.DataFrame(
            {"prediction": np.asarray(model.predict(rows), dtype=object).astype(str)},
            index=rows.index,
        )
        for position, label in enumerate(self.classes):
            table[self.probability_column(label)] = probabilities[:, position]
        return table.astype({"prediction": "str"})

    def fingerprint_values(self, model, rows):
        return self.probabilities(model, rows)

    def folds(self, count):
        from sklearn.model_selection import StratifiedKFold  # every class in every fold

        return StratifiedKFold(n_splits=count, shuffle=True, random_state=RANDOM_STATE)

    probe_metric = "balanced_accuracy"

    baseline_name = 'DummyClassifier(strategy="prior")'

    def baseline(self):
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="prior")

    def probe(self):
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(min_samples_leaf=5, random_state=RANDOM_STATE)

    def too_good(self, scores, rows):
        if scores.get("accuracy") != 1.0:
            return None
        return f"not a single error on the {rows} holdout rows (accuracy 1) is too good to be true"

    def plot_files(self):
        return classification_plot_files(len(self.classes))

    def card(self, target, model, rows):
        facts, plots = classification_card(
            target, model.predict(rows), self.probabilities(model, rows), self.classes
        )
        threshold = self.threshold_facts(model)
        if threshold is not None:
            facts["decision_threshold"] = threshold
        return facts, plots


TASKS: dict[str, type[Task]] = {task.name: task for task in (Regression, Classification)}
