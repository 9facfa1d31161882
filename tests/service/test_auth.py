"""Every refusal of the token check, and what stays open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from spikegate.service.app import init
from spikegate.service.auth import AUTH, TokenPolicy, require_token
from spikegate.service.config import ServerConfig, Settings, load_settings
from tests.service.test_api import AUTH as GOOD
from tests.service.test_api import TOKEN, make_settings, new_pipeline

WRITES = [
    ("POST", "/api/v1/pipelines"),
    ("POST", "/api/v1/pipelines/demo/stop"),
    ("POST", "/api/v1/pipelines/demo/start"),
    ("PATCH", "/api/v1/pipelines/demo"),
    ("DELETE", "/api/v1/pipelines/demo"),
    ("POST", "/api/v1/models?name=m.nir"),
    ("DELETE", "/api/v1/models/m.nir"),
]
READS = ["/api/v1/status", "/api/v1/pipelines", "/api/v1/pipelines/demo", "/api/v1/sources",
         "/api/v1/sinks", "/api/v1/models"]


async def test_every_write_needs_the_token(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await aiohttp_client(init(make_settings(tmp_path)))
    bad_headers = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                   {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}x"}]
    for method, path in WRITES:
        for headers in bad_headers:
            resp = await client.request(method, path, headers=headers, json=new_pipeline())
            assert resp.status == 401, (method, path, headers)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            error = (await resp.json())["error"]
            assert "bearer token" in error
    resp = await client.post("/api/v1/pipelines", json=new_pipeline())
    assert (await resp.json())["error"].startswith("this call needs a bearer token")
    resp = await client.post("/api/v1/pipelines", json=new_pipeline(),
                             headers={"Authorization": "Bearer nope"})
    assert (await resp.json())["error"] == "the bearer token is wrong"
    # nothing changed, the service is fine, and the right token works
    resp = await client.get("/api/v1/pipelines/demo")
    assert resp.status == 200 and (await resp.json())["state"] in ("created", "running")
    resp = await client.post("/api/v1/pipelines", json=new_pipeline(), headers=GOOD)
    assert resp.status == 201


async def test_reads_open_by_default_and_closed_when_configured(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    client = await aiohttp_client(init(make_settings(tmp_path)))
    for path in READS:
        assert (await client.get(path)).status == 200, path

    closed = await aiohttp_client(init(make_settings(tmp_path, read_requires_token=True)))
    for path in [*READS, "/ws/outputs?pipeline=demo"]:
        resp = await closed.get(path)
        assert resp.status == 401, path
        assert "bearer token" in (await resp.json())["error"]
        assert (await closed.get(path, headers=GOOD)).status in (200, 400), path
    for path in ["/healthz", "/api/v1/openapi.json"]:
        assert (await closed.get(path)).status in (200, 404), path  # probes stay open
    async with closed.ws_connect(f"/ws/outputs?pipeline=demo&access_token={TOKEN}") as ws:
        assert not ws.closed


async def test_ingest_always_needs_the_token(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await aiohttp_client(init(make_settings(tmp_path)))
    resp = await client.get("/ws/ingest?source=demo")
    assert resp.status == 401
    resp = await client.get("/ws/ingest?source=demo&access_token=wrong")
    assert resp.status == 401


async def test_no_configured_token_means_a_generated_one(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    settings = load_settings(None, environ={"SPIKEGATE_SERVER__MODELS_DIR": str(tmp_path)})
    app = init(settings)
    client = await aiohttp_client(app)
    policy = app[AUTH]
    assert policy.generated and len(policy.token) >= 24
    assert (await client.post("/api/v1/pipelines/demo/stop")).status == 401
    resp = await client.post("/api/v1/pipelines/demo/stop",
                             headers={"Authorization": f"Bearer {policy.token}"})
    assert resp.status == 200
    other = TokenPolicy.from_settings(settings)
    assert other.token != policy.token  # a fresh one per app


async def test_token_from_the_environment(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = load_settings(None, environ={"SPIKEGATE_API_TOKEN": "from-env",
                                            "SPIKEGATE_SERVER__MODELS_DIR": str(tmp_path)})
    client = await aiohttp_client(init(settings))
    assert (await client.post("/api/v1/pipelines/demo/stop",
                              headers={"Authorization": "Bearer from-env"})).status == 200


async def test_require_token_for_other_handlers(aiohttp_client: Any, tmp_path: Path) -> None:
    """What the websocket ingest handler calls: a 401 unless the token is there."""
    app = web.Application()
    app[AUTH] = TokenPolicy("abc")

    async def handler(request: web.Request) -> web.Response:
        require_token(request)
        return web.Response(text="in")

    app.router.add_get("/x", handler)
    client = await aiohttp_client(app)
    assert (await client.get("/x")).status == 401
    assert (await client.get("/x", headers={"Authorization": "Bearer abd"})).status == 401
    assert await (await client.get("/x", headers={"Authorization": "Bearer abc"})).text() == "in"


def test_binds_to_localhost_by_default(caplog: pytest.LogCaptureFixture,
                                       tmp_path: Path) -> None:
    assert ServerConfig().host == "127.0.0.1"
    assert Settings().server.host == "127.0.0.1"
    init(make_settings(tmp_path))
    assert "open to the network" not in caplog.text
    init(make_settings(tmp_path, host="0.0.0.0"))
    assert "binding 0.0.0.0: reads (status, outputs, metrics) are open" in caplog.text


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("spikegate.service.auth.hmac.compare_digest", spy)
    policy = TokenPolicy("abc")
    assert policy.accepts("abc") and not policy.accepts("abd") and not policy.accepts(None)
    assert calls == [(b"abc", b"abc"), (b"abd", b"abc")]


def test_the_service_has_no_code_execution_paths() -> None:
    """No pickle, eval/exec, unsafe YAML or shells anywhere a request could reach."""
    import re

    import spikegate.service as service

    root = Path(service.__file__).parent
    banned = re.compile(r"\b(pickle|marshal|shelve|eval\(|exec\(|yaml\.load\(|shell=True|"
                        r"__import__\(|importlib\.import_module\(.*request)")
    found = [f"{p.name}:{i}: {line.strip()}"
             for p in sorted(root.rglob("*.py"))
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if banned.search(line) and not line.lstrip().startswith("#")]
    assert found == []
