"""A pipeline: source task → bounded queue → core task → hub → sinks.

- The source task awaits ``queue.put(packet)``; the queue's policy decides
  what a full queue does (block = backpressure, or a counted drop).
- The core task runs ``network.step`` in a one-worker executor: the network's
  state belongs to that thread, and the ``nogil`` kernels leave the event
  loop free. Sequence gaps per source are counted.
- The hub offers each output to every sink's own bounded buffer; the core
  only ever ``put_nowait``s into the hub queue (drop-oldest, counted), so no
  sink can make it wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from spikegate.drivers.packet import EventPacket, Geometry, OutputPacket

from .decoding import Decoder
from .queues import BoundedQueue, FullPolicy
from .sinks import Sink
from .stats import LatencyWindow, RateMeter

log = logging.getLogger("spikegate.pipeline")


class Source(Protocol):
    name: str

    @property
    def geometry(self) -> Geometry: ...

    def packets(self) -> AsyncIterator[EventPacket]: ...


class StepOutput(Protocol):
    spikes: np.ndarray
    synops: int


class Core(Protocol):
    def step(self, events: np.ndarray) -> Any: ...

    def warm_up(self) -> None: ...


@dataclass(slots=True)
class CoreCounters:
    packets: int = 0
    events: int = 0
    spikes: int = 0
    synops: int = 0
    kernel_s: float = 0.0
    seq_gaps: int = 0
    packets_lost: int = 0
    errors: int = 0
    last_error: str | None = None
    expected_seq: dict[str, int] = field(default_factory=dict)


class Pipeline:
    """One source, one network, one decoder, many sinks."""

    def __init__(self, name: str, source: Source, core: Core, decoder: Decoder,
                 sinks: list[Sink], queue_size: int = 64,
                 queue_policy: FullPolicy | str = FullPolicy.DROP_OLDEST,
                 hub_size: int = 256) -> None:
        self.name = name
        self.source = source
        self.core = core
        self.decoder = decoder
        self.sinks = sinks
        self.queue: BoundedQueue[EventPacket] = BoundedQueue(queue_size, queue_policy)
        self.hub: BoundedQueue[OutputPacket] = BoundedQueue(hub_size, FullPolicy.DROP_OLDEST)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"core:{name}")
        self.counters = CoreCounters()
        self.source_rate = RateMeter()
        self.core_latency = LatencyWindow()
        self.state = "created"
        self.source_packets = 0
        self.source_done = False
        self.source_error: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def warm_up(self) -> None:
        """Compile kernels in the core thread, before any event arrives."""
        await asyncio.get_running_loop().run_in_executor(self.executor, self.core.warm_up)

    async def start(self) -> None:
        if self.state == "running":
            return
        self.source_done = False
        self.source_error = None
        for sink in self.sinks:
            sink.start()
        self._tasks = [
            asyncio.create_task(self._source_loop(), name=f"source:{self.name}"),
            asyncio.create_task(self._core_loop(), name=f"core:{self.name}"),
            asyncio.create_task(self._hub_loop(), name=f"hub:{self.name}"),
        ]
        self.state = "running"

    async def _source_loop(self) -> None:
        try:
            async for packet in self.source.packets():
                self.source_packets += 1
                self.source_rate.add(len(packet))
                await self.queue.put(packet)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a source failure stops that source, not the service
            self.source_error = f"{type(exc).__name__}: {exc}"
            log.error("pipeline %s: source %s failed: %s", self.name, self.source.name,
                      self.source_error,
                      extra={"pipeline": self.name, "source": self.source.name})
        finally:
            self.source_done = True

    async def _core_loop(self) -> None:
        loop = asyncio.get_running_loop()
        c = self.counters
        while True:
            packet = await self.queue.get()
            try:
                expected = c.expected_seq.get(packet.source)
                if expected is not None and packet.seq != expected:
                    c.seq_gaps += 1
                    c.packets_lost += max(packet.seq - expected, 0)
                c.expected_seq[packet.source] = packet.seq + 1
                t0 = time.perf_counter()
                result = await loop.run_in_executor(self.executor, self.core.step,
                                                    packet.events)
                c.kernel_s += time.perf_counter() - t0
                c.packets += 1
                c.events += len(packet)
                c.spikes += int(result.spikes.shape[0])
                c.synops += int(result.synops)
                t_us = packet.t_last_us
                out = OutputPacket(
                    pipeline=self.name, seq=packet.seq, ingress_ns=packet.ingress_ns,
                    t_us=t_us, spikes=result.spikes,
                    commands=self.decoder.decode(result.spikes, t_us),
                    synops=int(result.synops), events_in=len(packet))
                self.core_latency.add_ns(packet.ingress_ns)
                self.hub.put_nowait(out)
            except Exception as exc:  # a bad packet is counted and skipped
                c.errors += 1
                c.last_error = f"packet {packet.seq}: {type(exc).__name__}: {exc}"
                log.warning("pipeline %s: core: %s", self.name, c.last_error,
                            extra={"pipeline": self.name, "source": packet.source})
            finally:
                self.queue.task_done()

    async def _hub_loop(self) -> None:
        while True:
            out = await self.hub.get()
            try:
                for sink in self.sinks:
                    await sink.offer(out)
            finally:
                self.hub.task_done()

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Stop the source, let queued packets through the core and hub, flush sinks."""
        if self.state != "running":
            return
        self.state = "stopping"
        source_task, core_task, hub_task = self._tasks
        source_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await source_task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), drain_timeout_s)
            await asyncio.wait_for(self.hub.join(), drain_timeout_s)
        for task in (core_task, hub_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(sink.close() for sink in self.sinks))
        self._tasks = []
        self.state = "stopped"

    def settings(self) -> dict[str, Any]:
        """The live settings ``apply_settings`` can change (a JSON-able snapshot)."""
        memory = getattr(self.decoder, "memory", None)
        interval_us = getattr(memory, "command_interval_us", None)
        return {
            "queue_policy": str(self.queue.policy),
            "command_interval_ms": None if interval_us is None else interval_us / 1000.0,
            "sinks": {s.name: {"policy": str(s.buffer.policy)} for s in self.sinks},
        }

    def apply_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change live settings without a restart; return ``settings()``.

        ``changes`` holds only the fields a client sent (validated already by
        ``schemas.PipelineSettingsPatch``); ``None`` means "clear" where a field
        allows it. Each key has one setter in ``SETTERS``: a new setting is a
        field on the patch model plus one setter here. Every change is checked
        before any is made, so a refused patch changes nothing.
        """
        unknown = sorted(set(changes) - set(self.SETTERS))
        if unknown:
            raise ValueError(f"pipeline {self.name}: no live setting named {', '.join(unknown)}")
        for key, value in changes.items():
            self.SETTERS[key][0](self, value)
        for key, value in changes.items():
            self.SETTERS[key][1](self, value)
        return self.settings()

    def _check_interval(self, value: float) -> None:
        if not hasattr(getattr(self.decoder, "memory", None), "command_interval_us"):
            raise ValueError(f"pipeline {self.name}: its decoder has no command interval")

    def _set_interval(self, value: float) -> None:
        self.decoder.memory.command_interval_us = max(1, int(value * 1000))  # type: ignore[attr-defined]

    def _check_sinks(self, value: Mapping[str, Mapping[str, Any]]) -> None:
        names = {s.name for s in self.sinks}
        unknown = sorted(set(value) - names)
        if unknown:
            raise LookupError(f"pipeline {self.name}: no sink named {', '.join(unknown)}")

    def _set_sinks(self, value: Mapping[str, Mapping[str, Any]]) -> None:
        for sink in self.sinks:
            policy = value.get(sink.name, {}).get("policy")
            if policy is not None:
                sink.buffer.policy = FullPolicy(policy)

    def _set_queue_policy(self, value: str) -> None:
        self.queue.policy = FullPolicy(value)

    def _accept(self, value: Any) -> None:
        return None

    # name -> (check, apply): check raises ValueError/LookupError and changes nothing.
    SETTERS: ClassVar[dict[str, tuple[Callable[[Pipeline, Any], None],
                                      Callable[[Pipeline, Any], None]]]] = {
        "queue_policy": (_accept, _set_queue_policy),
        "command_interval_ms": (_check_interval, _set_interval),
        "sinks": (_check_sinks, _set_sinks),
    }

    async def close(self) -> None:
        await self.stop()
        self.executor.shutdown(wait=True)

    def status(self) -> dict[str, Any]:
        c = self.counters
        sink_drops = sum(s.buffer.dropped + s.failed for s in self.sinks)
        return {
            "name": self.name,
            "state": self.state,
            "source": {
                "name": self.source.name,
                "geometry": list(self.source.geometry),
                "packets": self.source_packets,
                "events_per_s": self.source_rate.current(),
                "events": self.source_rate.total,
                "done": self.source_done,
                "last_error": self.source_error,
            },
            "queue": self.queue.stats(),
            "core": {
                "packets": c.packets,
                "events": c.events,
                "spikes": c.spikes,
                "synops": c.synops,
                "kernel_s": round(c.kernel_s, 6),
                "seq_gaps": c.seq_gaps,
                "packets_lost_upstream": c.packets_lost,
                "errors": c.errors,
                "last_error": c.last_error,
                "latency_us": self.core_latency.percentiles_us(),
            },
            "hub": self.hub.stats(),
            "sinks": [s.stats() for s in self.sinks],
            "drops": {
                "queue": self.queue.dropped,
                "hub": self.hub.dropped,
                "sinks": sink_drops,
            },
        }
