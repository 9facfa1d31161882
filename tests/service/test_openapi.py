"""The OpenAPI document: valid, complete, and true to what the handlers return."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from spikegate.service.app import GATEWAY, init
from spikegate.service.openapi import build_document
from tests.service.test_api import AUTH, make_settings, new_pipeline


def check(doc: dict[str, Any], model: str, instance: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{model}", "components": doc["components"]}
    Draft202012Validator(schema).validate(instance)


async def test_document_is_served_valid_and_complete(aiohttp_client: Any,
                                                     tmp_path: Path) -> None:
    app = init(make_settings(tmp_path, read_requires_token=True))
    client = await aiohttp_client(app)
    resp = await client.get("/api/v1/openapi.json")  # open even when reads need the token
    assert resp.status == 200
    doc = await resp.json()
    validate(doc)
    assert doc["openapi"].startswith("3.")
    routes = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.resource is not None and r.method != "HEAD"}
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    rest = {(m, p) for m, p in routes
            if p.startswith("/api/") or p in ("/metrics", "/healthz", "/readyz")}
    rest.discard(("GET", "/api/v1/openapi.json"))
    assert rest <= documented, rest - documented
    create = doc["paths"]["/api/v1/pipelines"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PipelineConfig"}
    assert {"400", "401", "413", "422"} <= set(create["responses"])
    assert doc["paths"]["/api/v1/pipelines"]["get"]["security"] == [{"bearer": []}]
    assert "multipart/form-data" in doc["paths"]["/api/v1/models"]["post"]["requestBody"][
        "content"]


async def test_responses_match_their_schemas(aiohttp_client: Any, tmp_path: Path) -> None:
    app = init(make_settings(tmp_path))
    client = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    doc = build_document()
    for path, model in [("/api/v1/pipelines", "PipelineList"),
                        ("/api/v1/pipelines/demo", "PipelineView"),
                        ("/api/v1/sources", "SourceList"), ("/api/v1/sinks", "SinkList"),
                        ("/api/v1/models", "ModelList"), ("/api/v1/status", "GatewayStatus"),
                        ("/healthz", "Health")]:
        resp = await client.get(path)
        assert resp.status == 200, path
        check(doc, model, await resp.json())
    resp = await client.post("/api/v1/pipelines", json=new_pipeline(), headers=AUTH)
    check(doc, "PipelineView", await resp.json())
    for body in [{"queue_size": "x"}, b"{"]:
        kw = {"json": body} if isinstance(body, dict) else {"data": body}
        resp = await client.post("/api/v1/pipelines", headers=AUTH, **kw)
        check(doc, "ErrorBody", await resp.json())
    resp = await client.delete("/api/v1/pipelines/extra", headers=AUTH)
    check(doc, "Deleted", await resp.json())
