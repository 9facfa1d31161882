"""The aiohttp application: one factory, ``init(settings)``, used by the CLI and the tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web

from .config import Settings
from .gateway import Gateway
from .sinks import WebSocketSink

GATEWAY = web.AppKey("gateway", Gateway)


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


def _websocket_sink(gateway: Gateway, pipeline: str | None) -> WebSocketSink:
    if pipeline is None:
        if len(gateway.pipelines) != 1:
            raise web.HTTPBadRequest(text="name a pipeline: /ws/outputs?pipeline=NAME")
        pipeline = next(iter(gateway.pipelines))
    if pipeline not in gateway.pipelines:
        raise web.HTTPNotFound(text=f"no pipeline named {pipeline!r}")
    for sink in gateway.pipelines[pipeline].sinks:
        if isinstance(sink, WebSocketSink):
            return sink
    raise web.HTTPNotFound(text=f"pipeline {pipeline!r} has no websocket sink")


async def ws_outputs(request: web.Request) -> web.WebSocketResponse:
    """Subscribe to a pipeline's outputs: one JSON message per output packet."""
    sink = _websocket_sink(request.app[GATEWAY], request.query.get("pipeline"))
    ws = web.WebSocketResponse(heartbeat=20.0, compress=False, max_msg_size=64 * 1024)
    await ws.prepare(request)
    client = sink.subscribe(ws)
    sender = asyncio.create_task(client.send_loop())
    try:
        async for msg in ws:  # clients only need to listen; control messages later
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        sink.unsubscribe(client)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
    return ws


def init(settings: Settings | None = None) -> web.Application:
    """Build the application; the gateway starts and stops with it."""
    settings = settings or Settings()
    app = web.Application(client_max_size=1024 * 1024)

    async def gateway_ctx(app: web.Application) -> AsyncIterator[None]:
        gateway = Gateway(settings)
        app[GATEWAY] = gateway
        # Listen at once; /readyz says 503 until kernels are compiled and sources run.
        starting = asyncio.create_task(gateway.start(), name="gateway-start")
        yield
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        await gateway.stop()

    app.cleanup_ctx.append(gateway_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/status", status)
    app.router.add_get("/ws/outputs", ws_outputs)
    return app
