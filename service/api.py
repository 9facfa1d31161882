"""REST endpoints under ``/api/v1``, the health probes, and JSON errors for every route.

Handlers parse their body with pydantic (``parse_body``), call one gateway or
pipeline method, and return. Every refusal is ``{"error": "<a sentence>"}``
with a 4xx status: malformed JSON 400, a body of the wrong shape 422 (naming
the field), a missing or wrong token 401, an unknown name 404, a name taken
409, a body too large 413.

``OPERATIONS`` lists every REST operation with its body and response models;
``openapi.py`` builds the OpenAPI document from it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ValidationError

from .config import NirModelConfig, PipelineConfig, Settings
from .gateway import Gateway, PipelineExistsError
from .keys import GATEWAY
from .model_store import (
    ModelExistsError,
    ModelRejectedError,
    ModelStore,
    ModelTooLargeError,
    check_model_name,
)
from .pipeline import Pipeline
from .schemas import (
    Deleted,
    ErrorBody,
    GatewayStatus,
    Health,
    ModelInfo,
    ModelList,
    PipelineList,
    PipelineSettingsPatch,
    PipelineView,
    SinkList,
    SinkView,
    SourceList,
    SourceView,
    describe_validation_error,
)

log = logging.getLogger("spikegate.api")

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MODEL_STORE = web.AppKey("model_store", ModelStore)
LIFECYCLE = web.AppKey("pipeline_lifecycle", asyncio.Lock)
"""Held while a pipeline is created, started, stopped or deleted: one change at a time."""
UPLOAD_CHUNK_BYTES = 64 * 1024


# --- errors ---------------------------------------------------------------------------


def error_response(status: int, error: str | ErrorBody,
                   headers: dict[str, str] | None = None) -> web.Response:
    body = error if isinstance(error, ErrorBody) else ErrorBody(error=error)
    return web.json_response(body.model_dump(exclude_none=True), status=status,
                             headers=headers)


def _sentence(request: web.Request, exc: web.HTTPException) -> str:
    text = (exc.text or "").strip()
    if text and text != f"{exc.status}: {exc.reason}":
        return text
    if exc.status == 404:
        return f"nothing at {request.path}"
    if exc.status == 405:
        allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
        return f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
    return f"{exc.reason.lower()}"


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every refusal into ``{"error": "..."}``; an unexpected failure is a logged 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items()
                   if k in ("WWW-Authenticate", "Allow", "Retry-After")}
        if isinstance(exc, _Unprocessable):
            return error_response(exc.status, exc.error_body, headers)
        return error_response(exc.status, _sentence(request, exc), headers)
    except ConnectionResetError:
        raise
    except Exception as exc:  # the service keeps running; the client gets a sentence
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, f"internal error: {type(exc).__name__}")


# --- parsing --------------------------------------------------------------------------


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    """JSON from ``raw``; HTTP 400 with the place of the fault when it is not JSON."""
    if not raw.strip():
        raise web.HTTPBadRequest(text="the request needs a JSON body")
    try:
        return json.loads(raw.decode("utf-8"), parse_float=_finite_float,
                          parse_constant=_no_constants)
    except UnicodeDecodeError as exc:
        raise web.HTTPBadRequest(text=f"malformed JSON: byte {exc.start} is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(
            text=f"malformed JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise web.HTTPBadRequest(text="malformed JSON: nested too deeply") from None
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"malformed JSON: {exc}") from None


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON body as ``model``: 400 if not JSON, 422 naming the bad field."""
    if request.content_type not in ("application/json", "application/octet-stream", "") \
            and not request.content_type.endswith("+json"):
        raise web.HTTPUnsupportedMediaType(
            text=f"send the body as application/json, not {request.content_type}")
    data = parse_json(await request.read())
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _Unprocessable(describe_validation_error(exc)) from None
    except RecursionError:
        raise web.HTTPBadRequest(text="body: nested too deeply") from None


class _Unprocessable(web.HTTPUnprocessableEntity):
    """A 422 whose body lists the fields at fault."""

    def __init__(self, body: ErrorBody) -> None:
        super().__init__(text=body.error)
        self.error_body = body


def query_flag(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise web.HTTPBadRequest(text=f"query parameter {name!r} must be true or false, "
                                  f"not {raw[:40]!r}")


def ok(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None
       ) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status, headers=headers)


# --- probes and status ------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    running = gateway.ready and all(p.state == "running" for p in gateway.pipelines.values())
    if not running:
        return web.json_response({"status": "starting"}, status=503)
    return web.json_response({"status": "ready"})


async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[GATEWAY].status())


# --- pipelines -------------------------------------------------------------------------


def view_of(gateway: Gateway, pipeline: Pipeline) -> PipelineView:
    return PipelineView.model_validate({
        "name": pipeline.name,
        "state": pipeline.state,
        "config": gateway.configs.get(pipeline.name),
        "settings": pipeline.settings(),
        "status": pipeline.status(),
    })


def _pipeline(request: web.Request) -> Pipeline:
    try:
        return request.app[GATEWAY].pipeline(request.match_info["name"])
    except LookupError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None


async def list_pipelines(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    views = [view_of(gateway, p) for p in list(gateway.pipelines.values())]
    return ok(PipelineList(pipelines=views))


def resolve_model_path(cfg: PipelineConfig, models_dir: Path) -> PipelineConfig:
    """A NIR model given by a relative path is a name in the models directory."""
    model = cfg.model
    if not isinstance(model, NirModelConfig) or model.path.is_absolute():
        return cfg
    path = models_dir / model.path
    if not path.is_file():
        raise web.HTTPUnprocessableEntity(
            text=f"body: model.path: no model {str(model.path)!r} in the models directory; "
                 "upload it first (POST /api/v1/models)")
    return cfg.model_copy(update={"model": model.model_copy(update={"path": path})})


async def create_pipeline(request: web.Request) -> web.Response:
    start = query_flag(request, "start")
    cfg = await parse_body(request, PipelineConfig)
    cfg = resolve_model_path(cfg, request.app[MODEL_STORE].root)
    gateway = request.app[GATEWAY]
    try:
        async with request.app[LIFECYCLE]:
            pipeline = await gateway.create_pipeline(cfg, start=start)
    except PipelineExistsError as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    except (ValueError, OSError) as exc:  # FormatError, a file that is not there, ...
        raise web.HTTPUnprocessableEntity(text=f"pipeline {cfg.name}: {exc}") from None
    except ImportError as exc:  # a source or model kind this build does not have yet
        raise web.HTTPUnprocessableEntity(
            text=f"pipeline {cfg.name}: a part it needs is not available: {exc}") from None
    return ok(view_of(gateway, pipeline), status=201,
              headers={"Location": f"/api/v1/pipelines/{cfg.name}"})


async def get_pipeline(request: web.Request) -> web.Response:
    return ok(view_of(request.app[GATEWAY], _pipeline(request)))


async def start_pipeline(request: web.Request) -> web.Response:
    async with request.app[LIFECYCLE]:
        pipeline = _pipeline(request)
        await pipeline.start()
    log.info("pipeline %s started over REST", pipeline.name, extra={"pipeline": pipeline.name})
    return ok(view_of(request.app[GATEWAY], pipeline))


async def stop_pipeline(request: web.Request) -> web.Response:
    async with request.app[LIFECYCLE]:
        pipeline = _pipeline(request)
        await pipeline.stop()
    log.info("pipeline %s stopped over REST", pipeline.name, extra={"pipeline": pipeline.name})
    return ok(view_of(request.app[GATEWAY], pipeline))


async def patch_pipeline(request: web.Request) -> web.Response:
    patch = await parse_body(request, PipelineSettingsPatch)
    pipeline = _pipeline(request)
    changes = patch.changes()
    try:
        pipeline.apply_settings(changes)
    except LookupError as exc:
        raise web.HTTPUnprocessableEntity(text=str(exc)) from None
    except ValueError as exc:
        raise web.HTTPUnprocessableEntity(text=str(exc)) from None
    log.info("pipeline %s settings changed: %s", pipeline.name, changes,
             extra={"pipeline": pipeline.name})
    return ok(view_of(request.app[GATEWAY], pipeline))


async def delete_pipeline(request: web.Request) -> web.Response:
    async with request.app[LIFECYCLE]:
        name = _pipeline(request).name
        await request.app[GATEWAY].delete_pipeline(name)
    return ok(Deleted(deleted=name))


# --- sources and sinks -----------------------------------------------------------------


def _source_state(pipeline_state: str, source: dict[str, Any]) -> str:
    if source["last_error"]:
        return "failed"
    if source["done"] and pipeline_state == "running":
        return "done"
    return pipeline_state


async def list_sources(request: web.Request) -> web.Response:
    views = []
    for pipeline in list(request.app[GATEWAY].pipelines.values()):
        st = pipeline.status()
        src = st["source"]
        views.append(SourceView(
            pipeline=pipeline.name, name=src["name"], state=_source_state(st["state"], src),
            geometry=src["geometry"], packets=src["packets"], events=src["events"],
            events_per_s=src["events_per_s"], dropped_packets=st["drops"]["queue"],
            queue_policy=st["queue"]["policy"], done=src["done"], last_error=src["last_error"]))
    return ok(SourceList(sources=views))


async def list_sinks(request: web.Request) -> web.Response:
    views = []
    for pipeline in list(request.app[GATEWAY].pipelines.values()):
        for sink in pipeline.status()["sinks"]:
            extra = {k: v for k, v in sink.items()
                     if k not in ("name", "kind", "delivered", "failed", "buffer",
                                  "last_error", "latency_us", "outputs_per_s")}
            views.append(SinkView(
                pipeline=pipeline.name, name=sink["name"], kind=sink["kind"],
                state=pipeline.state, delivered=sink["delivered"], failed=sink["failed"],
                dropped=sink["buffer"]["dropped"] + sink.get("client_drops", 0),
                outputs_per_s=sink.get("outputs_per_s"), policy=sink["buffer"]["policy"],
                latency_us=sink["latency_us"], last_error=sink["last_error"], **extra))
    return ok(SinkList(sinks=views))


# --- models ----------------------------------------------------------------------------


def _model_name(request: web.Request, name: str | None) -> str:
    try:
        return check_model_name(name or "")
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


async def list_models(request: web.Request) -> web.Response:
    return ok(ModelList(models=request.app[MODEL_STORE].list()))


async def get_model(request: web.Request) -> web.Response:
    store = request.app[MODEL_STORE]
    name = _model_name(request, request.match_info["name"])
    try:
        return ok(store.info(name))
    except LookupError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None


async def _raw_chunks(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(UPLOAD_CHUNK_BYTES):
        yield chunk


_MALFORMED_MULTIPART = (ValueError, AssertionError, HttpProcessingError)


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        try:
            chunk = await part.read_chunk(UPLOAD_CHUNK_BYTES)
        except _MALFORMED_MULTIPART as exc:
            raise web.HTTPBadRequest(text=f"malformed multipart body: {_first_line(exc)}") \
                from None
        if not chunk:
            return
        yield chunk


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


async def _file_part(request: web.Request) -> BodyPartReader:
    """The multipart part named ``file``; 400 when the body is malformed or has none."""
    try:
        reader = await request.multipart()
        part = await reader.next()
        while part is not None and not (isinstance(part, BodyPartReader)
                                        and part.name == "file"):
            part = await reader.next()
    except _MALFORMED_MULTIPART as exc:
        raise web.HTTPBadRequest(text=f"malformed multipart body: {_first_line(exc)}") from None
    if part is None or not isinstance(part, BodyPartReader):
        raise web.HTTPBadRequest(text="the multipart body needs a part named 'file'")
    return part


async def upload_model(request: web.Request) -> web.Response:
    """A ``.nir`` file as the raw body (``?name=x.nir``) or as multipart field ``file``."""
    store = request.app[MODEL_STORE]
    replace = query_flag(request, "replace")
    length = request.content_length
    if length is not None and length > store.max_bytes:
        raise web.HTTPRequestEntityTooLarge(
            max_size=store.max_bytes, actual_size=length,
            text=f"the upload is {length} bytes; the limit is {store.max_bytes}")
    if request.content_type.startswith("multipart/"):
        part = await _file_part(request)
        name = _model_name(request, request.query.get("name") or part.filename)
        chunks = _part_chunks(part)
    else:
        if "name" not in request.query:
            raise web.HTTPBadRequest(
                text="name the model: POST /api/v1/models?name=NAME.nir (or send multipart)")
        name = _model_name(request, request.query["name"])
        chunks = _raw_chunks(request)
    try:
        info = await store.save(name, chunks, replace=replace)
    except ModelExistsError as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    except ModelTooLargeError as exc:
        raise web.HTTPRequestEntityTooLarge(max_size=store.max_bytes, actual_size=-1,
                                            text=str(exc)) from None
    except ModelRejectedError as exc:
        raise web.HTTPUnprocessableEntity(text=str(exc)) from None
    log.info("model %s stored (%d bytes)", name, info.size_bytes, extra={"model": name})
    return ok(info, status=201, headers={"Location": f"/api/v1/models/{name}"})


async def delete_model(request: web.Request) -> web.Response:
    store = request.app[MODEL_STORE]
    name = _model_name(request, request.match_info["name"])
    path = store.path_of(name)
    users = [n for n, cfg in request.app[GATEWAY].configs.items()
             if isinstance(cfg.model, NirModelConfig) and cfg.model.path == path]
    if users:
        raise web.HTTPConflict(text=f"model {name!r} is used by pipeline(s) {', '.join(users)}; "
                                    "delete them first")
    try:
        store.delete(name)
    except LookupError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return ok(Deleted(deleted=name))


# --- the table -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    description: str
    kind: str = "boolean"


@dataclass(frozen=True, slots=True)
class Operation:
    """One REST operation: route, handler, and what the OpenAPI document says of it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    response: type[BaseModel] | None = None
    status: int = 200
    body: type[BaseModel] | None = None
    raw_body: bool = False  # an uploaded file (octet-stream or multipart)
    query: tuple[Query, ...] = ()
    errors: tuple[int, ...] = ()
    media_type: str = "application/json"


_BY_NAME = (404,)
OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/healthz", healthz, "Liveness: the process answers", "probes", Health),
    Operation("GET", "/readyz", readyz, "Readiness: every pipeline warmed up and running",
              "probes", Health, errors=(503,)),
    Operation("GET", "/api/v1/status", status, "The gateway and every pipeline's counters",
              "status", GatewayStatus),
    Operation("GET", "/api/v1/pipelines", list_pipelines, "List pipelines", "pipelines",
              PipelineList),
    Operation("POST", "/api/v1/pipelines", create_pipeline,
              "Create a pipeline (source → model → sinks) from a config body", "pipelines",
              PipelineView, 201, body=PipelineConfig,
              query=(Query("start", "start it once warmed up"),), errors=(409, 422)),
    Operation("GET", "/api/v1/pipelines/{name}", get_pipeline, "One pipeline", "pipelines",
              PipelineView, errors=_BY_NAME),
    Operation("PATCH", "/api/v1/pipelines/{name}", patch_pipeline,
              "Change live settings without a restart (absent: unchanged)", "pipelines",
              PipelineView, body=PipelineSettingsPatch, errors=(*_BY_NAME, 422)),
    Operation("DELETE", "/api/v1/pipelines/{name}", delete_pipeline,
              "Stop (draining) and remove a pipeline", "pipelines", Deleted, errors=_BY_NAME),
    Operation("POST", "/api/v1/pipelines/{name}/start", start_pipeline, "Start a pipeline",
              "pipelines", PipelineView, errors=_BY_NAME),
    Operation("POST", "/api/v1/pipelines/{name}/stop", stop_pipeline,
              "Stop a pipeline: the source stops, queues drain, sinks flush", "pipelines",
              PipelineView, errors=_BY_NAME),
    Operation("GET", "/api/v1/sources", list_sources,
              "Every source: state, rate, drops, last error", "sources", SourceList),
    Operation("GET", "/api/v1/sinks", list_sinks,
              "Every sink: state, deliveries, drops, latency, last error", "sinks", SinkList),
    Operation("GET", "/api/v1/models", list_models, "Uploaded NIR models", "models", ModelList),
    Operation("POST", "/api/v1/models", upload_model,
              "Upload a .nir file (raw body with ?name=, or multipart field 'file'); "
              "validated by loading it, stored, never executed", "models", ModelInfo, 201,
              raw_body=True,
              query=(Query("name", "the model's file name, NAME.nir", "string"),
                     Query("replace", "overwrite a model of that name")),
              errors=(409, 413, 422)),
    Operation("GET", "/api/v1/models/{name}", get_model, "One uploaded model", "models",
              ModelInfo, errors=(400, *_BY_NAME)),
    Operation("DELETE", "/api/v1/models/{name}", delete_model, "Delete an uploaded model",
              "models", Deleted, errors=(400, *_BY_NAME, 409)),
)


def setup_api(app: web.Application, settings: Settings) -> None:
    """The JSON-errors middleware, the model store, and every route of ``OPERATIONS``."""
    app.middlewares.insert(0, json_errors)
    app[MODEL_STORE] = ModelStore(settings.server.models_dir, settings.server.max_upload_bytes)
    app[LIFECYCLE] = asyncio.Lock()
    add_routes(app)


def add_routes(app: web.Application) -> None:
    for op in OPERATIONS:
        app.router.add_route(op.method, op.path, op.handler)
