"""Sinks against a real local actuator endpoint that goes down and comes back."""

import asyncio
import socket
from typing import Any

import numpy as np
from aiohttp import web

from spikegate.drivers.packet import SPIKE_DTYPE, OutputPacket
from spikegate.service.queues import FullPolicy
from spikegate.service.sinks import HttpSink
from tests.conftest import eventually


def output(seq: int, commands: bool = True) -> OutputPacket:
    return OutputPacket(pipeline="p", seq=seq, ingress_ns=0, t_us=seq * 1000,
                        spikes=np.zeros(0, SPIKE_DTYPE),
                        commands=[{"command": "turn", "value": 0.1 * seq}] if commands else [])


class Actuator:
    """A robot's HTTP endpoint on loopback that can be switched off and on."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.port = self._free_port()
        self.runner: web.AppRunner | None = None

    @staticmethod
    def _free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.json_response({"ok": True})

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/cmd", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def down(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cmd"


async def test_http_sink_delivers_survives_an_outage_and_recovers() -> None:
    robot = Actuator()
    await robot.up()
    sink = HttpSink("robot", robot.url, timeout_s=0.5, retries=2, backoff_s=0.01)
    sink.start()
    await sink.offer(output(1))
    await sink.offer(output(2, commands=False))  # nothing to say: not sent
    await eventually(lambda: sink.delivered == 1, what="first delivery")
    assert robot.received[0]["commands"] == [{"command": "turn", "value": 0.1}]

    await robot.down()
    await sink.offer(output(3))
    await eventually(lambda: sink.failed == 1, what="a counted failure")
    assert sink.retried == 2 and "after 2 retries" in (sink.last_error or "")

    await robot.up()
    await sink.offer(output(4))
    await eventually(lambda: sink.delivered == 2, what="delivery after recovery")
    assert [m["seq"] for m in robot.received] == [1, 4]
    assert sink.stats()["failed"] == 1
    await sink.close()
    await robot.down()


async def test_a_4xx_is_not_retried() -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=422)

    app = web.Application()
    app.router.add_post("/cmd", refuse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sink = HttpSink("robot", f"http://127.0.0.1:{port}/cmd", retries=3, backoff_s=0.01)
    sink.start()
    await sink.offer(output(1))
    await eventually(lambda: sink.failed == 1)
    assert sink.retried == 0 and "HTTP 422" in (sink.last_error or "")
    await sink.close()
    await runner.cleanup()


async def test_a_stalled_endpoint_fills_only_the_sinks_own_buffer() -> None:
    release = asyncio.Event()

    async def stall(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/cmd", stall)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    sink = HttpSink("robot", f"http://127.0.0.1:{port}/cmd", timeout_s=5, buffer_size=4,
                    policy=FullPolicy.DROP_OLDEST)
    sink.start()
    for i in range(20):  # offer never waits under drop-oldest
        await asyncio.wait_for(sink.offer(output(i)), 0.5)
    assert sink.buffer.dropped >= 15
    release.set()
    await sink.close()
    await runner.cleanup()
