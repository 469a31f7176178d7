"""The HTTP prediction service: every declared model, answered by its production version.

    GET  /health                 the process is up
    GET  /ready                  200 when every model has a version loaded, else 503 and why
    GET  /models                 each model: task, target, gate, the version served
    GET  /models/<m>             the version, its holdout metrics, when it was promoted, the
                                 input schema (the contract's feature columns)
    POST /models/<m>/predict     {"rows": [{column: value, ...}, ...]} or a CSV table
    GET  /openapi.json, /docs    with each model's own request and answer schemas

The production alias is followed by itself (see `served_models`): a promotion or a rollback,
from a run, the UI or the CLI, is served within a second, with no restart; a version that
fails its checks is never served. Bad input is a 4xx in the contract's words; no answer
holds a path, a stack trace or a setting. Each prediction answered has a `prediction_id`, and
is recorded under <data>/<m>/served/ (`recorder`) unless the model's `monitoring.record` or
`ml-assets serve --no-record` says not to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from ml_assets.learn.contract import ContractViolation, validate_features
from ml_assets.learn.served_records import new_prediction_ids
from ml_assets.learn.spec import ModelSpec
from ml_assets.serve.follower import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_POLL_SECONDS,
    NotServing,
    ServedModel,
    UnfiniteOutput,
    follow_production,
)
from ml_assets.serve.recorder import (
    DEFAULT_FLUSH_SECONDS,
    ServedRecorder,
    flush_records,
)
from ml_assets.serve.schema import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_ROWS,
    TooManyRows,
    answer_adapter,
    request_adapter,
    request_rows,
)
from ml_assets.store.files import finite, strict_json
from ml_assets.store.registry import ModelRegistry
from ml_assets.store.served import served_folder
from ml_assets.store.tables import UnreadableFile, parse_table

log = logging.getLogger("ml_assets.serve.app")

VERSION_HEADER = "X-Model-Version"
JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")


@dataclass(frozen=True)
class ServiceSettings:
    """What `ml-assets serve` may change."""

    data_dir: str | None = None
    max_rows: int = DEFAULT_MAX_ROWS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    poll_seconds: float = DEFAULT_POLL_SECONDS
    batch_rows: int = DEFAULT_BATCH_ROWS
    record: bool = True  # each model's own `monitoring.record` may turn it off too
    flush_seconds: float = DEFAULT_FLUSH_SECONDS


class Refusal(Exception):
    """A request the service answers with a 4xx: the status, the sentence, the problems."""

    def __init__(self, status: int, detail: str, model: str | None, problems: list | None = None):
        super().__init__(detail)
        self.status, self.detail, self.model, self.problems = status, detail, model, problems


class Problem(BaseModel):
    column: str | None = Field(description="the column, or null for the request as a whole")
    check: str = Field(description="the contract's check that failed")
    rows: list[int] = Field(description="1-based rows that failed it (the first five)")
    examples: list[str] = Field(description="some of the values that failed it")


class ErrorAnswer(BaseModel):
    detail: str = Field(description="what is wrong, in a sentence")
    model: str | None = None
    problems: list[Problem] | None = None


class ModelState(BaseModel):
    version: str | None = Field(description="the version served, or null")
    problem: str | None = Field(description="why production is not what is served, if so")


class Readiness(BaseModel):
    ready: bool
    models: dict[str, ModelState]


class ModelSummary(BaseModel):
    name: str
    description: str
    task: str
    target: str
    gate_metric: str
    gate_threshold: float
    version: str | None = Field(description="the production version served, or null")


class InputColumn(BaseModel):
    name: str
    type: str = Field(description="number, integer, category, boolean or datetime")
    role: str = Field(description="feature, or id: optional, answered beside the prediction")
    min: float | str | None = Field(description="a number, or a datetime's ISO 8601 time")
    max: float | str | None
    allowed: list[Any] | None = Field(description="the only values it may take, if limited")
    nullable: bool
    description: str


class ModelDetails(ModelSummary):
    metrics: dict[str, float | None] = Field(description="holdout metrics of the version")
    training_rows: int | None
    created_at: str | None
    promoted_at: str | None = Field(description="when the version was last put in production")
    problem: str | None
    classes: list[str] | None = Field(description="the classes a classifier predicts")
    input: list[InputColumn] = Field(description="the feature columns a request gives")


def create_app(specs: dict[str, ModelSpec], settings: ServiceSettings | None = None) -> FastAPI:
    """The service for the given models (the command gives every declared one)."""
    settings = settings or ServiceSettings()
    registry = ModelRegistry(data_dir=settings.data_dir)
    models = {
        name: ServedModel(spec, registry.for_model(name), settings.batch_rows)
        for name, spec in specs.items()
    }
    recorders = {
        name: ServedRecorder(spec, served_folder(name, settings.data_dir))
        for name, spec in specs.items()
        if settings.record and spec.record_served
    }

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for served in models.values():  # loaded before the first request is taken
            await asyncio.to_thread(served.follow_production)
        for recorder in recorders.values():  # what a killed service left open
            await asyncio.to_thread(recorder.recover)
        background = [
            asyncio.create_task(follow_production(models, settings.poll_seconds)),
            asyncio.create_task(flush_records(recorders, settings.flush_seconds)),
        ]
        yield
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for recorder in recorders.values():  # a clean shutdown loses nothing
            await asyncio.to_thread(recorder.close)

    app = FastAPI(
        title="ml_assets",
        summary="Predictions from each model's production version, followed as it changes.",
        version="1",
        lifespan=lifespan,
    )

    @app.exception_handler(Refusal)
    async def refused(_: Request, refusal: Refusal) -> JSONResponse:
        body = {"detail": refusal.detail, "model": refusal.model, "problems": refusal.problems}
        return JSONResponse(finite(body), status_code=refusal.status)

    @app.exception_handler(Exception)
    async def broken(request: Request, error: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; the service log says more"}, 500)

    @app.exception_handler(404)
    async def not_found(request: Request, _: Exception) -> JSONResponse:
        detail = f"no such path: {request.url.path}"
        parts = request.url.path.strip("/").split("/")
        if len(parts) >= 2 and parts[0] == "models" and parts[1] not in models:
            detail = f"no model named {parts[1]!r}; the models are: {', '.join(models)}"
        return JSONResponse({"detail": detail}, status_code=404)

    @app.get("/health", summary="The process is up")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        summary="Every model has a production version loaded",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "a model has nothing to serve"}},
    )
    async def ready() -> JSONResponse:
        states = {
            name: ModelState(version=served.version, problem=served.problem)
            for name, served in models.items()
        }
        is_ready = all(state.version is not None for state in states.values())
        body = Readiness(ready=is_ready, models=states).model_dump()
        return JSONResponse(body, status_code=200 if is_ready else 503)

    @app.get("/models", summary="The models and their production versions")
    async def list_models() -> list[ModelSummary]:
        return [_summary(served) for served in models.values()]

    for name, served in models.items():
        _add_model_routes(app, served, settings, recorders.get(name))
    app.openapi = lambda: _openapi(app, specs, settings)
    return app


def _summary(served: ServedModel) -> ModelSummary:
    spec = served.spec
    return ModelSummary(
        name=spec.name,
        description=spec.description,
        task=spec.task.name,
        target=spec.target,
        gate_metric=spec.gate.metric.name,
        gate_threshold=spec.gate.threshold,
        version=served.version,
    )


def _details(served: ServedModel) -> ModelDetails:
    spec, loaded = served.spec, served.loaded
    card = loaded.version.card if loaded else {}
    metrics = finite(card.get("metrics", {}))  # a card written before JSON was kept strict
    return ModelDetails(
        **_summary(served).model_dump(),
        metrics={name: metrics[name] for name in spec.task.metrics if name in metrics},
        training_rows=card.get("training_rows"),
        created_at=card.get("created_at"),
        promoted_at=loaded.promoted_at if loaded else None,
        problem=served.problem,
        classes=list(spec.classes) or None,
        input=[
            InputColumn(
                name=column.name,
                type=column.type,
                role=column.role,
                min=column.min,
                max=column.max,
                allowed=list(column.allowed) if column.allowed is not None else None,
                nullable=column.nullable,
                description=column.description,
            )
            for column in spec.columns
            if column.name != spec.target
        ],
    )


def _add_model_routes(
    app: FastAPI, served: ServedModel, settings: ServiceSettings, recorder: ServedRecorder | None
) -> None:
    """GET /models/<m> and POST /models/<m>/predict, with the model's own schemas; each
    prediction gets its `prediction_id`, and is recorded when the recorder is given."""
    spec = served.spec
    refusals = {
        status: {"description": description, "model": ErrorAnswer}
        for status, description in (
            (413, "the body or the number of rows is over the limit"),
            (415, "neither JSON nor CSV"),
            (422, "the rows break the data contract, or are not JSON or CSV"),
            (503, "nothing of the model is in production yet"),
        )
    }

    @app.get(
        f"/models/{spec.name}",
        summary=f"{spec.name}: the version served and its input schema",
        description=spec.description,
        tags=[spec.name],
        operation_id=f"{spec.name}_details",
    )
    async def details() -> ModelDetails:
        return _details(served)

    @app.post(
        f"/models/{spec.name}/predict",
        summary=f"{spec.name}: predict rows with the production version",
        description=f"{spec.description} At most {settings.max_rows} rows a request.",
        tags=[spec.name],
        operation_id=f"{spec.name}_predict",
        responses=refusals,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref(f"{spec.name}_request")},
                    "text/csv": {
                        "schema": {
                            "type": "string",
                            "description": "a header of the feature columns, then the rows",
                        }
                    },
                },
            },
            "responses": {
                "200": {
                    "description": "one prediction per row, in the rows' order",
                    "headers": {
                        VERSION_HEADER: {
                            "description": "the version that answered",
                            "schema": {"type": "string"},
                        }
                    },
                    "content": {"application/json": {"schema": _ref(f"{spec.name}_answer")}},
                }
            },
        },
    )
    async def predict(request: Request) -> Response:
        body = await _body(request, settings.max_body_bytes, spec.name)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if media_type in JSON_TYPES or media_type.endswith("+json"):
                rows = request_rows(spec, body, settings.max_rows)
                loaded, answers = await served.predict_rows(rows)
            elif media_type in CSV_TYPES:
                table = _csv_rows(spec, body, settings.max_rows)
                loaded, answers = served.predict_table(table)
                rows = table
            else:
                raise Refusal(
                    415,
                    f"send application/json or text/csv, not {media_type or 'no content type'}",
                    spec.name,
                )
        except ContractViolation as violation:
            raise Refusal(422, str(violation), spec.name, violation.problems) from None
        except TooManyRows as error:
            raise Refusal(413, str(error), spec.name) from None
        except NotServing as error:
            raise Refusal(503, str(error), spec.name) from None
        except UnfiniteOutput as error:
            problem = {"column": None, "check": str(error), "rows": error.rows, "examples": []}
            raise Refusal(
                422, f"the request to {spec.name}: {error}", spec.name, [problem]
            ) from None
        answers = [
            {"prediction_id": prediction_id, **answer}
            for prediction_id, answer in zip(new_prediction_ids(len(answers)), answers, strict=True)
        ]
        if recorder is not None:
            recorder.record(loaded.name, rows, answers)
        answer = {"model": spec.name, "version": loaded.name, "predictions": answers}
        return Response(
            strict_json(answer, indent=None),
            media_type="application/json",
            headers={VERSION_HEADER: loaded.name},
        )


async def _body(request: Request, limit: int, model: str) -> bytes:
    """The request's body, refused as soon as it is over `limit` bytes. (FastAPI's own
    `max_body_size` answers a declared length over it in plain text, not in our JSON.)"""
    too_large = Refusal(413, f"the body is over the limit of {limit} bytes", model)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _csv_rows(spec: ModelSpec, body: bytes, max_rows: int):
    """A CSV request read as `ml-assets predict` reads a file and checked by the contract."""
    try:
        table, _ = parse_table("the request.csv", body, columns=[*spec.identifiers, *spec.features])
    except UnreadableFile as error:
        raise Refusal(
            422, str(error).replace("the request.csv", "the CSV body"), spec.name
        ) from None
    unknown = [c for c in table.columns if c not in spec.features and c not in spec.identifiers]
    if unknown:
        problems = [
            {"column": column, "check": "not a column of the contract", "rows": [], "examples": []}
            for column in unknown
        ]
        raise ContractViolation(f"the request to {spec.name}", problems)
    if len(table) > max_rows:
        raise TooManyRows(f"a request to {spec.name} takes at most {max_rows} rows")
    return validate_features(spec, table, source=f"the request to {spec.name}")


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _openapi(app: FastAPI, specs: dict[str, ModelSpec], settings: ServiceSettings) -> dict:
    """FastAPI's document, with each model's request and answer schemas among the components."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    template = "#/components/schemas/{model}"
    for spec in specs.values():
        for adapter in (request_adapter(spec, settings.max_rows), answer_adapter(spec)):
            schema = adapter.json_schema(ref_template=template)
            schemas.update(schema.pop("$defs", {}))
            schemas[schema["title"]] = schema
    app.openapi_schema = document
    return document
