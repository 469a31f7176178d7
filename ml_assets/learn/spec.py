"""A model as the rest of the code sees it: resolved from its YAML file, checked, immutable.

Every module that needs a column, the target, a metric or a name takes a `ModelSpec`; none
names a column of a particular model.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml_assets.learn.tasks import DecisionThreshold, Metric, ModelKind, Task

NUMERIC_TYPES = ("number", "integer")
CALENDAR_PARTS = ("year", "quarter", "month", "day", "dayofweek", "dayofyear", "hour", "minute")
DEFAULT_CALENDAR_PARTS = ("year", "month", "day", "dayofweek", "hour")
DEFAULT_MAX_CATEGORIES = 50  # one-hot columns of one category column, "infrequent" included
MIN_LABELLED_ROWS = 100  # monitoring.min_labelled_rows: fewer say nothing either way


def utc_time(value: datetime.date) -> datetime.datetime:
    """A date or a time in UTC, without an offset: how times are compared."""
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def utc_text(value: datetime.date) -> str:
    """`utc_time` as ISO 8601 text, as the contract keeps a datetime column's bounds."""
    return utc_time(value).isoformat()


def _bound(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:g}"


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the data contract."""

    name: str
    type: str  # number | integer | category | boolean | datetime
    min: float | str | None = None  # a datetime's: ISO 8601 text, in UTC
    max: float | str | None = None
    allowed: tuple[Any, ...] | None = None  # when set, the only values the column may take
    nullable: bool = False
    description: str = ""
    decimals: int | None = None  # digits simulated rows keep; None: as many as the reference
    role: str = "feature"  # feature | id: an identifier is kept beside the data, never learnt
    # One-hot columns (category, boolean): values beyond the most frequent, or rarer than
    # min_frequency, share one "infrequent" column; or `target` encoding instead.
    max_categories: int | None = None
    min_frequency: float | None = None
    encoding: str = "one_hot"  # one_hot | target
    parts: tuple[str, ...] = ()  # a datetime feature's calendar parts, each a number feature

    @property
    def numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    @property
    def is_id(self) -> bool:
        return self.role == "id"

    @property
    def rules(self) -> str:
        """The contract's rules in words, for column schemas and docs."""
        parts = [self.type]
        if self.min is not None or self.max is not None:
            low = "-∞" if self.min is None else _bound(self.min)
            high = "∞" if self.max is None else _bound(self.max)
            parts.append(f"from {low} to {high}")
        if self.type == "datetime" and not self.is_id:
            parts.append(f"learnt as its {', '.join(self.parts)}")
        if self.allowed is not None:
            parts.append("one of " + ", ".join(str(value) for value in self.allowed))
        parts.append("may be missing" if self.nullable else "never missing")
        if self.is_id:
            parts.append("an identifier, never a feature")
        return ", ".join(parts)


@dataclass(frozen=True)
class ReferenceSpec:
    """The trusted table: the first training data, and the holdout that decides the gate."""

    path: Path | None
    sklearn: str | None
    test_size: float
    random_state: int
    stratify: bool
    time_column: str | None = None  # split by time: the latest rows are the holdout

    @property
    def source(self) -> str:
        """How messages name the table."""
        return str(self.path) if self.path is not None else f"scikit-learn's {self.sklearn} table"


@dataclass(frozen=True)
class GateSpec:
    """When a candidate may replace production; the Launchpad may change all but the metric."""

    metric: Metric
    threshold: float
    tolerance_absolute: float | None = None
    tolerance_relative: float | None = None
    log_loss_tolerance_relative: float = 0.0  # the guards' tolerances: see Task.guard_metrics
    mae_tolerance_relative: float = 0.0
    promote_when: str = "not_worse"  # or better: see gate_statistics.verdict
    confidence: float = 0.95  # of the paired bootstrap intervals
    bootstrap_resamples: int = 2000


@dataclass(frozen=True)
class SearchSpec:
    """What the YAML's `model.search` declares (run by `search.search`)."""

    kinds: tuple[str, ...]
    budget_seconds: float
    cv_folds: int = 5
    metric: str | None = None  # default: the gate's
    # per kind: parameter -> [low, high], [low, high, "log"] or the choices; default: the
    # kind's space in search.DEFAULT_SPACES
    space: dict[str, dict[str, list]] = field(default_factory=dict, hash=False)


def is_range(bounds: list) -> bool:
    """Whether a searched parameter's space is a range ([low, high(, log)]), not choices."""
    return all(isinstance(bound, int | float) for bound in bounds[:2])


@dataclass(frozen=True)
class ModelSpec:
    """Everything one model's assets, checks, jobs and commands need to know about it."""

    name: str
    description: str
    task: Task
    reference: ReferenceSpec
    target: str
    columns: tuple[ColumnSpec, ...]
    kind: ModelKind
    params: dict[str, Any] = field(hash=False)
    search: SearchSpec | None = field(hash=False)
    gate: GateSpec
    cron: str
    timezone: str
    declared_in: Path  # the YAML file
    # Measured at load on the reference: the gate metric of a constant answer, and what is
    # suspicious about the features (a leak, an identifier taken for a feature).
    baseline_score: float | None = None
    data_warnings: tuple[str, ...] = ()
    decision_threshold: DecisionThreshold | None = None  # two classes only
    record_served: bool = True  # `ml-assets serve` records each prediction (monitoring.record)
    min_labelled_rows: int = MIN_LABELLED_ROWS  # before live may call a version degraded
    mlflow_uri: str | None = None  # tracking.mlflow_uri: this model's MLflow server
    # The YAML's attributes that decide an output (no descriptions, no schedule), by section:
    # what each asset's code_version is made of.
    declaration: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def feature_columns(self) -> list[ColumnSpec]:
        """The columns the model learns from: all but the target and the identifiers."""
        return [c for c in self.columns if c.name != self.target and not c.is_id]

    @property
    def identifiers(self) -> list[str]:
        """The identifier columns: kept through ingestion and beside every prediction."""
        return [column.name for column in self.columns if column.is_id]

    @property
    def features(self) -> list[str]:
        return [column.name for column in self.feature_columns]

    @property
    def target_column(self) -> ColumnSpec:
        return next(column for column in self.columns if column.name == self.target)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.task.classes

    def named(self, thing: str) -> str:
        """The name of one of this model's jobs, sensors, schedules or partitions."""
        return f"{self.name}_{thing}"

    def threshold_warning(self, threshold: float) -> str | None:
        """What to say when a constant answer already passes the gate's threshold."""
        metric, baseline = self.gate.metric, self.baseline_score
        if baseline is None or not metric.beats(baseline, threshold):
            return None
        return (
            f"a constant answer already scores {metric.label} {metric.shown(baseline)} on the"
            f" reference holdout, beyond the threshold {threshold:g}: the threshold does not"
            " tell a useful model from a useless one"
        )

    @property
    def gate_checks(self) -> tuple[str, ...]:
        """The blocking checks on model_metrics that decide promotion."""
        return (
            self.gate.metric.threshold_check,
            "not_worse_than_production",
            "beats_baseline",
        )
