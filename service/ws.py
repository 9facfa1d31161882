"""Websocket endpoints (frames and messages: docs/websocket-frames.md).

- ``/ws/outputs?pipeline=NAME[&format=binary|json]``: a pipeline's outputs,
  as binary spike frames plus JSON command messages (default), or all JSON.
- ``/ws/events?source=NAME[&max_rate=EV_PER_S]``: a source's events as binary
  frames, thinned to the client's rate.
- ``/ws/ingest?source=NAME``: a client pushes binary event frames into an
  ``ingest`` source (bearer token required).

Every client gets its own bounded buffer and send task
(``subscribers.WebSocketClient``); compression is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref

from aiohttp import WSCloseCode, WSMsgType, web

from spikegate.drivers.errors import FormatError
from spikegate.drivers.net.frames import HEADER_BYTES, MAX_FRAME_BYTES, FrameKind, decode_header
from spikegate.drivers.net.ws_ingest import IngestSource

from .auth import require_token
from .gateway import Gateway
from .keys import GATEWAY
from .pipeline import Pipeline
from .sinks import WebSocketSink
from .subscribers import OUTPUT_FORMATS, EventsSubscriber, WebSocketClient

log = logging.getLogger("spikegate.ws")

HEARTBEAT_S = 20.0
CONTROL_MSG_BYTES = 64 * 1024
EVENTS_CLIENT_BUFFER = 32
DEFAULT_MAX_RATE_EV_S = 200_000.0
MAX_RATE_EV_S = 10_000_000.0
_BYTE_AT = re.compile(r"byte (\d+): (.*)$", re.S)
OPEN_SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("open_websockets")


async def _prepared(request: web.Request, ws: web.WebSocketResponse) -> web.WebSocketResponse:
    """Upgrade ``request``; the socket is closed (going away) when the server shuts down."""
    await ws.prepare(request)
    request.app[OPEN_SOCKETS].add(ws)
    return ws


async def _close_all(app: web.Application) -> None:
    sockets = app[OPEN_SOCKETS]
    for ws in list(sockets):
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


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


def _source_pipeline(gateway: Gateway, source: str | None, endpoint: str) -> Pipeline:
    """The pipeline fed by the source called ``source`` (400/404 with a sentence)."""
    if source is None:
        if len(gateway.pipelines) != 1:
            raise web.HTTPBadRequest(text=f"name a source: {endpoint}?source=NAME")
        return next(iter(gateway.pipelines.values()))
    for pipeline in gateway.pipelines.values():
        if pipeline.source.name == source:
            return pipeline
    raise web.HTTPNotFound(text=f"no source named {source!r}")


async def _serve(ws: web.WebSocketResponse, client: WebSocketClient) -> None:
    """Run ``client``'s send task until the peer goes; ignore what a listener sends."""
    sender = asyncio.create_task(client.send_loop())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        await _stop(sender)


async def _stop(sender: asyncio.Task[None]) -> None:
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
        await sender


async def ws_outputs(request: web.Request) -> web.WebSocketResponse:
    """Subscribe to a pipeline's outputs: JSON per output, or binary spike frames."""
    format = request.query.get("format", "binary")
    if format not in OUTPUT_FORMATS:
        raise web.HTTPBadRequest(
            text=f"format must be one of {', '.join(OUTPUT_FORMATS)}, not {format!r}")
    sink = _websocket_sink(request.app[GATEWAY], request.query.get("pipeline"))
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, compress=False,
                               max_msg_size=CONTROL_MSG_BYTES)
    await _prepared(request, ws)
    client = sink.subscribe(ws, format, request.transport)
    try:
        await _serve(ws, client)
    finally:
        sink.unsubscribe(client)
    return ws


def _max_rate(request: web.Request) -> float:
    raw = request.query.get("max_rate")
    if raw is None:
        return DEFAULT_MAX_RATE_EV_S
    try:
        rate = float(raw)
    except ValueError:
        rate = float("nan")
    if not 0 < rate <= MAX_RATE_EV_S:
        raise web.HTTPBadRequest(
            text=f"max_rate must be a number of events/s in (0, {MAX_RATE_EV_S:.0f}], "
                 f"not {raw!r}")
    return rate


async def ws_events(request: web.Request) -> web.WebSocketResponse:
    """A source's events as binary frames, at most ``max_rate`` events/s for this client."""
    rate = _max_rate(request)
    pipeline = _source_pipeline(request.app[GATEWAY], request.query.get("source"), "/ws/events")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, compress=False,
                               max_msg_size=CONTROL_MSG_BYTES)
    await _prepared(request, ws)
    taps = pipeline.taps
    client = EventsSubscriber(ws, EVENTS_CLIENT_BUFFER, rate, peers=lambda: len(taps),
                              transport=request.transport)
    client.offer({"type": "hello", "source": pipeline.source.name,
                  "pipeline": pipeline.name, "geometry": list(pipeline.source.geometry),
                  "max_rate": rate})
    pipeline.taps.add(client.offer_packet)
    try:
        await _serve(ws, client)
    finally:
        pipeline.taps.discard(client.offer_packet)
    return ws


def _ingest_source(gateway: Gateway, name: str | None) -> IngestSource:
    if name is None:
        raise web.HTTPBadRequest(text="name a source: /ws/ingest?source=NAME")
    for pipeline in gateway.pipelines.values():
        if pipeline.source.name == name:
            if isinstance(pipeline.source, IngestSource):
                return pipeline.source
            raise web.HTTPConflict(text=f"source {name!r} is not an ingest source "
                                        f"(configure kind = \"ingest\" to push events)")
    raise web.HTTPNotFound(text=f"no source named {name!r}")


def ingest_frame(source: IngestSource, data: bytes, index: int, client: str,
                 max_bytes: int = MAX_FRAME_BYTES) -> dict[str, object] | None:
    """Check one ingest frame's header and feed its events; None, or the error to send back.

    A refused frame is counted in ``source.stats`` (reason "malformed" or
    "overflow"); ``offset`` in the answer is a byte offset in that frame.
    """
    where = f"{source.name}: frame {index} from {client}"
    try:
        kind, _, _ = decode_header(data, where, max_bytes)
        if kind != FrameKind.EVENTS:
            raise FormatError(f"{where}: byte 5: a {kind.name.lower()} frame; "
                              f"ingest takes events (kind 1)")
    except FormatError as exc:
        source.stats.count_drop("malformed", str(exc), n_bytes=len(data), logger=log)
        return _refusal(source.name, index, str(exc), 0, "malformed")
    if source.feed(memoryview(data)[HEADER_BYTES:], client):
        return None
    message = source.stats.last_error
    reason = "overflow" if "consumer behind" in message else \
        "closed" if "source closed" in message else "malformed"
    return _refusal(source.name, index, message, HEADER_BYTES, reason)


def _refusal(source: str, index: int, message: str, shift: int,
             reason: str) -> dict[str, object]:
    """The error message for a refused frame, its byte offset counted from the frame start."""
    match = _BYTE_AT.search(message)
    offset = int(match.group(1)) + shift if match else 0
    what = match.group(2) if match else message
    return {"type": "error", "reason": reason, "frame": index, "offset": offset,
            "error": f"{source}: frame {index}: byte {offset}: {what}"}


async def ws_ingest(request: web.Request) -> web.WebSocketResponse:
    """Take binary event frames into an ingest source; answer each bad one with an error."""
    require_token(request)  # the middleware checks too; ingest always needs the token
    source = _ingest_source(request.app[GATEWAY], request.query.get("source"))
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, compress=False,
                               max_msg_size=MAX_FRAME_BYTES + CONTROL_MSG_BYTES)
    await _prepared(request, ws)
    replies = WebSocketClient(ws, buffer_size=64)
    sender = asyncio.create_task(replies.send_loop())
    client = f"{request.remote}:{id(ws):x}"
    index = 0
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                error = ingest_frame(source, msg.data, index, client)
            elif msg.type == WSMsgType.TEXT:
                where = f"{source.name}: frame {index} from {client}"
                source.stats.count_drop("malformed", f"{where}: byte 0: a text message",
                                        n_bytes=len(msg.data), logger=log)
                error = _refusal(source.name, index, "byte 0: a text message; ingest takes "
                                 "binary event frames (docs/websocket-frames.md)", 0, "malformed")
            else:
                break
            index += 1
            if error is not None:
                replies.offer(error)
    finally:
        await _stop(sender)
    return ws


def add_routes(app: web.Application) -> None:
    app[OPEN_SOCKETS] = weakref.WeakSet()
    app.on_shutdown.append(_close_all)
    app.router.add_get("/ws/outputs", ws_outputs)
    app.router.add_get("/ws/events", ws_events)
    app.router.add_get("/ws/ingest", ws_ingest)
