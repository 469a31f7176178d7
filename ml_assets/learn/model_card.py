"""The model card shown on production_model in the UI: what the version is, its holdout
metrics with their intervals against the previous champion's and a constant answer's, and
its task's tables and plots (`plots`)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from ml_assets.learn.gate_statistics import percent
from ml_assets.learn.plots import IMPORTANCE_PLOT, importance_plot

if TYPE_CHECKING:
    from ml_assets.learn.spec import ModelSpec
    from ml_assets.learn.tasks import Metric


def card_metrics(measured: dict) -> dict:
    """The card's metric facts from model_metrics' value: the candidate's metrics and their
    intervals, the champion's and the constant answer's, and the features' importance."""
    statistics = measured.get("statistics") or {}
    return {
        "metrics": measured["candidate"],
        "intervals": statistics.get("candidate"),
        "confidence": statistics.get("confidence"),
        "champion_metrics": measured["production"],
        "champion_version": measured["production_version"],
        "baseline_metrics": measured.get("baseline"),
        "importance": measured.get("importance"),
        "importance_metric": measured.get("importance_metric"),
        "importance_measured_on": measured.get("importance_measured_on"),
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
            _shown(metric, ours),
            _range(metric, interval),
            _shown(metric, theirs),
            "" if ours is None or theirs is None else metric.shown_change(ours, theirs),
            _shown(metric, constant),
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


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, its first column left-aligned and the figures right-aligned."""
    lines = [f"| {' | '.join(header)} |", "|---|" + "---:|" * (len(header) - 1)]
    lines.extend(f"| {' | '.join(row)} |" for row in rows)
    return "\n".join(lines)


def per_class_table(rows: list[dict]) -> str:
    """Precision, recall and F1 of each class on the reference holdout, as Markdown."""
    return _markdown_table(
        ["class", "precision", "recall", "F1", "holdout rows"],
        [
            [row["class"], f"{row['precision']:.3f}", f"{row['recall']:.3f}",
             f"{row['f1']:.3f}", str(row["support"])]
            for row in rows
        ],
    )  # fmt: skip


def importance_table(importances: list[dict], metric: Metric) -> str:
    """The permutation importances as Markdown: each feature's worsening of the gate metric
    when shuffled, with its spread."""
    return _markdown_table(
        ["feature", f"worsening of {metric.label} when shuffled", "± std"],
        [
            [entry["feature"], metric.shown(entry["importance"]), metric.shown(entry["std"])]
            for entry in importances
        ],
    )


def importance_markdown(importances: list[dict], metric: Metric, measured_on: str) -> str:
    """The importance table with its bar plot, as model_metrics shows them."""
    plot = importance_plot(importances, metric.label)
    table = importance_table(importances, metric)
    return f"Measured {measured_on}.\n\n{table}\n\n{_image(IMPORTANCE_PLOT, plot)}"


def _image(name: str, data: bytes) -> str:
    return f"![{name}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"


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
    threshold = card.get("decision_threshold")
    if threshold:
        how = (
            f", tuned on the training rows for {threshold['tuned_for']}"
            f" ({threshold['tuned_score']:.4g} in cross-validation)"
            if threshold.get("tuned_for")
            else ", as declared"
        )
        facts.append(
            f"**Decision threshold** {threshold['threshold']:.4g}: {threshold['positive_class']!r}"
            f" when its probability is at least that{how}"
        )
    tables = [metrics_table(metrics, card)]
    if card.get("per_class"):
        tables.append(per_class_table(card["per_class"]))
    if card.get("importance"):
        gate_metric = metrics[card["importance_metric"]]
        if card.get("importance_measured_on"):
            tables.append(f"Permutation importance, {card['importance_measured_on']}:")
        tables.append(importance_table(card["importance"], gate_metric))
    images = [_image(name, data) for name, data in plots.items()]
    return "\n\n".join([*facts, *tables, *images])


def live_table(spec: ModelSpec, live: list[dict]) -> str:
    """A Markdown table of each version's gate metric live against at its promotion, each
    with its interval, newest version first."""
    metric, confidence = spec.gate.metric, percent(spec.gate.confidence)
    header = (
        f"| version | served | labelled | live {metric.label} | {confidence} interval"
        f" | at promotion | live − promotion | {confidence} interval | degraded |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for entry in live:
        live_value = (entry["intervals"] or {}).get(metric.name) or {}
        difference = (entry["versus_promotion"] or {}).get(metric.name) or {}
        promoted = ((entry["at_promotion"] or {}).get("metrics") or {}).get(metric.name)
        cells = [
            f"`{entry['version']}`",
            str(entry["served_rows"]),
            str(entry["labelled_rows"]),
            _shown(metric, live_value.get("value")),
            _range(metric, live_value),
            _shown(metric, promoted),
            _shown(metric, difference.get("value")),
            _range(metric, difference),
            "yes" if entry["degraded"] else "",
        ]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def _shown(metric: Metric, value: float | None) -> str:
    return "" if value is None else metric.shown(value)


def _range(metric: Metric, interval: dict) -> str:
    low, high = interval.get("low"), interval.get("high")
    return "" if low is None else f"{metric.shown(low)} to {metric.shown(high)}"
