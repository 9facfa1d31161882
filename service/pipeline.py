"""A pipeline: source task → bounded queue → core task → hub → sinks.

- The source task awaits ``queue.put(packet)``; the queue's policy decides
  what a full queue does (block = backpressure, or a counted drop).
- The core task runs ``network.step`` in a one-worker executor, so the
  ``nogil`` kernels leave the event loop free; a small call (at most
  ``inline_events`` events, whose measured cost is within ``INLINE_BUDGET_S``)
  runs on the loop itself, as a thread hand-off would cost more than the call.
  One lock keeps every use of the network's state (calls, live allocation
  changes) one at a time, whichever thread it runs in. Sequence gaps per
  source are counted.
- Between queue and core, the ``Allocator`` (service/allocation.py) applies
  the resource-allocation knobs (ROI, rate budgets, latency budget with load
  shedding); what it takes out is counted as shed, per reason. Under a latency
  budget the core takes at most ``chunk_events`` per call: queued packets are
  coalesced up to it and larger ones split, one output per call.
- Accounting: every event the source gave is processed, shed, dropped by the
  queue, or lost in a failed core call (``status()["accounting"]``).
- The hub offers each output to every sink's own bounded buffer; the core
  only ever ``put_nowait``s into the hub queue (drop-oldest, counted), so no
  sink can make it wait. A ``direct`` sink (the websocket fan-out: it only
  ``put_nowait``s into its clients' bounded buffers, drops counted there) is
  handed each output by the core task itself, with no hub or sink task hop;
  the hub runs only for the other sinks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
from pydantic import ValidationError

from spikegate.drivers.packet import EventPacket, Geometry, OutputPacket
from spikegate.models.energy import EnergyMeter
from spikegate.models.weights import bank_of

from .allocation import (
    ALLOCATION_FIELDS,
    AllocationConfig,
    Allocator,
    check_allocation,
    check_core_allocation,
)
from .decoding import Decoder
from .queues import BoundedQueue, FullPolicy
from .sinks import Sink
from .stats import LatencyWindow, RateMeter

log = logging.getLogger("spikegate.pipeline")

COALESCE_EVENTS = 65_536
"""Most events one core call takes from packets that wait (no latency budget set)."""
INLINE_EVENTS = 4096
"""A core call of at most this many events may run on the event loop (see ``INLINE_BUDGET_S``)."""
INLINE_BUDGET_S = 500e-6
"""... when the core's cost model puts it at most this long: an executor round trip costs
~0.2 ms of latency, more than a 1 000-event call itself; anything longer would hold up the
loop, so it goes to the core thread."""


class Source(Protocol):
    name: str

    @property
    def geometry(self) -> Geometry: ...

    def packets(self) -> AsyncIterator[EventPacket]: ...


class StepOutput(Protocol):
    spikes: np.ndarray  # SPIKE_DTYPE

    @property
    def synops_total(self) -> int: ...


class Core(Protocol):
    def step(self, events: np.ndarray) -> Any: ...

    def warm_up(self) -> None: ...


@dataclass(slots=True)
class CoreCounters:
    packets: int = 0
    events: int = 0
    outputs: int = 0
    spikes: int = 0
    synops: int = 0
    kernel_s: float = 0.0
    seq_gaps: int = 0
    packets_lost: int = 0
    errors: int = 0
    events_failed: int = 0
    last_error: str | None = None
    expected_seq: dict[str, int] = field(default_factory=dict)


class Pipeline:
    """One source, one network, one decoder, many sinks."""

    inline_events = INLINE_EVENTS
    """Most events of a core call run on the event loop (0: every call in the core thread)."""

    def __init__(self, name: str, source: Source, core: Core, decoder: Decoder,
                 sinks: list[Sink], queue_size: int = 64,
                 queue_policy: FullPolicy | str = FullPolicy.DROP_OLDEST,
                 hub_size: int = 256, allocation: AllocationConfig | None = None) -> None:
        self.name = name
        self.source = source
        self.core = core
        self.decoder = decoder
        self.sinks = sinks
        self.queue: BoundedQueue[EventPacket] = BoundedQueue(queue_size, queue_policy, weigh=len)
        self.hub: BoundedQueue[OutputPacket] = BoundedQueue(hub_size, FullPolicy.DROP_OLDEST)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"core:{name}")
        self._core_lock = threading.Lock()
        """Held by whatever uses the network's state: a core call, an allocation change."""
        self.inline_calls = 0
        self.counters = CoreCounters()
        self.source_rate = RateMeter()
        self.core_latency = LatencyWindow()
        self._interval_base_us: int | None = None
        self.allocator = Allocator(source.geometry)
        self.allocator.policy.core = core
        self.energy = EnergyMeter(core)
        self.allocation = AllocationConfig()
        if allocation is not None:
            self._check_allocation(allocation)
            self._apply_allocation(allocation)
        self.state = "created"
        self.source_packets = 0
        self.source_done = False
        self.source_error: str | None = None
        self.taps: set[Callable[[EventPacket], None]] = set()
        """Called with every source packet before the queue (``/ws/events``); never block."""
        self._tasks: list[asyncio.Task[None]] = []

    async def warm_up(self) -> None:
        """Compile kernels in the core thread, before any event arrives."""
        await asyncio.get_running_loop().run_in_executor(
            self.executor, self._with_core, self.core.warm_up)

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
                for tap in tuple(self.taps):
                    tap(packet)
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
        while True:
            batch = [await self.queue.get()]
            limit = self.allocator.chunk_events()
            # coalesce what waits, up to one call's worth once shed: one thread
            # hand-off for the lot, so a core that fell behind catches up
            most = COALESCE_EVENTS if limit is None else limit
            keep = self.allocator.keep_fraction
            total = len(batch[0]) * keep
            while total < most and not self.queue.empty():
                batch.append(self.queue.get_nowait())
                total += len(batch[-1]) * keep
            try:
                await self._process(loop, batch, limit)
            finally:
                for _ in batch:
                    self.queue.task_done()

    def _with_core(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._core_lock:
            return fn(*args)

    async def _call_core(self, loop: asyncio.AbstractEventLoop, n_events: int,
                         fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the loop when a call of ``n_events`` is known to be cheap, else
        in the core thread (so the first calls, whose cost is not known yet); either way
        under the core lock."""
        if n_events <= self.inline_events:
            per_call, per_event = self.allocator.cost_model()  # (0, 0) before any call
            if per_event > 0 and per_call + n_events * per_event <= INLINE_BUDGET_S:
                self.inline_calls += 1
                with self._core_lock:
                    return fn(*args)
        return await loop.run_in_executor(self.executor, self._with_core, fn, *args)

    def _admit_and_step(self, batch: list[EventPacket], limit: int | None
                        ) -> tuple[Any, float, np.ndarray, np.ndarray | None]:
        """Under the core lock (loop or core thread): admission, then the first core call."""
        parts = []
        for p in batch:
            try:
                parts.append(self.allocator.admit(p.events, p.ingress_ns))
            except Exception as exc:  # that packet is lost, counted; the others go on
                c = self.counters
                c.events_failed += len(p)
                c.errors += 1
                c.last_error = f"packet {p.seq}: admission: {type(exc).__name__}: {exc}"
        if not parts:
            raise ValueError("no packet of the batch passed admission")
        events = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return self._step_chunk(events, limit)

    def _step_chunk(self, events: np.ndarray, limit: int | None
                    ) -> tuple[Any, float, np.ndarray, np.ndarray | None]:
        rest = None
        if limit is not None and events.shape[0] > limit:
            events, rest = events[:limit], events[limit:]
        t0 = time.perf_counter()
        try:
            result = self.core.step(events)
        except Exception:
            self.counters.events_failed += int(events.shape[0]) + (
                0 if rest is None else int(rest.shape[0]))
            raise
        core_s = time.perf_counter() - t0
        self.allocator.observe(int(events.shape[0]), core_s)
        bank = bank_of(self.core)
        if bank.state_rounded:  # neuron state kept below float32: rounded per call
            bank.round_state()
        updates = getattr(result, "neuron_updates", 0)
        self.allocator.observe_ops(int(events.shape[0]), int(result.synops_total),
                                   sum(updates.values()) if isinstance(updates, dict)
                                   else int(updates))
        self.energy.observe(result, events)
        return result, core_s, events, rest

    async def _process(self, loop: asyncio.AbstractEventLoop, batch: list[EventPacket],
                       limit: int | None) -> None:
        c = self.counters
        for packet in batch:
            expected = c.expected_seq.get(packet.source)
            if expected is not None and packet.seq != expected:
                c.seq_gaps += 1
                c.packets_lost += max(packet.seq - expected, 0)
            c.expected_seq[packet.source] = packet.seq + 1
        last = batch[-1]
        try:
            n_in = sum(len(p) for p in batch)
            result, core_s, events, rest = await self._call_core(
                loop, n_in if limit is None else min(n_in, limit),
                self._admit_and_step, batch, limit)
            c.packets += len(batch)
            while True:
                c.kernel_s += core_s
                c.events += int(events.shape[0])
                c.spikes += int(result.spikes.shape[0])
                c.synops += int(result.synops_total)
                t_us = int(events["t"][-1]) if events.shape[0] else last.t_last_us
                out = OutputPacket(
                    pipeline=self.name, seq=last.seq, ingress_ns=batch[0].ingress_ns,
                    t_us=t_us, spikes=result.spikes,
                    commands=self.decoder.decode(result.spikes, t_us),
                    synops=int(result.synops_total), events_in=int(events.shape[0]))
                self.core_latency.add_ns(batch[0].ingress_ns)
                c.outputs += 1
                hub = False
                for sink in self.sinks:
                    if sink.direct:
                        sink.deliver_now(out)  # never waits; its failures are its own count
                    else:
                        hub = True
                if hub:
                    self.hub.put_nowait(out)
                if rest is None:
                    break
                result, core_s, events, rest = await self._call_core(
                    loop, int(rest.shape[0]) if limit is None else min(int(rest.shape[0]), limit),
                    self._step_chunk, rest, limit)
        except Exception as exc:  # a bad packet is counted and skipped
            c.errors += 1
            c.last_error = f"packet {last.seq}: {type(exc).__name__}: {exc}"
            log.warning("pipeline %s: core: %s", self.name, c.last_error,
                        extra={"pipeline": self.name, "source": last.source})

    async def _hub_loop(self) -> None:
        while True:
            out = await self.hub.get()
            try:
                for sink in self.sinks:
                    if not sink.direct:
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
            # allocation knobs appear once set (absent: not applied)
            **self.allocation.model_dump(mode="json", exclude_defaults=True),
        }

    def apply_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change live settings without a restart; return ``settings()``.

        ``changes`` holds only the fields a client sent (validated already by
        ``schemas.PipelineSettingsPatch``); ``None`` means "clear" where a field
        allows it. Each key has one setter in ``SETTERS``: a new setting is a
        field on the patch model plus one setter here. Every change is checked
        before any is made, so a refused patch changes nothing.
        """
        unknown = sorted(set(changes) - set(self.SETTERS) - set(ALLOCATION_FIELDS))
        if unknown:
            raise ValueError(f"pipeline {self.name}: no live setting named {', '.join(unknown)}")
        allocation = {k: v for k, v in changes.items() if k in ALLOCATION_FIELDS}
        others = {k: v for k, v in changes.items() if k not in ALLOCATION_FIELDS}
        new_allocation = None
        if allocation:
            new_allocation = self._merged_allocation(allocation)
            self._check_allocation(new_allocation)
        for key, value in others.items():
            self.SETTERS[key][0](self, value)
        for key, value in others.items():
            self.SETTERS[key][1](self, value)
        if new_allocation is not None:
            self._apply_allocation(new_allocation)
        return self.settings()

    # --- resource allocation (service/allocation.py; the network's precision/sparsity)

    def _merged_allocation(self, changes: Mapping[str, Any]) -> AllocationConfig:
        """The allocation with ``changes`` on top (``None``: back to the default)."""
        data = self.allocation.model_dump()
        for key, value in changes.items():
            data[key] = AllocationConfig.model_fields[key].default if value is None else value
        try:
            return AllocationConfig.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"pipeline {self.name}: {loc}: {first['msg']}") from None

    def _check_allocation(self, cfg: AllocationConfig) -> None:
        """Raise ``ValueError`` with a sentence when ``cfg`` does not fit; change nothing."""
        check_allocation(cfg, self.source.geometry, f"pipeline {self.name}")
        check_core_allocation(self.core, cfg, f"pipeline {self.name}")

    def _apply_allocation(self, cfg: AllocationConfig) -> None:
        """Make ``cfg`` the allocation; the core thread applies it between two packets."""
        previous, self.allocation = self.allocation, cfg
        self._cap_command_interval()

        def apply() -> None:
            self.allocator.configure(cfg)
            self.allocator.apply_core(self.core, previous, cfg)
            if cfg.energy != previous.energy:
                self.energy.energies = cfg.energy.op_energies()

        try:
            self.executor.submit(self._with_core, apply)
        except RuntimeError:  # the executor is shut down (a closed pipeline): apply here
            self._with_core(apply)

    def _check_interval(self, value: float) -> None:
        if not hasattr(getattr(self.decoder, "memory", None), "command_interval_us"):
            raise ValueError(f"pipeline {self.name}: its decoder has no command interval")

    def _set_interval(self, value: float) -> None:
        self._interval_base_us = max(1, int(value * 1000))
        self._cap_command_interval()

    def _cap_command_interval(self) -> None:
        """Under a latency budget, commands flush at least twice per budget: the decoder's
        interval is the configured one, capped at half the budget."""
        memory = getattr(self.decoder, "memory", None)
        if not hasattr(memory, "command_interval_us"):
            return
        if self._interval_base_us is None:
            self._interval_base_us = int(memory.command_interval_us)  # type: ignore[union-attr]
        budget_ms = self.allocation.latency_budget_ms
        cap = self._interval_base_us if budget_ms is None else int(budget_ms * 500)
        memory.command_interval_us = max(1, min(self._interval_base_us, cap))  # type: ignore[union-attr]

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
        shed = self.allocator.shed
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
                "outputs": c.outputs,
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
            "shed": {"total": shed.total, "by_reason": dict(shed.by_reason)},
            "allocation": self.allocator.status(),
            "accounting": {
                "events_in": self.source_rate.total,
                "processed": c.events,
                "shed": shed.total,
                "dropped": {"queue": self.queue.dropped_weight, "core_error": c.events_failed},
            },
            **self.allocator.core_status(self.core),
            "energy": self.energy.report(),
        }

    def energy_report(self) -> dict[str, Any]:
        """Counted synaptic operations and neuron updates, priced (``models/energy.py``):
        what /api/v1/status shows under ``energy``, for the metrics exporter too."""
        return self.energy.report()
