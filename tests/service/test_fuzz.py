"""Bad input against every operation of the OpenAPI document: always a 4xx with a sentence.

A real server runs in a thread (port 0); hypothesis sends malformed JSON,
wrong types, unknown fields, huge bodies, odd names and wrong tokens to every
documented operation. No answer may be a 5xx, every refusal is
``{"error": "..."}``, and the server keeps serving. The request counter in
``/metrics`` proves no 5xx slipped by.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikegate.service.app import GATEWAY, init
from spikegate.service.config import DemoSourceConfig, PipelineConfig, ServerConfig, Settings
from spikegate.service.openapi import build_document
from spikegate.service.queues import FullPolicy

TOKEN = "fuzz-token"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 8 * 1024
DOC = build_document()
OPERATIONS = sorted((method.upper(), path) for path, ops in DOC["paths"].items() for method in ops)
FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


class Server:
    def __init__(self, root: Path) -> None:
        self.settings = Settings(
            server=ServerConfig(api_token=TOKEN, models_dir=root / "models",
                                max_body_bytes=MAX_BODY, max_upload_bytes=16 * 1024),
            pipelines=[PipelineConfig(source=DemoSourceConfig(rate_ev_s=2_000, packet_us=5_000))])
        self.port = 0
        self.app: web.Application | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-server", daemon=True)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.app = init(self.settings)
        runner = web.AppRunner(self.app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        await self.app[GATEWAY].wait_ready()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def __enter__(self) -> Server:
        self._thread.start()
        if not self._ready.wait(60):
            raise RuntimeError("the fuzz server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read(), resp.getheader("Content-Type", "")
        finally:
            conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(tmp_path_factory.mktemp("fuzz")) as s:
        yield s


def refused_with_a_sentence(status: int, body: bytes, content_type: str,
                            allowed: tuple[int, ...] = ()) -> None:
    if status in allowed:
        return
    assert status < 500, (status, body[:200])
    assert 400 <= status < 500, (status, body[:200])
    assert content_type.startswith("application/json"), content_type
    error = json.loads(body)["error"]
    assert isinstance(error, str) and len(error) > 5, error


def concrete(path: str, name: str = "demo") -> str:
    return path.replace("{name}", urllib.parse.quote(name, safe=""))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12)
garbage = st.binary(min_size=1, max_size=256)
operation = st.sampled_from(OPERATIONS)


@FUZZ
@given(op=operation, body=garbage)
def test_malformed_bodies(server: Server, op: tuple[str, str], body: bytes) -> None:
    method, path = op
    status, resp, ctype = server.request(method, concrete(path), body,
                                         {**GOOD, "Content-Type": "application/json"})
    # reads and start/stop take no body; a model upload of garbage is refused by validation
    allowed = (200,) if method == "DELETE" or path.endswith(("/start", "/stop")) else ()
    if method == "GET":  # reads take no body; /readyz is 503 while a pipeline is stopped
        allowed = (200, 503) if path == "/readyz" else (200,)
    refused_with_a_sentence(status, resp, ctype, allowed=allowed)
    if method == "DELETE" and status == 200:
        server.request("POST", "/api/v1/pipelines", json.dumps(
            server.settings.pipelines[0].model_dump(mode="json")).encode(), GOOD)


@FUZZ
@given(body=json_values)
def test_wrong_shapes_are_refused(server: Server, body: Any) -> None:
    raw = json.dumps(body).encode()
    for path, method in [("/api/v1/pipelines", "POST"), ("/api/v1/pipelines/demo", "PATCH")]:
        status, resp, ctype = server.request(method, path, raw,
                                             {**GOOD, "Content-Type": "application/json"})
        if method == "POST" and status == 201:  # random JSON that is a valid config
            name = json.loads(resp)["name"]
            server.request("DELETE", f"/api/v1/pipelines/{name}", None, GOOD)
            continue
        refused_with_a_sentence(status, resp, ctype, allowed=(200,) if method == "PATCH"
                                and body == {} else ())


VALID = PipelineConfig(name="fz").model_dump(mode="json")
FIELDS = ["name", "queue_size", "queue_policy", "command_interval_ms", "source", "model",
          "sinks", "source.rate_ev_s", "source.width", "model.n_x", "model.kind", "sinks.0.kind",
          "sinks.0.buffer"]


def with_value(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(data))
    node: Any = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value
    return data


@FUZZ
@given(field=st.sampled_from(FIELDS),
       value=st.one_of(st.text(min_size=1, max_size=8).filter(lambda s: not s.isdigit()),
                       st.lists(st.integers(), min_size=1, max_size=3),
                       st.integers(min_value=10**9), st.integers(max_value=-1),
                       st.dictionaries(st.text(max_size=5), st.integers(), min_size=1,
                                       max_size=2)))
def test_wrong_type_names_the_field(server: Server, field: str, value: Any) -> None:
    body = with_value(VALID, field, value)
    status, resp, ctype = server.request("POST", "/api/v1/pipelines", json.dumps(body).encode(),
                                         {**GOOD, "Content-Type": "application/json"})
    if status == 201:  # some values are valid (a name, a policy, a big source rate)
        server.request("DELETE", "/api/v1/pipelines/fz", None, GOOD)
        return
    refused_with_a_sentence(status, resp, ctype)
    assert status == 422
    assert field.split(".")[0] in json.loads(resp)["error"]


@FUZZ
@given(key=st.text(min_size=1, max_size=12).filter(lambda k: k not in VALID),
       value=json_values)
def test_unknown_fields_are_named(server: Server, key: str, value: Any) -> None:
    for path, method, base in [("/api/v1/pipelines", "POST", VALID),
                               ("/api/v1/pipelines/demo", "PATCH", {})]:
        body = {**base, key: value}
        status, resp, ctype = server.request(method, path, json.dumps(body).encode(),
                                             {**GOOD, "Content-Type": "application/json"})
        refused_with_a_sentence(status, resp, ctype)
        assert status == 422 and key in json.loads(resp)["error"]


POLICIES = st.sampled_from([str(p) for p in FullPolicy])
PATCHES = st.fixed_dictionaries({}, optional={
    "queue_policy": POLICIES,
    "command_interval_ms": st.floats(min_value=0.01, max_value=60_000),
    "sinks": st.dictionaries(st.sampled_from(["ws", "other"]),
                             st.fixed_dictionaries({}, optional={"policy": POLICIES | st.none()}),
                             max_size=2),
})


@FUZZ
@given(patch=PATCHES)
def test_well_formed_patches_apply_or_name_the_sink(server: Server,
                                                    patch: dict[str, Any]) -> None:
    status, resp, ctype = server.request("PATCH", "/api/v1/pipelines/demo",
                                         json.dumps(patch).encode(),
                                         {**GOOD, "Content-Type": "application/json"})
    refused_with_a_sentence(status, resp, ctype, allowed=(200,))
    if "other" in patch.get("sinks", {}):
        assert status == 422 and "no sink named other" in json.loads(resp)["error"]
    else:
        assert status == 200


@FUZZ
@given(op=operation,
       token=st.one_of(st.none(), st.text(st.characters(min_codepoint=0x20, max_codepoint=0xff,
                                                        blacklist_categories=["Cc"]),
                                          max_size=40)),
       scheme=st.sampled_from(["Bearer", "bearer", "Basic", "Token", ""]))
def test_wrong_tokens_are_401(server: Server, op: tuple[str, str], token: str | None,
                              scheme: str) -> None:
    method, path = op
    if method in ("GET", "HEAD"):
        return
    headers = {}
    if token is not None:
        with contextlib.suppress(UnicodeEncodeError):
            value = f"{scheme} {token}".strip()
            value.encode("latin-1")
            if "\n" not in value and "\r" not in value and value == value.strip():
                headers["Authorization"] = value
    if headers.get("Authorization", "").lower() == f"bearer {TOKEN}":
        return
    status, resp, ctype = server.request(method, concrete(path), b"{}",
                                         {**headers, "Content-Type": "application/json"})
    refused_with_a_sentence(status, resp, ctype)
    assert status == 401


@FUZZ
@given(op=operation, name=st.text(min_size=1, max_size=80))
def test_odd_names_in_paths(server: Server, op: tuple[str, str], name: str) -> None:
    method, path = op
    if "{name}" not in path or name in ("demo", ".", ".."):
        return
    status, resp, ctype = server.request(method, concrete(path, name), b"{}",
                                         {**GOOD, "Content-Type": "application/json"})
    refused_with_a_sentence(status, resp, ctype)


@settings(max_examples=6, deadline=None, derandomize=True)
@given(op=st.sampled_from([o for o in OPERATIONS if o[0] != "GET"]),
       size=st.integers(MAX_BODY + 1, 4 * MAX_BODY))
def test_huge_bodies_are_413(server: Server, op: tuple[str, str], size: int) -> None:
    method, path = op
    if path.endswith(("/start", "/stop")) or method == "DELETE":
        return  # these never read a body
    body = b'{"name": "' + b"x" * size + b'"}'
    query = "?name=big.nir" if path == "/api/v1/models" else ""
    status, resp, ctype = server.request(method, concrete(path) + query, body,
                                         {**GOOD, "Content-Type": "application/json"})
    refused_with_a_sentence(status, resp, ctype)
    assert status == 413


def test_the_server_kept_running_and_never_said_5xx(server: Server) -> None:
    status, body, _ = server.request("GET", "/healthz")
    assert status == 200
    status, body, _ = server.request("POST", "/api/v1/pipelines/demo/start", None, GOOD)
    assert status == 200 and json.loads(body)["state"] == "running"  # the fuzzers stopped it
    status, body, _ = server.request("GET", "/metrics")
    fives = [line for line in body.decode().splitlines()
             if line.startswith("spikegate_http_requests_total") and 'status="5' in line
             and 'route="/readyz"' not in line]  # readiness 503s are answers, not failures
    assert fives == []
