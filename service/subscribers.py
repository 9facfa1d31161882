"""Websocket subscribers: one bounded buffer and one send task per client.

A producer (the websocket sink, the source tap, the ingest handler) only ever
``offer``s a message, which never waits. When the client's buffer is empty and
its socket's transport holds nothing unsent, the message is written to the
transport at once, as one websocket frame (no task wake-up per message: the
kernel's socket buffer takes it). Otherwise it goes to the bounded buffer,
where a full buffer drops its oldest message, and the client's own send task
awaits the socket, so a slow client stalls nobody but itself. What it missed
is told in the next message it gets: the ``missed`` field of a binary frame's
header, or ``"missed": N`` in a JSON object (N = messages lost since the
previous one it received).

``EventsSubscriber`` also thins the events it is offered down to its
``max_rate_ev_s`` (every k-th event of a packet, flagged ``DECIMATED``) and
halves that rate while its buffer is more than half full.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from aiohttp import web

from spikegate.drivers.net.frames import FrameFlag, encode_frame, with_missed
from spikegate.drivers.packet import SPIKE_DTYPE, EventPacket, OutputPacket

from .queues import BoundedQueue, FullPolicy

Message = bytes | str
"""A binary frame or a JSON object as text."""

OUTPUT_FORMATS = ("json", "binary")
BURST_S = 0.1
"""An events subscriber's budget holds at most this many seconds of its rate."""
MIN_RATE_FACTOR = 1.0 / 1024
TOTAL_RATE_EV_S = 4_000_000.0
"""All events subscribers of one source together get at most this many events/s ..."""
TOTAL_FRAMES_S = 4_000.0
"""... in at most this many frames/s (sends cost more than bytes): an equal share each."""


_WS_LEN7 = struct.Struct("!BB")
_WS_LEN16 = struct.Struct("!BBH")
_WS_LEN64 = struct.Struct("!BBQ")
WS_TEXT = 0x1
WS_BINARY = 0x2


def ws_frame_header(opcode: int, n_bytes: int) -> bytes:
    """RFC 6455 header of one final, unmasked (server → client) frame of ``n_bytes``."""
    first = 0x80 | opcode
    if n_bytes < 126:
        return _WS_LEN7.pack(first, n_bytes)
    if n_bytes < 65536:
        return _WS_LEN16.pack(first, 126, n_bytes)
    return _WS_LEN64.pack(first, 127, n_bytes)


def tell_missed(message: Message, missed: int) -> Message:
    """``message`` carrying ``missed``: in a frame's header, or as a key of a JSON object."""
    if isinstance(message, bytes):
        return with_missed(message, missed)
    return f'{message[:-1]}, "missed": {missed}}}' if message != "{}" else \
        f'{{"missed": {missed}}}'


class WebSocketClient:
    """One subscriber: its own bounded buffer (drop-oldest) and send task.

    ``transport`` (the request's, optional; the socket must not compress)
    lets ``offer`` write a message straight to the socket while nothing waits.
    """

    write_direct = True
    """Whether ``offer`` writes to an idle transport itself (False: always the send task)."""

    def __init__(self, ws: web.WebSocketResponse, buffer_size: int = 64,
                 format: str = "json", transport: asyncio.BaseTransport | None = None) -> None:
        if format not in OUTPUT_FORMATS:
            raise ValueError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, not {format!r}")
        self.ws = ws
        self.format = format
        self.buffer: BoundedQueue[Message] = BoundedQueue(buffer_size, FullPolicy.DROP_OLDEST)
        self.sent = 0
        self.sent_bytes = 0
        self.sent_direct = 0
        self._told = 0
        # uvloop's transports are not asyncio.WriteTransport subclasses: by what they do
        self.transport = cast(asyncio.WriteTransport, transport) if all(
            hasattr(transport, m) for m in ("write", "get_write_buffer_size", "is_closing")
        ) else None

    @property
    def missed(self) -> int:
        """Messages dropped from this client's buffer so far."""
        return self.buffer.dropped

    def offer(self, message: Message | dict[str, Any]) -> bool:
        """Queue ``message`` without waiting; False when that dropped an older one."""
        if isinstance(message, dict):
            message = json.dumps(message, separators=(",", ":"))
        transport = self.transport
        if transport is not None and self.buffer.empty() and self._write_now(transport, message):
            return True
        return self.buffer.put_nowait(message)

    def _write_now(self, transport: asyncio.WriteTransport, message: Message) -> bool:
        """Write ``message`` as one frame if ``transport`` is idle; False: it was not."""
        if not self.write_direct or self.ws.closed or transport.is_closing() \
                or transport.get_write_buffer_size():
            return False
        missed = self.buffer.dropped - self._told
        if missed:
            self._told = self.buffer.dropped
            message = tell_missed(message, missed)
        if isinstance(message, bytes):
            data, opcode = message, WS_BINARY
        else:
            data, opcode = message.encode(), WS_TEXT
        transport.write(ws_frame_header(opcode, len(data)) + data)
        self.sent += 1
        self.sent_direct += 1
        self.sent_bytes += len(data)
        return True

    async def send_loop(self) -> None:
        """Send what is buffered until the socket closes (run as this client's task)."""
        while not self.ws.closed:
            message = await self.buffer.get()
            try:
                missed = self.buffer.dropped - self._told
                if missed:
                    self._told = self.buffer.dropped
                    message = tell_missed(message, missed)
                if isinstance(message, bytes):
                    await self.ws.send_bytes(message)
                else:
                    await self.ws.send_str(message)
                self.sent += 1
                self.sent_bytes += len(message)
            finally:
                self.buffer.task_done()


def output_messages(out: OutputPacket, format: str) -> list[Message]:
    """What a subscriber in ``format`` receives for one output packet."""
    if format == "json":
        return [json.dumps(out.to_json(), separators=(",", ":"))]
    spikes = out.spikes
    if spikes.dtype != SPIKE_DTYPE:
        converted = np.empty(spikes.shape[0], dtype=SPIKE_DTYPE)
        converted["t"] = spikes["t"]
        converted["neuron"] = spikes["neuron"]
        spikes = converted
    messages: list[Message] = [encode_frame(spikes, seq=out.seq, t0_us=out.t_us,
                                            ingress_ns=out.ingress_ns)]
    if out.commands:
        messages.append(json.dumps({
            "type": "commands", "pipeline": out.pipeline, "seq": out.seq, "t_us": out.t_us,
            "ingress_ns": out.ingress_ns, "commands": out.commands,
        }, separators=(",", ":")))
    return messages


class EventsSubscriber(WebSocketClient):
    """A ``/ws/events`` client: event frames of a source, at most ``max_rate_ev_s``.

    ``peers`` (optional) gives the number of subscribers of the same source:
    each gets an equal share of ``TOTAL_RATE_EV_S`` and ``TOTAL_FRAMES_S`` (a
    packet arriving sooner than its frame interval is skipped), so many clients
    together cannot take the event loop from the pipeline. Clients thinned to
    the same stride share one encoded frame per packet.
    """

    _frames_of: EventPacket | None = None
    _frames: dict[int, bytes] = {}  # noqa: RUF012 (one packet's frames by stride, shared)

    def __init__(self, ws: web.WebSocketResponse, buffer_size: int = 64,
                 max_rate_ev_s: float = 200_000.0,
                 peers: Callable[[], int] | None = None,
                 transport: asyncio.BaseTransport | None = None) -> None:
        super().__init__(ws, buffer_size, "binary", transport)
        if not max_rate_ev_s > 0:
            raise ValueError(f"max_rate must be positive, not {max_rate_ev_s}")
        self.max_rate_ev_s = max_rate_ev_s
        self.peers = peers
        self._t_frame = 0.0
        self.rate_factor = 1.0
        self.events_offered = 0
        self.events_kept = 0
        self._budget = max_rate_ev_s * BURST_S
        self._t_last = time.monotonic()

    @property
    def rate_ev_s(self) -> float:
        """The rate this client gets now (its share, lowered while it falls behind)."""
        rate = self.max_rate_ev_s
        if self.peers is not None:
            rate = min(rate, TOTAL_RATE_EV_S / max(self.peers(), 1))
        return rate * self.rate_factor

    def offer_packet(self, packet: EventPacket) -> None:
        """The source tap: thin ``packet`` to this client's budget and queue its frame."""
        n = len(packet)
        if n == 0:
            return
        self.events_offered += n
        now = time.monotonic()
        depth = self.buffer.qsize()
        if depth * 2 >= self.buffer.maxsize:
            self.rate_factor = max(self.rate_factor / 2, MIN_RATE_FACTOR)
        elif depth == 0 and self.rate_factor < 1.0:
            self.rate_factor = min(1.0, self.rate_factor * 1.25)
        rate = self.rate_ev_s
        self._budget = min(self._budget + (now - self._t_last) * rate, max(rate * BURST_S, 1.0))
        self._t_last = now
        if self.peers is not None:
            if now - self._t_frame < max(self.peers(), 1) / TOTAL_FRAMES_S:
                return  # over its share of frames: this packet is skipped (budget kept)
            self._t_frame = now
        stride = 1
        if n > self._budget:
            keep = int(self._budget)
            if keep < 1:
                return
            stride = math.ceil(n / keep)
        cls = EventsSubscriber
        if cls._frames_of is not packet:
            cls._frames_of, cls._frames = packet, {}
        frame = cls._frames.get(stride)
        if frame is None:
            events = packet.events[::stride] if stride > 1 else packet.events
            frame = cls._frames[stride] = encode_frame(
                events, seq=packet.seq, t0_us=packet.t_first_us, ingress_ns=packet.ingress_ns,
                flags=FrameFlag.DECIMATED if stride > 1 else FrameFlag.NONE)
        kept = math.ceil(n / stride)
        self._budget -= kept
        self.events_kept += kept
        self.offer(frame)
