"""The model card shown on production_model in the UI: what the version is, its holdout
metrics against the previous champion's, and its task's tables and plots."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from ml_assets.tasks import Metric

REGRESSION_PLOTS = ("predicted_vs_actual.png", "residuals.png")
CONFUSION_MATRIX = "confusion_matrix.png"
ROC_CURVE = "roc_curve.png"


def classification_plot_files(class_count: int) -> tuple[str, ...]:
    """A confusion matrix, and a ROC curve when there are two classes."""
    return (CONFUSION_MATRIX, ROC_CURVE) if class_count == 2 else (CONFUSION_MATRIX,)


def metrics_table(
    metrics: dict[str, Metric], candidate: dict, champion: dict | None, champion_version: str | None
) -> str:
    """A Markdown table of the new model's holdout metrics against the previous champion's."""
    header = (
        f"| metric | this version | previous champion ({champion_version or 'none'}) | change |"
    )
    lines = [header, "|---|---:|---:|---:|"]
    for key, metric in metrics.items():
        ours = candidate.get(key)
        theirs = champion.get(key) if champion else None
        ours_text = "" if ours is None else metric.shown(ours)
        theirs_text = "" if theirs is None else metric.shown(theirs)
        change = "" if ours is None or theirs is None else metric.shown_change(ours, theirs)
        lines.append(f"| {metric.label} | {ours_text} | {theirs_text} | {change} |")
    return "\n".join(lines)


def card_summary(card: dict, metric: Metric, compared: bool = True) -> str:
    """One line for people: `MSE 2888.51, −8.73 vs the previous version, 353 training rows`;
    without the comparison when not `compared`."""
    value = card["metrics"].get(metric.name)
    previous = (card.get("champion_metrics") or {}).get(metric.name)
    if value is None:
        said = f"{metric.label} undefined on the holdout"
    elif not compared:
        said = f"{metric.label} {metric.shown(value)}"
    elif previous is None:
        said = f"{metric.label} {metric.shown(value)}, the first version"
    else:
        said = (
            f"{metric.label} {metric.shown(value)}, {metric.shown_change(value, previous)}"
            " vs the previous version"
        )
    return f"{said}, {card['training_rows']} training rows"


def per_class_table(rows: list[dict]) -> str:
    """Precision, recall and F1 of each class on the reference holdout, as Markdown."""
    lines = ["| class | precision | recall | F1 | holdout rows |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(
            f"| {row['class']} | {row['precision']:.3f} | {row['recall']:.3f} |"
            f" {row['f1']:.3f} | {row['support']} |"
        )
    return "\n".join(lines)


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


def card_markdown(card: dict, plots: dict[str, bytes], metrics: dict[str, Metric]) -> str:
    """The whole card: what the version is, its metrics and per-class tables, its plots."""
    facts = [
        f"**Version** `{card['version']}` — {card['estimator']}, created {card['created_at']}",
        (
            f"**Trained on** {card['training_rows']} rows (data fingerprint "
            f"`{card['data_fingerprint'][:12]}`), judged on {card['holdout_rows']} reference "
            "holdout rows"
        ),
        f"**Code revision** `{card.get('code_revision') or 'unknown'}`",
    ]
    tables = [
        metrics_table(
            metrics, card["metrics"], card.get("champion_metrics"), card.get("champion_version")
        )
    ]
    if card.get("per_class"):
        tables.append(per_class_table(card["per_class"]))
    images = [
        f"![{name}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"
        for name, data in plots.items()
    ]
    return "\n\n".join([*facts, *tables, *images])


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
