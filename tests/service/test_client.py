"""The Python client against a real app: REST calls, refusals, outputs, uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikegate.service.app import GATEWAY, init
from spikegate.service.client import ApiError, SpikegateClient
from spikegate.service.config import PipelineConfig
from tests.service.test_api import TOKEN, make_settings, new_pipeline
from tests.service.test_models_api import write_nir


@pytest.fixture
async def served(aiohttp_client: Any, tmp_path: Path) -> Any:
    app = init(make_settings(tmp_path))
    server = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    return server


def base_url(server: Any) -> str:
    return str(server.make_url("")).rstrip("/")


async def test_rest_round_trip(served: Any) -> None:
    async with SpikegateClient(base_url(served), token=TOKEN) as gw:
        assert await gw.ready()
        assert (await gw.status())["ready"] is True
        assert [p["name"] for p in await gw.pipelines()] == ["demo"]
        view = await gw.create_pipeline(PipelineConfig.model_validate(new_pipeline("c1")))
        assert view["state"] == "created"
        assert (await gw.start("c1"))["state"] == "running"
        settings = await gw.patch("c1", queue_policy="block", sinks={"ws": {"policy": "block"}})
        assert settings["queue_policy"] == "block" and settings["sinks"]["ws"]["policy"] == "block"
        assert (await gw.stop("c1"))["state"] == "stopped"
        await gw.delete("c1")
        assert {s["pipeline"] for s in await gw.sources()} == {"demo"}
        assert [s["name"] for s in await gw.sinks()] == ["ws"]
        assert "spikegate_pipeline_up" in await gw.metrics()
        with pytest.raises(ApiError) as refused:
            await gw.pipeline("c1")
        assert refused.value.status == 404 and refused.value.error == "no pipeline named 'c1'"


async def test_refusals_carry_the_sentence(served: Any) -> None:
    async with SpikegateClient(base_url(served)) as anonymous:
        with pytest.raises(ApiError) as refused:
            await anonymous.stop("demo")
        assert refused.value.status == 401 and "bearer token" in refused.value.error
        with pytest.raises(ApiError) as refused:
            await anonymous.push_events("demo", [])
        assert refused.value.status == 401
    async with SpikegateClient(base_url(served), token=TOKEN) as gw:
        with pytest.raises(ApiError) as refused:
            await gw.create_pipeline({**new_pipeline("c2"), "queue_size": -1})
        assert refused.value.status == 422 and refused.value.fields[0]["field"] == "queue_size"


async def test_models(served: Any, tmp_path: Path) -> None:
    path = tmp_path / "tiny.nir"
    write_nir(path)
    async with SpikegateClient(base_url(served), token=TOKEN) as gw:
        info = await gw.upload_model(path)
        assert info["name"] == "tiny.nir" and info["layers"] == 4
        assert [m["name"] for m in await gw.models()] == ["tiny.nir"]
        with pytest.raises(ApiError) as refused:
            await gw.upload_model(path)
        assert refused.value.status == 409
        await gw.delete_model("tiny.nir")
        assert await gw.models() == []


async def test_subscribe_outputs(served: Any) -> None:
    async with SpikegateClient(base_url(served), token=TOKEN) as gw:
        commands: list[dict[str, Any]] = []
        async for out in gw.subscribe_outputs("demo"):
            assert out["pipeline"] == "demo"
            commands += out["commands"]
            if len(commands) >= 2:
                break
        assert {c["command"] for c in commands} <= {"turn", "tilt", "stop"}
        with pytest.raises(ApiError) as refused:
            async for _ in gw.subscribe_outputs("nope"):
                pass
        assert refused.value.status == 404


async def test_push_events_into_an_ingest_source(aiohttp_client: Any, tmp_path: Path) -> None:
    from spikegate.drivers.errors import FormatError
    from spikegate.drivers.packet import SPIKE_DTYPE, make_events
    from spikegate.service.config import IngestSourceConfig
    from tests.conftest import eventually, make_packet

    settings = make_settings(tmp_path)
    cfg = PipelineConfig(name="pushed", source=IngestSourceConfig(name="arm", width=32,
                                                                  height=32))
    app = init(settings.model_copy(update={"pipelines": [cfg]}))
    server = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    pipeline = app[GATEWAY].pipelines["pushed"]
    packets = [make_packet(50, t0_us=i * 1000, seed=i).events for i in range(4)]
    async with SpikegateClient(base_url(server), token=TOKEN) as gw:
        assert await gw.push_events("arm", packets) == 4
        await eventually(lambda: pipeline.counters.events == 200, what="pushed events in")
        async with gw.ingest("arm") as stream:
            with pytest.raises(FormatError, match="missing event field"):
                await stream.send(np.zeros(3, dtype=SPIKE_DTYPE))  # caught before sending
            await stream.send(make_events([10**9, 10**9 + 1], [1, 100], 0, 1))  # x off the sensor
            await eventually(lambda: bool(stream.errors), what="the refusal")
        (refusal,) = stream.errors
        assert refusal["type"] == "error" and refusal["frame"] == 0
        assert refusal["offset"] > 0 and "arm: frame 0" in refusal["error"]
        assert pipeline.counters.events == 200
        with pytest.raises(ApiError) as refused:
            await gw.push_events("nowhere", packets)
        assert refused.value.status == 404


async def test_binary_outputs(served: Any) -> None:
    async with SpikegateClient(base_url(served), token=TOKEN) as gw:
        async for out in gw.subscribe_outputs("demo", format="binary"):
            if out.get("kind") == "spikes":
                assert out["records"].dtype.names == ("t", "neuron")
                break
