"""End to end: the app factory, the demo pipeline, a websocket subscriber."""

import threading
from typing import Any

import pytest

from spikegate.models.demo import TrackerNetwork
from spikegate.service.app import GATEWAY, init
from spikegate.service.config import DemoSourceConfig, PipelineConfig, Settings
from tests.conftest import eventually


def fast_demo(**source: Any) -> Settings:
    src = DemoSourceConfig(rate_ev_s=100_000, packet_us=2_000, **source)
    return Settings(pipelines=[PipelineConfig(source=src, command_interval_ms=10)])


async def test_health_ready_status_and_commands_over_websocket(aiohttp_client: Any) -> None:
    app = init(fast_demo())
    client = await aiohttp_client(app)
    assert (await client.get("/healthz")).status == 200
    await app[GATEWAY].wait_ready()
    assert (await client.get("/readyz")).status == 200

    commands = []
    async with client.ws_connect("/ws/outputs?pipeline=demo&format=json") as ws:
        while len(commands) < 4:
            msg = await ws.receive_json(timeout=10)
            assert msg["pipeline"] == "demo" and msg["events_in"] > 0
            commands += msg["commands"]
    assert {c["command"] for c in commands} <= {"turn", "tilt", "stop"}
    assert all(-1.0 <= c["value"] <= 1.0 for c in commands)
    assert {"turn", "tilt"} <= {c["command"] for c in commands}

    status = await (await client.get("/api/v1/status")).json()
    (pipe,) = status["pipelines"]
    assert pipe["state"] == "running" and pipe["core"]["events"] > 0
    assert pipe["core"]["seq_gaps"] == 0 and pipe["drops"]["queue"] == 0
    (sink,) = pipe["sinks"]
    assert sink["delivered"] > 0 and sink["latency_us"]["p50"] is not None


async def test_readyz_is_503_until_warm_up_is_done(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = threading.Event()
    original = TrackerNetwork.warm_up

    def slow_warm_up(self: TrackerNetwork) -> None:
        compiled.wait(10)
        original(self)

    monkeypatch.setattr(TrackerNetwork, "warm_up", slow_warm_up)
    app = init(fast_demo())
    client = await aiohttp_client(app)
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 503
    compiled.set()
    await app[GATEWAY].wait_ready()
    assert (await client.get("/readyz")).status == 200


async def test_unknown_pipeline_is_404(aiohttp_client: Any) -> None:
    client = await aiohttp_client(init(fast_demo()))
    resp = await client.get("/ws/outputs?pipeline=nope")
    assert resp.status == 404 and "nope" in await resp.text()


async def test_finite_source_drains_through_on_stop(aiohttp_client: Any) -> None:
    app = init(fast_demo(realtime=False, duration_s=0.05))
    await aiohttp_client(app)
    gateway = app[GATEWAY]
    await gateway.wait_ready()
    pipeline = gateway.pipelines["demo"]
    await eventually(lambda: pipeline.source_done, what="the finite source to end")
    await pipeline.stop()
    status = pipeline.status()
    assert status["state"] == "stopped"
    assert status["core"]["packets"] + status["drops"]["queue"] == status["source"]["packets"]
    assert status["core"]["packets"] == 25 and status["drops"]["queue"] == 0
