"""Actuator sinks: each has its own bounded buffer and task, so none can stall the core.

A sink is offered every ``OutputPacket`` of its pipeline by the hub. What it
cannot keep is counted by its buffer's policy; what it could not deliver
(an endpoint down past its retries) is counted as ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
from aiohttp import web

from spikegate.drivers.packet import EventPacket, OutputPacket

from .queues import BoundedQueue, FullPolicy
from .stats import LatencyWindow, RateMeter
from .subscribers import WebSocketClient, output_messages

log = logging.getLogger("spikegate.sinks")


class Sink:
    """A bounded buffer and a delivery task; subclasses implement ``deliver``."""

    kind = "sink"
    direct = False
    """True: ``deliver_nowait`` never waits and does no I/O, so the core task hands each
    output to it itself (``deliver_now``) instead of through the hub and this sink's task."""

    def __init__(self, name: str, buffer_size: int = 256,
                 policy: FullPolicy | str = FullPolicy.DROP_OLDEST) -> None:
        self.name = name
        self.buffer: BoundedQueue[OutputPacket] = BoundedQueue(buffer_size, policy)
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None
        self.latency = LatencyWindow()
        self.rate = RateMeter()
        self._task: asyncio.Task[None] | None = None

    def wants(self, out: OutputPacket) -> bool:
        """Whether this sink takes ``out`` at all (e.g. only packets with commands)."""
        return True

    async def offer(self, out: OutputPacket) -> None:
        """Hand ``out`` to the buffer (waits only under the ``block`` policy)."""
        if self.wants(out):
            await self.buffer.put(out)

    async def deliver(self, out: OutputPacket) -> None:
        raise NotImplementedError

    def deliver_nowait(self, out: OutputPacket) -> None:
        """A ``direct`` sink's delivery: must not wait (only ``put_nowait`` onwards)."""
        raise NotImplementedError

    def deliver_now(self, out: OutputPacket) -> None:
        """Deliver ``out`` on the caller's turn of the loop; a failure is counted, never raised."""
        if not self.wants(out):
            return
        try:
            self.deliver_nowait(out)
        except Exception as exc:  # a sink's failure is counted, never fatal to the core
            self.failed += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("sink %s: delivery failed: %s", self.name, self.last_error)
            return
        self.delivered += 1
        self.rate.add(1)
        self.latency.add_ns(out.ingress_ns)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sink:{self.name}")

    async def _run(self) -> None:
        while True:
            out = await self.buffer.get()
            try:
                await self.deliver(out)
                self.delivered += 1
                self.rate.add(1)
                self.latency.add_ns(out.ingress_ns)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a sink's failure is counted, never fatal
                self.failed += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("sink %s: delivery failed: %s", self.name, self.last_error)
            finally:
                self.buffer.task_done()

    async def close(self, drain_timeout_s: float = 2.0) -> None:
        """Deliver what is buffered (bounded by the timeout), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.buffer.join(), drain_timeout_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "delivered": self.delivered,
            "outputs_per_s": self.rate.current(),
            "failed": self.failed,
            "buffer": self.buffer.stats(),
            "last_error": self.last_error,
            "latency_us": self.latency.percentiles_us(),
        }


class WebSocketSink(Sink):
    """Fans outputs out to every websocket subscriber of the pipeline."""

    kind = "websocket"
    direct = True

    def __init__(self, name: str, buffer_size: int = 256, client_buffer: int = 64) -> None:
        super().__init__(name, buffer_size, FullPolicy.DROP_OLDEST)
        self.client_buffer = client_buffer
        self.clients: set[WebSocketClient] = set()
        self.client_drops = 0

    def subscribe(self, ws: web.WebSocketResponse, format: str = "json",
                  transport: asyncio.BaseTransport | None = None) -> WebSocketClient:
        """A new client getting outputs as JSON text or binary spike frames (+ JSON commands);
        ``transport``: the request's, for direct writes (``WebSocketClient``)."""
        client = WebSocketClient(ws, self.client_buffer, format, transport)
        self.clients.add(client)
        return client

    def unsubscribe(self, client: WebSocketClient) -> None:
        self.client_drops += client.buffer.dropped
        self.clients.discard(client)

    def wants(self, out: OutputPacket) -> bool:
        return bool(self.clients)

    async def deliver(self, out: OutputPacket) -> None:
        self.deliver_nowait(out)

    def deliver_nowait(self, out: OutputPacket) -> None:
        encoded: dict[str, list] = {}  # each format encoded once, shared by its clients
        for client in list(self.clients):
            messages = encoded.get(client.format)
            if messages is None:
                messages = encoded[client.format] = output_messages(out, client.format)
            for message in messages:
                client.offer(message)

    def stats(self) -> dict[str, Any]:
        base = super().stats()
        base["clients"] = len(self.clients)
        base["client_drops"] = self.client_drops + sum(c.buffer.dropped for c in self.clients)
        return base


class HttpSink(Sink):
    """POSTs each output that carries commands, as JSON, to an actuator endpoint.

    A failed POST (connection refused, timeout, a 5xx) is retried with
    exponential backoff, ``retries`` times; then it counts as ``failed`` and
    the next output goes on. A 4xx is not retried: the endpoint refused it.
    """

    kind = "http"

    def __init__(self, name: str, url: str, timeout_s: float = 1.0, retries: int = 3,
                 backoff_s: float = 0.05, backoff_max_s: float = 2.0, buffer_size: int = 256,
                 policy: FullPolicy | str = FullPolicy.DROP_OLDEST,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(name, buffer_size, policy)
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.headers = headers or {}
        self.retried = 0
        self._session: aiohttp.ClientSession | None = None

    def wants(self, out: OutputPacket) -> bool:
        return bool(out.commands)

    async def deliver(self, out: OutputPacket) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers)
        body = out.to_json()
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                async with self._session.post(self.url, json=body) as resp:
                    if resp.status < 400:
                        return
                    if resp.status < 500:
                        raise RuntimeError(f"{self.url} refused the command: HTTP {resp.status}")
                    error = f"{self.url}: HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{self.url}: {type(exc).__name__}: {exc}"
            if attempt < self.retries:
                self.retried += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
        raise ConnectionError(f"{error} (after {self.retries} retries)")

    async def close(self, drain_timeout_s: float = 2.0) -> None:
        await super().close(drain_timeout_s)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def stats(self) -> dict[str, Any]:
        base = super().stats()
        base["url"] = self.url
        base["retried"] = self.retried
        return base


class RecorderSink(Sink):
    """Records what came *in* (the source's packets) to an event file that replays exactly.

    It taps the pipeline before the queue (``Pipeline.taps``): ``tap`` only
    ``put_nowait``s into this sink's bounded buffer, so the disk never slows the
    source; what the buffer cannot hold is counted. Writes run in the
    recorder's worker thread. Output packets from the hub are not its business.
    """

    kind = "recorder"

    def __init__(self, name: str, path: str, format: str | None = None,
                 buffer_size: int = 4096,
                 policy: FullPolicy | str = FullPolicy.DROP_NEWEST) -> None:
        from spikegate.drivers.files.recorder import Recorder, writable_format

        super().__init__(name, buffer_size, policy)
        writable_format(path, format)  # refuse an unwritable format at build time
        self.path = path
        self.recorder = Recorder(path, format, name=name)
        self.events = 0

    def wants(self, out: OutputPacket) -> bool:
        return False

    def tap(self, packet: EventPacket) -> None:
        self.buffer.put_nowait(packet)

    async def deliver(self, out: OutputPacket) -> None:
        packet: EventPacket = out
        await self.recorder.write(packet)
        self.events += len(packet)

    async def close(self, drain_timeout_s: float = 10.0) -> None:
        await super().close(drain_timeout_s)
        await self.recorder.close()

    def stats(self) -> dict[str, Any]:
        base = super().stats()
        base.update(path=self.path, events=self.events,
                    dropped_unwritable=sum(self.recorder.stats.dropped.values()))
        return base
