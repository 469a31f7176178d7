"""The model card shown on production_model in the UI: a metrics table and holdout plots."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

METRIC_LABELS = {"mse": "MSE", "rmse": "RMSE", "mae": "MAE", "r2": "R²"}
PLOT_FILES = ("predicted_vs_actual.png", "residuals.png")


def metrics_table(candidate: dict, champion: dict | None, champion_version: str | None) -> str:
    """A Markdown table of the new model's holdout metrics against the previous champion's."""
    header = (
        f"| metric | this version | previous champion ({champion_version or 'none'}) | change |"
    )
    lines = [header, "|---|---:|---:|---:|"]
    for key, label in METRIC_LABELS.items():
        ours = candidate[key]
        theirs = champion[key] if champion else None
        change = "" if theirs is None else f"{ours - theirs:+.4g}"
        theirs_text = "" if theirs is None else f"{theirs:.4g}"
        lines.append(f"| {label} | {ours:.4g} | {theirs_text} | {change} |")
    return "\n".join(lines)


def holdout_plots(actual: np.ndarray, predicted: np.ndarray) -> dict[str, bytes]:
    """Predicted-vs-actual and residual plots of the holdout, as PNG bytes by file name."""
    import matplotlib  # imported here: only promotion needs it, not loading the definitions
    import numpy as np

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    residuals = actual - predicted
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))

    scatter = Figure(figsize=(5, 4.5), dpi=100)
    axes = scatter.subplots()
    axes.scatter(actual, predicted, s=14, alpha=0.7)
    axes.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    axes.set(xlabel="actual target", ylabel="predicted", title="Holdout: predicted vs actual")

    spread = Figure(figsize=(5, 4.5), dpi=100)
    axes = spread.subplots()
    axes.scatter(predicted, residuals, s=14, alpha=0.7)
    axes.axhline(0, color="grey", linestyle="--", linewidth=1)
    axes.set(xlabel="predicted", ylabel="actual - predicted", title="Holdout: residuals")

    return dict(zip(PLOT_FILES, (_png(scatter), _png(spread)), strict=True))


def card_markdown(card: dict, plots: dict[str, bytes]) -> str:
    """The whole card: what the version is, its metrics table and its plots, inline."""
    facts = [
        f"**Version** `{card['version']}` — {card['estimator']}, created {card['created_at']}",
        (
            f"**Trained on** {card['training_rows']} rows (data fingerprint "
            f"`{card['data_fingerprint'][:12]}`), judged on {card['holdout_rows']} reference "
            "holdout rows"
        ),
        f"**Code revision** `{card.get('code_revision') or 'unknown'}`",
    ]
    table = metrics_table(
        card["metrics"], card.get("champion_metrics"), card.get("champion_version")
    )
    images = [
        f"![{name}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"
        for name, data in plots.items()
    ]
    return "\n\n".join([*facts, table, *images])


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
