"""Websocket endpoints: ``/ws/outputs`` (subscribe to a pipeline's outputs)."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMsgType, web

from .gateway import Gateway
from .keys import GATEWAY
from .sinks import WebSocketSink


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
        async for msg in ws:  # clients only listen; control messages come later
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        sink.unsubscribe(client)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
    return ws


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ws/outputs", ws_outputs)
