"""The OpenAPI 3.1 document of the REST API, built from ``api.OPERATIONS`` and its pydantic models.

Served at ``/api/v1/openapi.json`` from memory (no CDN, no network). Schemas
are the models' own ``model_json_schema``, gathered under
``components/schemas``; the document and the handlers read the same models,
so they cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from spikegate import __version__

from .api import OPERATIONS, ErrorBody, Operation
from .auth import SAFE_METHODS
from .schemas import MODEL_NAME_PATTERN

PIPELINE_NAME = r"^[A-Za-z0-9_.-]{1,64}$"

OPENAPI_PATH = "/api/v1/openapi.json"
REF = "#/components/schemas/{model}"
OPENAPI_DOC = web.AppKey("openapi_doc", dict)

_ERROR_TEXT = {
    400: "Malformed JSON or a bad query parameter",
    401: "Missing or wrong bearer token",
    404: "No such pipeline or model",
    409: "The name is taken, or in use",
    413: "The body is larger than the configured limit",
    415: "The body is not JSON",
    422: "The body is JSON of the wrong shape (the field is named)",
    503: "Not ready yet",
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _models(ops: tuple[Operation, ...]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    seen: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for op in ops:
        for pair in ((op.body, "validation"), (op.response, "serialization")):
            if pair[0] is not None and pair not in seen:
                seen.append(pair)  # type: ignore[arg-type]
    return seen


def _operation(op: Operation, refs: dict[Any, Any],
               read_requires_token: bool) -> dict[str, Any]:
    pattern = MODEL_NAME_PATTERN if op.path.startswith("/api/v1/models/") else PIPELINE_NAME
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "pattern": pattern}}
        for name in re.findall(r"{(\w+)}", op.path)]
    params += [{"name": q.name, "in": "query", "required": False, "description": q.description,
                "schema": {"type": q.kind}} for q in op.query]
    error = {"$ref": REF.format(model="ErrorBody")}
    responses: dict[str, Any] = {}
    ok: dict[str, Any] = {"description": op.summary}
    if op.response is not None:
        ok["content"] = _json(refs[(op.response, "serialization")])
    responses[str(op.status)] = ok
    codes = set(op.errors)
    writes = op.method not in SAFE_METHODS
    protected = writes or (read_requires_token and op.path.startswith("/api/"))
    if protected:
        codes.add(401)
    if op.body is not None:
        codes |= {400, 413, 415, 422}
    if op.query:
        codes.add(400)
    for code in sorted(codes):
        responses[str(code)] = {"description": _ERROR_TEXT.get(code, "Refused"),
                                "content": _json(error)}
    out: dict[str, Any] = {"summary": op.summary, "tags": [op.tag],
                           "operationId": f"{op.method.lower()}_{op.handler.__name__}",
                           "responses": responses}
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": True,
                              "content": _json(refs[(op.body, "validation")])}
    elif op.raw_body:
        binary = {"type": "string", "format": "binary"}
        out["requestBody"] = {"required": True, "content": {
            "application/octet-stream": {"schema": binary},
            "multipart/form-data": {"schema": {
                "type": "object", "properties": {"file": binary}, "required": ["file"]}},
        }}
    if protected:
        out["security"] = [{"bearer": []}]
    elif op.path.startswith("/api/"):
        out["security"] = [{}, {"bearer": []}]
    return out


def _require_discriminators(defs: dict[str, Any]) -> None:
    """A tagged union needs its tag: mark it required in each member (pydantic does not)."""
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            disc = node.get("discriminator")
            if isinstance(disc, dict):
                for ref in disc.get("mapping", {}).values():
                    member = defs.get(ref.rsplit("/", 1)[-1])
                    if member is not None and disc["propertyName"] not in member.get(
                            "required", []):
                        member["required"] = [*member.get("required", []),
                                              disc["propertyName"]]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(defs)


def build_document(read_requires_token: bool = False,
                   ops: tuple[Operation, ...] = OPERATIONS) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``ops``."""
    refs, defs = models_json_schema(_models(ops), ref_template=REF)
    _require_discriminators(defs.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(
            op, refs, read_requires_token)
    paths["/metrics"] = {"get": {
        "summary": "Prometheus metrics: events, drops, queue depths, latency, SynOps",
        "tags": ["observability"], "operationId": "get_metrics",
        "responses": {"200": {"description": "Prometheus text format 0.0.4",
                              "content": {"text/plain": {"schema": {"type": "string"}}}},
                      **({"401": {"description": _ERROR_TEXT[401],
                                  "content": _json({"$ref": REF.format(model="ErrorBody")})}}
                         if read_requires_token else {})},
    }}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "spikegate",
            "version": __version__,
            "description": (
                "Event-stream gateway for spiking neural networks. Errors are "
                '{"error": "<a sentence>"}. State-changing calls need '
                "'Authorization: Bearer <token>'. Websockets (not described here): "
                "/ws/outputs?pipeline=NAME, /ws/events?source=NAME, /ws/ingest?source=NAME "
                "(token required)."),
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI_DOC])


def setup_openapi(app: web.Application, read_requires_token: bool = False) -> None:
    """Build the document once and serve it at ``/api/v1/openapi.json``."""
    app[OPENAPI_DOC] = build_document(read_requires_token)
    app.router.add_get(OPENAPI_PATH, openapi_json)
