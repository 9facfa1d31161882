"""The pipeline's counters: sequence gaps, queue drops, sinks that cannot keep up."""

import asyncio
from collections.abc import AsyncIterator

from spikegate.drivers.packet import EventPacket, Geometry, OutputPacket
from spikegate.models.demo import TrackerNetwork
from spikegate.service.decoding import TrackerDecoder
from spikegate.service.pipeline import Pipeline
from spikegate.service.queues import FullPolicy
from spikegate.service.sinks import Sink, WebSocketSink
from tests.conftest import eventually, make_packet

GEOM = Geometry(32, 32)


class ListSource:
    def __init__(self, packets: list[EventPacket], pause_s: float = 0.0) -> None:
        self.name = "list"
        self.items = packets
        self.pause_s = pause_s

    @property
    def geometry(self) -> Geometry:
        return GEOM

    async def packets(self) -> AsyncIterator[EventPacket]:
        for p in self.items:
            yield p
            if self.pause_s:
                await asyncio.sleep(self.pause_s)  # a live sensor's pace


class StuckSink(Sink):
    """Never finishes a delivery: the worst actuator."""

    async def deliver(self, out: OutputPacket) -> None:
        await asyncio.Event().wait()


def pipeline(packets: list[EventPacket], sinks: list[Sink], pause_s: float = 0.0,
             **kw: object) -> Pipeline:
    net = TrackerNetwork(GEOM, n_x=3, n_y=3)
    return Pipeline("p", ListSource(packets, pause_s), net, TrackerDecoder(9, net.decode), sinks,
                    **kw)  # type: ignore[arg-type]


async def test_sequence_gaps_are_counted() -> None:
    packets = [make_packet(20, seq=s, t0_us=s * 1000) for s in (0, 1, 4, 5, 9)]
    p = pipeline(packets, [])
    await p.start()
    await eventually(lambda: p.counters.packets == 5)
    await p.close()
    assert p.counters.seq_gaps == 2 and p.counters.packets_lost == 5


async def test_a_stuck_sink_never_slows_the_core() -> None:
    packets = [make_packet(50, seq=s, t0_us=s * 1000) for s in range(200)]
    stuck = StuckSink("stuck", buffer_size=2, policy=FullPolicy.DROP_OLDEST)
    p = pipeline(packets, [stuck], pause_s=0.001, queue_policy=FullPolicy.BLOCK)
    await p.start()
    await eventually(lambda: p.counters.packets == 200, what="all packets through the core")
    await eventually(lambda: p.hub.qsize() == 0)
    outputs = p.hub.put_count  # the core may coalesce packets that wait into one call
    assert outputs > 20
    # one output stuck in delivery, two buffered, every other one counted as dropped
    assert stuck.buffer.dropped == outputs - 3
    assert p.status()["drops"]["sinks"] == stuck.buffer.dropped
    await p.close()


class StalledWs:
    """A websocket whose every send waits forever."""

    closed = False

    async def send_bytes(self, data: bytes) -> None:
        await asyncio.Event().wait()

    async def send_str(self, data: str) -> None:
        await asyncio.Event().wait()


async def test_the_direct_websocket_fan_out_never_waits_for_a_stalled_client() -> None:
    packets = [make_packet(50, seq=s, t0_us=s * 1000) for s in range(200)]
    ws_sink = WebSocketSink("ws", client_buffer=4)
    stuck = StuckSink("stuck", buffer_size=2, policy=FullPolicy.DROP_OLDEST)
    p = pipeline(packets, [ws_sink, stuck], pause_s=0.001, queue_policy=FullPolicy.BLOCK)
    client = ws_sink.subscribe(StalledWs(), "binary")  # type: ignore[arg-type]
    sender = asyncio.create_task(client.send_loop())
    await p.start()
    await eventually(lambda: p.counters.packets == 200, what="all packets through the core")
    outputs = p.counters.outputs
    assert outputs > 20
    # the websocket sink got every output from the core task, not through the hub ...
    assert ws_sink.delivered == outputs and ws_sink.buffer.put_count == 0
    # ... whose messages past the stalled client's buffer (and the one in its send) are counted
    assert client.missed >= outputs - 4 - 1  # (an output with commands is two messages)
    assert ws_sink.stats()["client_drops"] == client.missed
    # the hub still serves the other sink
    await eventually(lambda: p.hub.qsize() == 0)
    assert p.hub.put_count == outputs and stuck.buffer.dropped == outputs - 3
    sender.cancel()
    await p.close()


async def test_a_bad_packet_is_counted_and_the_core_goes_on() -> None:
    class Fussy(TrackerNetwork):
        def step(self, events):  # type: ignore[no-untyped-def]
            if len(events) == 13:
                raise ValueError("thirteen")
            return super().step(events)

    packets = [make_packet(n, seq=s) for s, n in enumerate([5, 13, 7])]
    net = Fussy(GEOM, n_x=3, n_y=3)
    # paced like a sensor, so the core takes the packets one call each
    p = Pipeline("p", ListSource(packets, pause_s=0.02), net, TrackerDecoder(9, net.decode),
                 [])
    await p.start()
    await eventually(lambda: p.counters.packets + p.counters.errors == 3)
    await p.close()
    assert p.counters.errors == 1 and "thirteen" in (p.counters.last_error or "")
    assert p.counters.events == 12 and p.counters.events_failed == 13  # counted, not lost


class ThreadNoting(TrackerNetwork):
    """Notes the thread of every call: the loop's or the core thread's."""

    def __init__(self) -> None:
        super().__init__(GEOM, n_x=3, n_y=3)
        self.threads: list[str] = []

    def step(self, events):  # type: ignore[no-untyped-def]
        import threading

        self.threads.append(threading.current_thread().name)
        return super().step(events)


async def test_small_core_calls_run_on_the_loop_and_big_ones_in_the_core_thread() -> None:
    import threading

    sizes = [20, 20, 300, 20, 300]  # inline up to 100 events
    packets = [make_packet(n, seq=s, t0_us=s * 10_000) for s, n in enumerate(sizes)]
    net = ThreadNoting()
    p = Pipeline("p", ListSource(packets, pause_s=0.02), net, TrackerDecoder(9, net.decode), [])
    p.inline_events = 100
    await p.start()
    await eventually(lambda: p.counters.packets == 5)
    await p.close()
    loop_thread = threading.current_thread().name
    assert p.counters.outputs == 5 and p.inline_calls == 2
    # the first call's cost is not known yet: the core thread, like the big ones
    assert [t == loop_thread for t in net.threads] == [False, True, False, True, False]
    assert all(t.startswith("core:p") for t in net.threads if t != loop_thread)


async def test_inline_off_runs_every_call_in_the_core_thread() -> None:
    packets = [make_packet(20, seq=s, t0_us=s * 1000) for s in range(5)]
    net = ThreadNoting()
    p = Pipeline("p", ListSource(packets, pause_s=0.005), net, TrackerDecoder(9, net.decode), [])
    p.inline_events = 0
    await p.start()
    await eventually(lambda: p.counters.packets == 5)
    await p.close()
    assert p.inline_calls == 0 and all(t.startswith("core:p") for t in net.threads)


async def test_an_allocation_change_waits_for_the_call_on_the_loop() -> None:
    p = pipeline([make_packet(20)], [])
    with p._core_lock:  # a call in progress (on the loop, say): the change waits for it
        p.apply_settings({"latency_budget_ms": 5.0})
        await asyncio.sleep(0.05)
        assert p.allocator.cfg.latency_budget_ms is None
    await eventually(lambda: p.allocator.cfg.latency_budget_ms == 5.0)
    await p.close()
