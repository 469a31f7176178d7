"""The task's figures of a model on the reference holdout, as PNG bytes by file name: for a
regression, predicted against actual and the residuals; for a classification, a confusion
matrix, a ROC curve when there are two classes, and the per-class table's rows."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

REGRESSION_PLOTS = ("predicted_vs_actual.png", "residuals.png")
CONFUSION_MATRIX = "confusion_matrix.png"
ROC_CURVE = "roc_curve.png"
IMPORTANCE_PLOT = "permutation_importance.png"


def classification_plot_files(class_count: int) -> tuple[str, ...]:
    """A confusion matrix, and a ROC curve when there are two classes."""
    return (CONFUSION_MATRIX, ROC_CURVE) if class_count == 2 else (CONFUSION_MATRIX,)


def _figure() -> tuple[Figure, object]:
    import matplotlib  # imported here: only promotion needs it, not loading the definitions

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 4.5), dpi=100)
    return figure, figure.subplots()


def regression_plots(actual: np.ndarray, predicted: np.ndarray) -> dict[str, bytes]:
    """Predicted-vs-actual and residual plots of the holdout, as PNG bytes by file name."""
    import numpy as np

    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    residuals = actual - predicted
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))

    scatter, axes = _figure()
    axes.scatter(actual, predicted, s=14, alpha=0.7)
    axes.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    axes.set(xlabel="actual target", ylabel="predicted", title="Holdout: predicted vs actual")

    spread, axes = _figure()
    axes.scatter(predicted, residuals, s=14, alpha=0.7)
    axes.axhline(0, color="grey", linestyle="--", linewidth=1)
    axes.set(xlabel="predicted", ylabel="actual - predicted", title="Holdout: residuals")

    return dict(zip(REGRESSION_PLOTS, (_png(scatter), _png(spread)), strict=True))


def classification_card(
    actual, predicted, probabilities: np.ndarray, classes: tuple[str, ...]
) -> tuple[dict, dict[str, bytes]]:
    """The per-class table's rows, a confusion matrix and (binary) a ROC curve."""
    import numpy as np
    from sklearn.metrics import (
        ConfusionMatrixDisplay,
        RocCurveDisplay,
        precision_recall_fscore_support,
    )

    actual = np.asarray(actual, dtype=object).astype(str)
    predicted = np.asarray(predicted, dtype=object).astype(str)
    labels = list(classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        actual, predicted, labels=labels, zero_division=0
    )
    rows = [
        {
            "class": label,
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    ]
    matrix, axes = _figure()
    ConfusionMatrixDisplay.from_predictions(
        actual, predicted, labels=labels, ax=axes, colorbar=False
    )
    axes.set(title="Holdout: confusion matrix")
    plots = {CONFUSION_MATRIX: _png(matrix)}
    if len(labels) == 2:
        negative, positive = sorted(labels)  # as the ROC AUC metric takes them
        curve, axes = _figure()
        RocCurveDisplay.from_predictions(
            actual == positive,
            probabilities[:, labels.index(positive)],
            ax=axes,
            name=f"{positive} vs {negative}",
        )
        axes.set(title="Holdout: ROC curve")
        plots[ROC_CURVE] = _png(curve)
    return {"per_class": rows}, plots


def importance_plot(importances: list[dict], metric_label: str) -> bytes:
    """The permutation importances as horizontal bars, the largest on top, with their spread."""
    figure, axes = _figure()
    figure.set_size_inches(6, 0.3 * len(importances) + 1.5)
    ranked = importances[::-1]
    axes.barh(
        [entry["feature"] for entry in ranked],
        [entry["importance"] for entry in ranked],
        xerr=[entry["std"] for entry in ranked],
        color="tab:blue",
        alpha=0.8,
    )
    axes.axvline(0, color="grey", linewidth=1)
    axes.set(
        xlabel=f"worsening of {metric_label} when shuffled",
        title="Holdout: permutation importance",
    )
    return _png(figure)


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
