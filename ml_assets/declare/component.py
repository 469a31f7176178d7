"""`TabularModel`: one model declared in one YAML file, turned into its assets, checks, jobs,
schedule and sensors.

    ml_assets/defs/<name>/defs.yaml
        type: ml_assets.TabularModel
        attributes: {name: ..., task: ..., reference: ..., target: ..., columns: ...,
                     model: ..., gate: ..., schedule: ...}

A file that cannot work is refused when the definitions load (`dg check defs`, `dagster
definitions validate`, the webserver), with the file, the line, the attribute and what is
allowed; never in a run.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

import dagster as dg
from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, field_validator

from ml_assets.declare.errors import DeclarationError, InvalidModelFile
from ml_assets.declare.load_checks import checked_against_data
from ml_assets.declare.scaffold import ScaffoldParams, declaration, render
from ml_assets.learn.reference import BUNDLED_TABLES
from ml_assets.learn.search import timed_budget
from ml_assets.learn.spec import (
    CALENDAR_PARTS,
    DEFAULT_CALENDAR_PARTS,
    DEFAULT_MAX_CATEGORIES,
    MIN_LABELLED_ROWS,
    NUMERIC_TYPES,
    ColumnSpec,
    GateSpec,
    ModelSpec,
    ReferenceSpec,
    SearchSpec,
    is_range,
    utc_text,
)
from ml_assets.learn.tasks import TASKS, DecisionThreshold
from ml_assets.pipeline.automation import model_automation
from ml_assets.pipeline.checks import guard_tolerance, model_checks
from ml_assets.pipeline.deployment import deployment_assets, rollback_job
from ml_assets.pipeline.ingestion import ingestion_assets
from ml_assets.pipeline.live_performance import live_performance_asset, retrain_when_degraded
from ml_assets.pipeline.monitoring import (
    labels_job,
    labels_sensor,
    monitoring_assets,
    monitoring_checks,
    served_job,
    served_sensor,
)
from ml_assets.pipeline.training import training_assets
from ml_assets.store import settings

DEFAULT_CRON = "0 23 * * 0"  # Sunday 23:00
ANSWER_FIELDS = (
    "prediction",
    "probabilities",
    "prediction_id",
)  # an id column beside them needs another name


class ReferenceDeclaration(dg.Model):
    """The trusted table: the first training data, and the holdout that decides the gate."""

    path: str | None = Field(
        default=None, description="CSV or Parquet; relative to the project root, or absolute"
    )
    sklearn: str | None = Field(
        default=None, description=f"a table bundled with scikit-learn: {', '.join(BUNDLED_TABLES)}"
    )
    test_size: float = Field(default=0.2, description="the holdout's share, between 0 and 1")
    random_state: int = Field(default=42, description="the seed of the reference split")
    stratify: bool = Field(default=False, description="classification only: split by class")
    split: Literal["random", "time"] = Field(
        default="random",
        description="random (train_test_split), or time: the latest test_size of the rows are"
        " the holdout",
    )
    time_column: str | None = Field(
        default=None, description="with split: time, the datetime column that orders the rows"
    )

    @field_validator("sklearn")
    @classmethod
    def _bundled(cls, value: str | None) -> str | None:
        if value is not None and value not in BUNDLED_TABLES:
            raise ValueError(f"{value!r} is not bundled; use one of: {', '.join(BUNDLED_TABLES)}")
        return value

    @field_validator("test_size")
    @classmethod
    def _a_share(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError(f"{value:g} is not a share of the rows: give a number between 0 and 1")
        return value


class ColumnDeclaration(dg.Model):
    """One column of the data contract."""

    type: Literal["number", "integer", "category", "boolean", "datetime"]
    # ints stay ints: refusals then read "le(120)", not 120.0; a datetime's are ISO 8601 text
    min: int | float | str | None = None
    max: int | float | str | None = None
    allowed: list[Any] | None = None
    nullable: bool = False
    description: str = ""
    decimals: int | None = Field(
        default=None, description="digits simulated rows keep (number columns), 0 to 12"
    )
    role: Literal["feature", "id"] = Field(
        default="feature",
        description="id: an identifier, kept beside the data and every prediction, never learnt",
    )
    max_categories: int | None = Field(
        default=None,
        description=f"category columns: values beyond the most frequent ones (default"
        f" {DEFAULT_MAX_CATEGORIES} columns in all) share one 'infrequent' column",
    )
    min_frequency: int | float | None = Field(
        default=None,
        description="category columns: values seen fewer times (a count, or a share below 1)"
        " share the 'infrequent' column",
    )
    parts: list[Literal[CALENDAR_PARTS]] | None = Field(  # type: ignore[valid-type]
        default=None,
        description="datetime columns: the calendar parts learnt from it, each a number"
        f" (default: {', '.join(DEFAULT_CALENDAR_PARTS)})",
    )
    encoding: Literal["one_hot", "target"] = Field(
        default="one_hot",
        description="category columns: one_hot (default), or target (scikit-learn's TargetEncoder)",
    )

    @field_validator("max_categories", "min_frequency", "encoding")
    @classmethod
    def _categories_only(cls, value, info: ValidationInfo):
        default = "one_hot" if info.field_name == "encoding" else None
        if value != default and info.data.get("type") != "category":
            raise ValueError(f"{info.field_name} applies to category columns only")
        if info.field_name == "max_categories" and value is not None and value < 2:
            raise ValueError("max_categories is 2 or more (one is the 'infrequent' column)")
        if info.field_name == "min_frequency" and value is not None:
            if value <= 0 or (value > 1 and value % 1):
                raise ValueError(
                    f"min_frequency is a count (1, 2, ...) or a share between 0 and 1, not {value}"
                )
            if value >= 1:
                return int(value)  # scikit-learn reads an int as a count, a float as a share
        return value

    @field_validator("min", "max", mode="before")
    @classmethod
    def _dates_as_text(cls, value):
        """YAML reads `2024-01-31` as a date: the contract keeps times as ISO 8601 text."""
        return value.isoformat() if isinstance(value, datetime.date) else value

    @field_validator("min", "max")
    @classmethod
    def _a_bound(cls, value, info: ValidationInfo):
        kind = info.data.get("type")
        if value is None or kind is None:
            return value
        if kind == "datetime":
            try:
                return utc_text(datetime.datetime.fromisoformat(str(value)))
            except ValueError:
                raise ValueError(
                    f"a datetime column's {info.field_name} is a date or a time such as"
                    f" 2024-01-31 or 2024-01-31T08:00:00Z, not {value!r}"
                ) from None
        if kind not in NUMERIC_TYPES or isinstance(value, str):
            raise ValueError(
                f"{info.field_name} applies to number, integer (a number) and datetime (a date)"
                " columns only"
            )
        return value

    @field_validator("decimals", "parts")
    @classmethod
    def _numeric_only(cls, value, info: ValidationInfo):
        wanted = ("datetime",) if info.field_name == "parts" else NUMERIC_TYPES
        if value is not None and info.data.get("type") not in wanted:
            raise ValueError(f"{info.field_name} applies to {' and '.join(wanted)} columns only")
        if info.field_name == "parts" and value is not None and not value:
            raise ValueError("list at least one part, or leave `parts` out for the default")
        if info.field_name == "decimals" and value is not None and not 0 <= value <= 12:
            raise ValueError(f"decimals is a number of digits from 0 to 12, not {value}")
        return value

    @field_validator("max")
    @classmethod
    def _ordered(cls, value, info: ValidationInfo):
        low = info.data.get("min")
        if value is not None and low is not None and value < low:
            raise ValueError(f"max {value} is below min {low}")
        return value

    @field_validator("allowed")
    @classmethod
    def _allowed_values(cls, value, info: ValidationInfo):
        kind = info.data.get("type")
        if value is None or kind is None:
            return value
        if not value:
            raise ValueError("list at least one allowed value, or leave `allowed` out")
        if kind == "boolean":
            raise ValueError("a boolean column takes true and false; `allowed` does not apply")
        if kind == "category":
            return [str(item) for item in value]
        if any(isinstance(item, bool) or not isinstance(item, int | float) for item in value):
            raise ValueError(f"a {kind} column allows numbers only: {value}")
        if kind == "integer" and any(float(item) % 1 for item in value):
            raise ValueError(f"an integer column allows whole numbers only: {value}")
        return [float(item) for item in value]


class SearchDeclaration(dg.Model):
    """A search for the best kind and parameters, cross-validated on the training rows."""

    kinds: list[str]
    budget_seconds: float = Field(description="wall clock for the whole search")
    cv_folds: int = 5
    metric: str | None = Field(default=None, description="default: the gate's metric")
    space: dict[str, dict[str, list]] = Field(
        default_factory=dict, description="per kind: parameter -> [low, high(, log)] or choices"
    )


class EstimatorDeclaration(dg.Model):
    """The model kind and its estimator's own parameters, or a search for them."""

    kind: str | None = Field(default=None, description="required without a search")
    params: dict[str, Any] = Field(default_factory=dict)
    search: SearchDeclaration | None = None
    decision_threshold: float | Literal["tune"] | dict[str, str] | None = Field(
        default=None,
        description="two classes: the positive class's probability at or above which it is"
        " answered (default 0.5), `tune` (for the gate metric, or balanced accuracy when the"
        " gate's is a probability metric), or {tune: <metric>}",
    )


# Under 200 resamples a 95 % interval's ends rest on five values each; over 100 000 the
# intervals are no better and the gate slow.
MIN_RESAMPLES, MAX_RESAMPLES = 200, 100_000


class GateDeclaration(dg.Model):
    """When a candidate may replace the production model."""

    metric: str
    threshold: float
    tolerance_absolute: float | None = Field(
        default=None, description="how much worse than production it may be, in metric units"
    )
    tolerance_relative: float | None = Field(
        default=None, description="the same as a fraction; negative demands improvement"
    )
    log_loss_tolerance_relative: float | None = Field(
        default=None,
        description="classification: how much worse its log loss may be, as a fraction"
        " (default 0: no worse)",
    )
    mae_tolerance_relative: float | None = Field(
        default=None,
        description="regression: how much worse its MAE may be, as a fraction (default 0: no"
        " worse)",
    )
    promote_when: Literal["not_worse", "better"] = Field(
        default="not_worse",
        description="not_worse: refused only when its interval is wholly worse than production"
        " beyond the tolerance; better: promoted only when wholly better",
    )
    confidence: float = Field(default=0.95, description="of the paired bootstrap intervals")
    bootstrap_resamples: int = Field(default=2000, description="resamples of the holdout rows")

    @field_validator("tolerance_relative", "log_loss_tolerance_relative", "mae_tolerance_relative")
    @classmethod
    def _a_fraction(cls, value: float | None) -> float | None:
        if value is not None and value <= -1:
            raise ValueError(f"{value:g} would demand more than a 100% improvement; give > -1")
        return value

    @field_validator("confidence")
    @classmethod
    def _a_confidence(cls, value: float) -> float:
        if not 0.5 <= value < 1:
            raise ValueError(f"{value:g} is not a confidence; give one from 0.5 to below 1")
        return value

    @field_validator("bootstrap_resamples")
    @classmethod
    def _enough_resamples(cls, value: int) -> int:
        if not MIN_RESAMPLES <= value <= MAX_RESAMPLES:
            raise ValueError(f"give from {MIN_RESAMPLES} to {MAX_RESAMPLES} resamples")
        return value


class ScheduleDeclaration(dg.Model):
    """When the model is retrained on all data so far, whatever lands."""

    cron: str = DEFAULT_CRON
    timezone: str | None = Field(
        default=None, description=f"an IANA name; default ${settings.TIMEZONE_VARIABLE}, else UTC"
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            dg.ScheduleDefinition(name="cron_check", cron_schedule=value, job_name="cron_check")
        except dg.DagsterInvalidDefinitionError:
            raise ValueError(f"{value!r} is not a cron schedule (e.g. {DEFAULT_CRON!r})") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and value not in zoneinfo.available_timezones():
            raise ValueError(f"{value!r} is not an IANA timezone name (e.g. 'Europe/Paris')")
        return value


class MonitoringDeclaration(dg.Model):
    """What is watched after promotion."""

    record: bool = Field(
        default=True,
        description="record every prediction `ml-assets serve` answers under <data>/<m>/served/",
    )
    min_labelled_rows: int = Field(
        default=MIN_LABELLED_ROWS,
        description="the labelled rows a production version needs before its live performance"
        " may call it degraded",
    )

    @field_validator("min_labelled_rows")
    @classmethod
    def _enough_to_resample(cls, value: int) -> int:
        if value < 2:
            raise ValueError(f"give at least 2 labelled rows, not {value}")
        return value


class TrackingDeclaration(dg.Model):
    """Where the model's candidates are tracked besides Dagster."""

    mlflow_uri: str | None = Field(
        default=None,
        description="an MLflow tracking server for this model's candidates (default"
        " $MLFLOW_TRACKING_URI; neither: not tracked); `{{ env.X }}` keeps a secret out of the"
        " file",
    )


def _rendered(context: dg.ResolutionContext, value: Any) -> Any:
    """The value with its templates (`{{ env.X }}`) rendered; a string without one is kept
    as it is (rendering every string of a large contract took most of its load)."""
    if isinstance(value, dict):
        return {key: _rendered(context.at_path(key), item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rendered(context.at_path(index), item) for index, item in enumerate(value)]
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return context.resolve_value(value)
    return value


def _as_declared(model_field_name: str | None = None) -> dg.Resolver:
    """Templates rendered, then validated as the class declares, so that an error names the
    attribute and what it allows rather than a union of schemas."""
    return dg.Resolver(
        _rendered, model_field_type=dict[str, Any], model_field_name=model_field_name
    )


class TabularModelScaffolder(dg.Scaffolder[ScaffoldParams]):
    """Writes a model's defs.yaml as `ml-assets new-model` does, inferred from a table."""

    @classmethod
    def get_scaffold_params(cls) -> type[ScaffoldParams]:
        return ScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[ScaffoldParams]) -> None:
        params = request.params
        root = request.project_root or Path.cwd()
        source = Path(params.source)
        text = scaffolded_yaml(
            request.target_path.name,
            source if source.is_absolute() else root / source,
            params.target,
            params.task,
            root,
        )
        (request.target_path / "defs.yaml").write_text(text, encoding="utf-8")


@dg.scaffold_with(TabularModelScaffolder)
class TabularModel(dg.Component, dg.Model, dg.Resolvable):
    """A tabular model kept trained, checked and deployed as data arrives: its reference data,
    landed batches, dataset, features, candidate, metrics, production version and predictions,
    with the blocking checks that decide promotion, a schedule and the sensors."""

    name: str = Field(description="asset key prefix and names' prefix: [a-z][a-z0-9_]*")
    description: str = ""
    task: Literal["regression", "classification"]
    reference: Annotated[ReferenceDeclaration, _as_declared()]
    columns: Annotated[dict[str, ColumnDeclaration], _as_declared()]
    target: str
    estimator: Annotated[EstimatorDeclaration, _as_declared("model")]
    gate: Annotated[GateDeclaration, _as_declared()]
    schedule: Annotated[ScheduleDeclaration, _as_declared()] = ScheduleDeclaration()
    monitoring: Annotated[MonitoringDeclaration, _as_declared()] = MonitoringDeclaration()
    tracking: Annotated[TrackingDeclaration, _as_declared()] = TrackingDeclaration()

    _spec: ModelSpec | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _a_name(cls, value: str) -> str:
        if not re.fullmatch(settings.MODEL_NAME_PATTERN, value):
            raise ValueError(
                f"{value!r} cannot name a model: lower-case letters, digits and _, from a letter"
            )
        return value

    def _check_declaration(self) -> None:
        """What no single attribute can tell: the attributes against each other."""
        task, reference, columns = TASKS[self.task], self.reference, self.columns
        if (reference.path is None) == (reference.sklearn is None):
            raise DeclarationError(
                ("reference",), "give either `path` (a CSV or Parquet file) or `sklearn` (a name)"
            )
        if reference.stratify and not task.predicts_classes:
            raise DeclarationError(("reference", "stratify"), "stratify applies to classification")
        self._check_time_split()
        if len(columns) < 2:
            raise DeclarationError(("columns",), "declare the target and at least one feature")
        if self.target not in columns:
            raise DeclarationError(
                ("target",),
                f"{self.target!r} is not a column; the columns are: {', '.join(columns)}",
            )
        target = columns[self.target]
        if target.nullable:
            raise DeclarationError(
                ("columns", self.target, "nullable"),
                f"the target {self.target!r} cannot be nullable: a row without one is unusable",
            )
        if target.role == "id":
            raise DeclarationError(
                ("columns", self.target, "role"), "the target is what is learnt: not an id"
            )
        if all(name == self.target or column.role == "id" for name, column in columns.items()):
            raise DeclarationError(("columns",), "declare at least one feature (not an id)")
        for name, column in columns.items():
            if column.role == "id" and name in ANSWER_FIELDS:
                raise DeclarationError(
                    ("columns", name, "role"),
                    f"an id is answered beside the prediction: rename {name!r}, a name the"
                    f" answer uses ({', '.join(ANSWER_FIELDS)})",
                )
        wanted = ("category",) if task.predicts_classes else NUMERIC_TYPES
        if target.type not in wanted:
            raise DeclarationError(
                ("columns", self.target, "type"),
                f"a {self.task} target is a {' or '.join(wanted)} column, not {target.type}",
            )
        self._check_search(task)
        self._check_decision_threshold(task)
        if self.estimator.kind is None and self.estimator.search is None:
            raise DeclarationError(("model", "kind"), "give a kind, or a search")
        if (self.estimator.kind or self.estimator.search.kinds[0]) not in task.kinds:
            raise DeclarationError(
                ("model", "kind"),
                f"{self.estimator.kind!r} is not a {self.task} model kind; use one of:"
                f" {', '.join(task.kinds)}",
            )
        if self.gate.metric not in task.metrics:
            raise DeclarationError(
                ("gate", "metric"),
                f"{self.gate.metric!r} is not a {self.task} metric; use one of:"
                f" {', '.join(task.metrics)}",
            )
        for name in ("log_loss", "mae"):
            tolerance = guard_tolerance(name)
            if getattr(self.gate, tolerance) is not None and name not in task.guard_metrics:
                raise DeclarationError(
                    ("gate", tolerance),
                    f"applies to a model whose guard metric is {name}; a {self.task}'s are:"
                    f" {', '.join(task.guard_metrics)}",
                )

    def _check_search(self, task) -> None:
        search = self.estimator.search
        if search is None:
            return
        where = ("model", "search")
        unknown = [kind for kind in search.kinds if kind not in task.kinds]
        if not search.kinds or unknown:
            raise DeclarationError(
                (*where, "kinds"),
                f"{', '.join(map(repr, unknown)) or 'none'}: give kinds of a {self.task}:"
                f" {', '.join(task.kinds)}",
            )
        if search.budget_seconds <= 0:
            raise DeclarationError((*where, "budget_seconds"), "give a positive number of seconds")
        if search.cv_folds < 2:
            raise DeclarationError((*where, "cv_folds"), "give at least 2 folds")
        if search.metric is not None and search.metric not in task.metrics:
            raise DeclarationError((*where, "metric"), f"use one of: {', '.join(task.metrics)}")
        for kind, space in search.space.items():
            if kind not in search.kinds:
                raise DeclarationError((*where, "space", kind), "is not one of the kinds searched")
            taken = task.kinds[kind].unknown_params(space)
            if taken:
                raise DeclarationError(
                    (*where, "space", kind),
                    f"{task.kinds[kind].estimator} does not take {', '.join(taken)}",
                )
            for name, bounds in space.items():
                if is_range(bounds) and not (len(bounds) in (2, 3) and bounds[0] < bounds[1]):
                    raise DeclarationError(
                        (*where, "space", kind, name),
                        "give [low, high] or [low, high, log] with low < high, or the choices",
                    )

    def _check_decision_threshold(self, task) -> None:
        threshold, where = self.estimator.decision_threshold, ("model", "decision_threshold")
        if threshold is None:
            return
        if not task.predicts_classes:
            raise DeclarationError(where, "applies to a classification of two classes")
        if isinstance(threshold, float) and not 0 < threshold < 1:
            raise DeclarationError(where, f"{threshold:g} is not a probability between 0 and 1")
        if isinstance(threshold, dict) and (
            set(threshold) != {"tune"} or threshold["tune"] not in task.threshold_metrics
        ):
            raise DeclarationError(
                where,
                f"give a probability, `tune`, or {{tune: <metric>}} with one of:"
                f" {', '.join(task.threshold_metrics)} (the metrics a threshold moves)",
            )

    def _check_time_split(self) -> None:
        reference, columns = self.reference, self.columns
        if reference.split == "random":
            if reference.time_column is not None:
                raise DeclarationError(
                    ("reference", "time_column"), "applies with `split: time` only"
                )
            return
        if reference.stratify:
            raise DeclarationError(
                ("reference", "stratify"), "a split by time keeps the latest rows: not by class"
            )
        name = reference.time_column
        column = columns.get(name) if name is not None else None
        if column is not None and column.type == "datetime" and not column.nullable:
            return
        if name is None:
            cause = "give the datetime column that orders the rows"
        elif column is None:
            cause = f"{name!r} is not a column"
        elif column.type != "datetime":
            cause = f"{name!r} is a {column.type} column, not a datetime"
        else:
            cause = f"{name!r} is declared nullable: true; declare it nullable: false"
        datetimes = [n for n, c in columns.items() if c.type == "datetime" and not c.nullable]
        raise DeclarationError(
            ("reference", "time_column"),
            f"{cause}: a split by time needs a datetime column that is never missing; the"
            " columns that can order the rows:"
            f" {', '.join(datetimes) or 'none (declare one as datetime, never missing)'}",
        )

    @classmethod
    def load(cls, attributes, context: dg.ComponentLoadContext) -> TabularModel:
        """Resolve the YAML and check it against its data, or refuse it naming the line."""
        yaml_file = Path(context.path) / "defs.yaml"
        positions = context.resolution_context.source_position_tree
        try:
            component = super().load(attributes, context)
            component._spec = component.resolve(Path(context.project_root), yaml_file)
        except ValidationError as error:
            raise InvalidModelFile(_validation_message(yaml_file, positions, error)) from None
        except DeclarationError as error:
            raise InvalidModelFile(
                _located(yaml_file, positions, error.attribute, str(error))
            ) from None
        return component

    @property
    def spec(self) -> ModelSpec:
        """The checked spec; for a component made in Python, resolved on first use."""
        if self._spec is None:
            self._spec = self.resolve(Path.cwd(), Path("<python>"))
        return self._spec

    def resolve(self, project_root: Path, yaml_file: Path) -> ModelSpec:
        """The spec of this declaration, checked against its reference table and scikit-learn."""
        self._check_declaration()
        draft = self._draft(project_root, yaml_file)
        return checked_against_data(draft, self.model_dump(mode="json"))

    def _draft(self, project_root: Path, yaml_file: Path) -> ModelSpec:
        reference = self.reference
        path = None
        if reference.path is not None:
            path = Path(reference.path).expanduser()
            path = (path if path.is_absolute() else project_root / path).resolve()
            if not path.is_file():
                raise DeclarationError(("reference", "path"), f"no such file: {path}")
        target = self.columns[self.target]
        gate, search = self.gate, self.estimator.search
        task = TASKS[self.task](tuple(target.allowed or ()))
        return ModelSpec(
            name=self.name,
            description=self.description or f"{self.task} of {self.target}",
            task=task,
            reference=ReferenceSpec(
                path=path,
                sklearn=reference.sklearn,
                test_size=reference.test_size,
                random_state=reference.random_state,
                stratify=reference.stratify,
                time_column=reference.time_column if reference.split == "time" else None,
            ),
            target=self.target,
            columns=tuple(
                ColumnSpec(
                    name=name,
                    type=column.type,
                    min=column.min,
                    max=column.max,
                    allowed=None if column.allowed is None else tuple(column.allowed),
                    nullable=column.nullable,
                    description=column.description,
                    decimals=column.decimals,
                    role=column.role,
                    max_categories=(
                        column.max_categories or DEFAULT_MAX_CATEGORIES
                        if column.type in ("category", "boolean")
                        else None
                    ),
                    min_frequency=column.min_frequency,
                    encoding=column.encoding,
                    parts=(
                        tuple(column.parts or DEFAULT_CALENDAR_PARTS)
                        if column.type == "datetime"
                        else ()
                    ),
                )
                for name, column in self.columns.items()
            ),
            kind=task.kinds[self.estimator.kind or self.estimator.search.kinds[0]],
            params=dict(self.estimator.params),
            search=None
            if search is None
            else SearchSpec(
                kinds=tuple(search.kinds),
                budget_seconds=search.budget_seconds,
                cv_folds=search.cv_folds,
                metric=search.metric,
                space=search.space,
            ),
            decision_threshold=_decision_threshold(self.estimator.decision_threshold, gate.metric),
            gate=GateSpec(
                metric=task.metrics[gate.metric],
                threshold=gate.threshold,
                tolerance_absolute=gate.tolerance_absolute,
                tolerance_relative=gate.tolerance_relative,
                log_loss_tolerance_relative=gate.log_loss_tolerance_relative or 0.0,
                mae_tolerance_relative=gate.mae_tolerance_relative or 0.0,
                promote_when=gate.promote_when,
                confidence=gate.confidence,
                bootstrap_resamples=gate.bootstrap_resamples,
            ),
            cron=self.schedule.cron,
            timezone=self.schedule.timezone or settings.schedule_timezone(),
            declared_in=yaml_file,
            record_served=self.monitoring.record,
            min_labelled_rows=self.monitoring.min_labelled_rows,
            mlflow_uri=self.tracking.mlflow_uri,
            declaration=self._deciding_attributes(),
        )

    def _deciding_attributes(self) -> dict:
        """The attributes that decide what the assets make: descriptions, the name, the
        schedule, monitoring and tracking say when and how things are shown, watched or
        mirrored, not what they are."""
        declared = self.model_dump(
            mode="json", exclude={"name", "description", "schedule", "monitoring", "tracking"}
        )
        for column in declared["columns"].values():
            column.pop("description", None)
        return declared

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        spec = self.spec
        refuse_a_second_declaration(
            spec, context.component_tree.get_all_components(of_type=TabularModel)
        )
        automation = model_automation(spec)
        served, labelled = served_job(spec), labels_job(spec)
        training = next(job for job in automation["jobs"] if job.name == spec.named("training_job"))
        return dg.Definitions(
            assets=[
                *ingestion_assets(spec), *training_assets(spec), *deployment_assets(spec),
                *monitoring_assets(spec), live_performance_asset(spec),
            ],
            asset_checks=[*model_checks(spec), *monitoring_checks(spec)],
            jobs=[*automation["jobs"], rollback_job(spec), served, labelled],
            schedules=automation["schedules"],
            sensors=[
                *automation["sensors"], served_sensor(spec, served), labels_sensor(spec, labelled),
                retrain_when_degraded(spec, training),
            ],
        )  # fmt: skip


def _decision_threshold(declared, gate_metric: str) -> DecisionThreshold | None:
    """The declared threshold: a probability, or tuned for a metric (`tune`: the gate's, or
    balanced accuracy when the gate's does not depend on a threshold)."""
    if declared is None:
        return None
    if isinstance(declared, float):
        return DecisionThreshold(value=declared)
    if isinstance(declared, dict):
        return DecisionThreshold(tuned_for=declared["tune"])
    moved = gate_metric in TASKS["classification"].threshold_metrics
    return DecisionThreshold(tuned_for=gate_metric if moved else "balanced_accuracy")


# The YAML says `model:`; the class cannot have a field of that name (Resolvable.model).
_YAML_NAMES = {"estimator": "model"}


def _validation_message(yaml_file: Path, positions, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        attribute = tuple(_YAML_NAMES.get(str(part), part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        problems.append(_located(yaml_file, positions, attribute, message))
    return "\n".join(problems)


def _located(yaml_file: Path, positions, attribute: tuple, message: str) -> str:
    """`file:line - attributes.x.y: message`, and the lines around it when they are known."""
    dotted = ".".join(str(part) for part in ("attributes", *attribute))
    if positions is None:
        return f"{yaml_file} - {dotted}: {message}"
    source = positions.source_error(
        yaml_path=["attributes", *attribute], inline_error_message=message, value_error=True
    )
    line = source.start_line_no
    try:
        lines = Path(source.file_name).read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    shown = [
        f"{'>' if number == line else ' '} {number:4} | {lines[number - 1]}"
        for number in range(max(1, line - 2), min(len(lines), line + 1) + 1)
    ]
    return "\n".join([f"{source.file_name}:{line} - {dotted}: {message}", *shown])


def refuse_a_second_declaration(spec: ModelSpec, components: list[TabularModel]) -> None:
    """Refuse two YAML files that declare one model name: they would share every name."""
    for other in components:
        if other.spec.name == spec.name and other.spec.declared_in != spec.declared_in:
            first, second = sorted([spec.declared_in, other.spec.declared_in])
            raise InvalidModelFile(
                f"{first} and {second} both declare the model {spec.name!r} (attributes.name):"
                " each model needs a name of its own"
            )


def scaffolded_yaml(
    name: str, source: Path, target: str, task: str | None = None, root: Path | None = None
) -> str:
    """The YAML `new-model` and `dg scaffold defs` write: the contract inferred from the table
    (`scaffold.declaration`), and a declared search's budget timed on the table itself."""
    root = root or Path.cwd()
    inferred = declaration(name, source, target, task, root)
    declared = inferred.attributes["model"].get("search")
    if declared is not None:
        try:
            draft = TabularModel.resolve_from_dict(inferred.attributes)
            draft._check_declaration()
            spec = draft._draft(root, root / name / "defs.yaml")
            declared["budget_seconds"], timed = timed_budget(spec, inferred.labelled)
        except (DeclarationError, ValueError, TypeError):
            timed = "not timed: the declaration does not load yet (see below)"
        inferred.notes[("model", "search")] += f"; {timed}"
    return render(inferred)
