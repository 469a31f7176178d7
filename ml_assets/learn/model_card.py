"""The model card shown on production_model in the UI: what the version is, its holdout
metrics with their intervals against the previous champion's and a constant answer's, and
its task's tables and plots (`plots`)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from ml_assets.learn.gate_statistics import percent

if TYPE_CHECKING:
    from ml_assets.learn.tasks import Metric


def card_metrics(measured: dict) -> dict:
    """The card's metric facts from model_metrics' value: the candidate's metrics and their
    intervals, the champion's and the constant answer's."""
    statistics = measured.get("statistics") or {}
    return {
        "metrics": measured["candidate"],
        "intervals": statistics.get("candidate"),
        "confidence": statistics.get("confidence"),
        "champion_metrics": measured["production"],
        "champion_version": measured["production_version"],
        "baseline_metrics": measured.get("baseline"),
    }


def metrics_table(metrics: dict[str, Metric], card: dict) -> str:
    """A Markdown table of a version's holdout metrics, each with its bootstrap interval,
    against the previous champion's and the constant answer's (a card, or model_metrics)."""
    champion, baseline = card.get("champion_metrics"), card.get("baseline_metrics")
    intervals, confidence = card.get("intervals") or {}, card.get("confidence")
    interval_header = f"{percent(confidence)} interval" if confidence else "interval"
    champion_version = card.get("champion_version") or "none"
    header = (
        f"| metric | this version | {interval_header} | previous champion ({champion_version})"
        " | change | constant answer |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    for key, metric in metrics.items():
        ours = card["metrics"].get(key)
        theirs = champion.get(key) if champion else None
        constant = baseline.get(key) if baseline else None
        interval = intervals.get(key) or {}
        cells = [
            "" if ours is None else metric.shown(ours),
            ""
            if interval.get("low") is None
            else f"{metric.shown(interval['low'])} to {metric.shown(interval['high'])}",
            "" if theirs is None else metric.shown(theirs),
            "" if ours is None or theirs is None else metric.shown_change(ours, theirs),
            "" if constant is None else metric.shown(constant),
        ]
        lines.append(f"| {metric.label} | {' | '.join(cells)} |")
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
    tables = [metrics_table(metrics, card)]
    if card.get("per_class"):
        tables.append(per_class_table(card["per_class"]))
    images = [
        f"![{name}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"
        for name, data in plots.items()
    ]
    return "\n\n".join([*facts, *tables, *images])
