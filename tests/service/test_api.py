"""REST under /api/v1: pipelines, sources, sinks, live settings, JSON errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from spikegate.service.app import GATEWAY, init
from spikegate.service.config import (
    DemoSourceConfig,
    PipelineConfig,
    ServerConfig,
    Settings,
)
from spikegate.service.queues import FullPolicy
from tests.conftest import eventually

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_settings(tmp_path: Path, **server: Any) -> Settings:
    src = DemoSourceConfig(rate_ev_s=50_000, packet_us=2_000)
    return Settings(
        server=ServerConfig(api_token=TOKEN, models_dir=tmp_path / "models", **server),
        pipelines=[PipelineConfig(source=src, command_interval_ms=10)])


def new_pipeline(name: str = "extra", **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "source": {"kind": "demo", "name": f"{name}-src", "rate_ev_s": 20_000,
                   "packet_us": 2_000},
        "model": {"kind": "tracker", "n_x": 4, "n_y": 4},
        "sinks": [{"kind": "websocket", "name": "ws"}],
    }
    body.update(kw)
    return body


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> Any:
    app = init(make_settings(tmp_path))
    c = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    return c


async def test_list_and_get_pipelines(client: Any) -> None:
    resp = await client.get("/api/v1/pipelines")
    assert resp.status == 200
    (view,) = (await resp.json())["pipelines"]
    assert view["name"] == "demo" and view["state"] == "running"
    assert view["config"]["source"]["kind"] == "demo"
    assert view["settings"] == {"queue_policy": "drop-oldest", "command_interval_ms": 10.0,
                                "sinks": {"ws": {"policy": "drop-oldest"}}}
    one = await (await client.get("/api/v1/pipelines/demo")).json()
    assert one["name"] == "demo" and "core" in one["status"]


async def test_unknown_pipeline_is_a_404_sentence(client: Any) -> None:
    for method, path in [("GET", "/api/v1/pipelines/nope"),
                         ("POST", "/api/v1/pipelines/nope/start"),
                         ("POST", "/api/v1/pipelines/nope/stop"),
                         ("DELETE", "/api/v1/pipelines/nope")]:
        resp = await client.request(method, path, headers=AUTH)
        assert resp.status == 404, (method, path)
        assert (await resp.json()) == {"error": "no pipeline named 'nope'"}
    resp = await client.get("/api/v1/nothing-here")
    assert resp.status == 404 and "/api/v1/nothing-here" in (await resp.json())["error"]
    resp = await client.put("/api/v1/pipelines", headers=AUTH)
    assert resp.status == 405 and "PUT is not allowed" in (await resp.json())["error"]


async def test_create_start_stop_delete(client: Any) -> None:
    gateway = client.app[GATEWAY]
    resp = await client.post("/api/v1/pipelines", json=new_pipeline(), headers=AUTH)
    assert resp.status == 201, await resp.text()
    assert resp.headers["Location"] == "/api/v1/pipelines/extra"
    view = await resp.json()
    assert view["state"] == "created" and view["config"]["model"]["n_x"] == 4

    resp = await client.post("/api/v1/pipelines/extra/start", headers=AUTH)
    assert resp.status == 200 and (await resp.json())["state"] == "running"
    pipeline = gateway.pipelines["extra"]
    await eventually(lambda: pipeline.counters.events > 0, what="events through the core")

    resp = await client.post("/api/v1/pipelines/extra/stop", headers=AUTH)
    assert resp.status == 200 and (await resp.json())["state"] == "stopped"
    resp = await client.post("/api/v1/pipelines/extra/start", headers=AUTH)
    assert (await resp.json())["state"] == "running"

    resp = await client.delete("/api/v1/pipelines/extra", headers=AUTH)
    assert resp.status == 200 and (await resp.json()) == {"deleted": "extra"}
    assert "extra" not in gateway.pipelines and pipeline.state == "stopped"
    names = [p["name"] for p in (await (await client.get("/api/v1/pipelines")).json())[
        "pipelines"]]
    assert names == ["demo"]


async def test_create_with_start_and_name_conflict(client: Any) -> None:
    resp = await client.post("/api/v1/pipelines?start=true", json=new_pipeline("b"),
                             headers=AUTH)
    assert resp.status == 201 and (await resp.json())["state"] == "running"
    resp = await client.post("/api/v1/pipelines", json=new_pipeline("b"), headers=AUTH)
    assert resp.status == 409
    assert (await resp.json())["error"] == "a pipeline named 'b' exists already"
    resp = await client.post("/api/v1/pipelines?start=maybe", json=new_pipeline("c"),
                             headers=AUTH)
    assert resp.status == 400 and "'start'" in (await resp.json())["error"]


async def test_create_refusals_name_the_field(client: Any) -> None:
    cases = [
        (new_pipeline(queue_size="many"), "queue_size"),
        (new_pipeline(colour="red"), "colour"),
        ({**new_pipeline(), "source": {"kind": "demo", "rate_ev_s": -5}}, "source.demo.rate_ev_s"),
        ({**new_pipeline(), "sinks": [{"kind": "carrier-pigeon"}]}, "sinks.0"),
        (new_pipeline(name="bad name/with slash"), "name"),
        ([1, 2, 3], "(top level)"),
    ]
    for body, field in cases:
        resp = await client.post("/api/v1/pipelines", json=body, headers=AUTH)
        assert resp.status == 422, body
        error = await resp.json()
        assert error["error"].startswith(f"body: {field}"), error
        assert error["fields"][0]["field"] == field
    assert list(client.app[GATEWAY].pipelines) == ["demo"]


async def test_malformed_json_is_400(client: Any) -> None:
    for raw, needle in [(b"{", "line 1 column 2"), (b"", "needs a JSON body"),
                        (b'{"name": NaN}', "NaN is not JSON"), (b"\xff\xfe", "not UTF-8"),
                        (b"[" * 100_000, "nested too deeply"),
                        (b'{"queue_size": 1e999}', "out of range")]:
        resp = await client.post("/api/v1/pipelines", data=raw, headers={
            **AUTH, "Content-Type": "application/json"})
        assert resp.status == 400, raw[:20]
        error = (await resp.json())["error"]
        assert error.startswith(("malformed JSON", "the request")) and needle in error, error
    resp = await client.post("/api/v1/pipelines", data=b"name=x",
                             headers={**AUTH, "Content-Type": "text/plain"})
    assert resp.status == 415 and "application/json" in (await resp.json())["error"]


async def test_huge_body_is_413(aiohttp_client: Any, tmp_path: Path) -> None:
    app = init(make_settings(tmp_path, max_body_bytes=4096))
    client = await aiohttp_client(app)
    body = new_pipeline(name="x" * 10, padding="y" * 10_000)
    resp = await client.post("/api/v1/pipelines", json=body, headers=AUTH)
    assert resp.status == 413 and "4096" in (await resp.json())["error"]
    assert (await client.get("/healthz")).status == 200


async def test_patch_changes_live_settings_without_a_restart(client: Any) -> None:
    pipeline = client.app[GATEWAY].pipelines["demo"]
    tasks = list(pipeline._tasks)
    resp = await client.patch("/api/v1/pipelines/demo", headers=AUTH, json={
        "queue_policy": "block", "command_interval_ms": 25,
        "sinks": {"ws": {"policy": "drop-newest"}}})
    assert resp.status == 200, await resp.text()
    view = await resp.json()
    assert view["settings"] == {"queue_policy": "block", "command_interval_ms": 25.0,
                                "sinks": {"ws": {"policy": "drop-newest"}}}
    assert pipeline.queue.policy is FullPolicy.BLOCK
    assert pipeline.sinks[0].buffer.policy is FullPolicy.DROP_NEWEST
    assert pipeline._tasks == tasks and pipeline.state == "running"

    resp = await client.patch("/api/v1/pipelines/demo", headers=AUTH, json={})
    assert resp.status == 200 and (await resp.json())["settings"]["queue_policy"] == "block"


async def test_patch_refusals_change_nothing(client: Any) -> None:
    pipeline = client.app[GATEWAY].pipelines["demo"]
    before = pipeline.settings()
    cases = [
        ({"queue_policy": "shout"}, "body: queue_policy"),
        ({"queue_policy": None}, "queue_policy cannot be cleared"),
        ({"command_interval_ms": 0}, "body: command_interval_ms"),
        ({"precision_bits": 4}, "body: precision_bits: Extra inputs"),
        ({"queue_policy": "block", "sinks": {"nope": {"policy": "block"}}},
         "no sink named nope"),
        ({"sinks": {"ws": {"policy": "block", "size": 3}}}, "body: sinks.ws.size"),
    ]
    for body, needle in cases:
        resp = await client.patch("/api/v1/pipelines/demo", headers=AUTH, json=body)
        assert resp.status == 422, body
        assert needle in (await resp.json())["error"], await resp.text()
    assert pipeline.settings() == before


async def test_sources_and_sinks(client: Any) -> None:
    pipeline = client.app[GATEWAY].pipelines["demo"]
    await eventually(lambda: pipeline.source_rate.total > 0)
    (src,) = (await (await client.get("/api/v1/sources")).json())["sources"]
    assert src["pipeline"] == "demo" and src["name"] == "demo" and src["state"] == "running"
    assert src["events"] > 0 and src["dropped_packets"] == 0 and src["last_error"] is None
    assert src["geometry"] == [64, 64, 2]
    (sink,) = (await (await client.get("/api/v1/sinks")).json())["sinks"]
    assert sink["pipeline"] == "demo" and sink["name"] == "ws" and sink["kind"] == "websocket"
    assert sink["state"] == "running" and sink["dropped"] == 0 and sink["failed"] == 0
    assert sink["policy"] == "drop-oldest" and sink["clients"] == 0
    assert sink["outputs_per_s"] >= 0


async def test_status_stays_and_failed_file_source_is_a_422(client: Any) -> None:
    body = new_pipeline("f", source={"kind": "file", "name": "f", "path": "/nonexistent.raw"})
    resp = await client.post("/api/v1/pipelines?start=true", json=body, headers=AUTH)
    if resp.status == 201:  # a lazy file source fails when it runs: reported, not fatal
        await eventually(lambda: client.app[GATEWAY].pipelines["f"].source_done)
        sources = (await (await client.get("/api/v1/sources")).json())["sources"]
        (f,) = [s for s in sources if s["pipeline"] == "f"]
        assert f["state"] == "failed" and f["last_error"]
    else:
        assert resp.status == 422 and "pipeline f:" in (await resp.json())["error"]
    assert (await client.get("/api/v1/status")).status == 200


async def test_concurrent_lifecycle_calls_leave_a_consistent_state(client: Any) -> None:
    await client.post("/api/v1/pipelines", json=new_pipeline("race"), headers=AUTH)
    calls = [client.post("/api/v1/pipelines/race/start", headers=AUTH),
             client.delete("/api/v1/pipelines/race", headers=AUTH),
             client.post("/api/v1/pipelines/race/start", headers=AUTH),
             client.post("/api/v1/pipelines/race/stop", headers=AUTH)]
    statuses = [r.status for r in await asyncio.gather(*calls)]
    assert all(s in (200, 404) for s in statuses) and statuses[1] == 200
    assert "race" not in client.app[GATEWAY].pipelines
    assert (await client.get("/api/v1/pipelines/race")).status == 404
