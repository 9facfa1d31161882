"""Websocket delivery on loopback: throughput to 1/10/100 clients, slow clients, latency.

One gateway (the demo source paced at 1 M events/s, 1 000 events per packet)
serves websocket clients run in a second process (so the clients' work is not
counted on the server's event loop, as on a real host).

1. Throughput: N clients on ``/ws/events?max_rate=10M`` (raw event frames,
   13 bytes/event), all fast, then with one of them deliberately slow (it
   sleeps 20 ms after each message). Shown: what the clients got (MB/s,
   events/s), what the slow one missed, and the core's events/s — the ratio
   "core with slow ÷ core all fast" shows the slow client costs the core nothing.
2. Latency: ingress (packet entered the gateway) → client, at 1 M events/s with
   10 clients on ``/ws/outputs?format=binary`` (through queue, core, hub, sink:
   end to end) and on ``/ws/events`` (the source tap). Both ends read the
   host's monotonic clock.

Bounded: about 40 s in all. Run: ``.venv/bin/python benchmarks/bench_ws.py``
(``--latency``: the latency rows only, about 15 s; ``--1ms``: only the 1 ms
packets; ``--hub``: the websocket sink behind the hub and its own task, as
before the direct fan-out; ``--baseline``: core calls always in the core
thread and every frame through the client's send task, as before the inline
core and direct writes; ``--no-inline``, ``--no-direct``: one of the two).
The latency table also shows the server's own p50/p99 at two stages: ingress →
core output, and ingress → websocket sink done (frames written to the sockets
or in the clients' buffers), and both processes' CPU.

The latency clients are raw asyncio protocols that stamp a frame when its last
byte reaches the client process (``--aiohttp-client``: aiohttp's client, stamped
after ``receive()``, as before). The server runs on the first CPU and the clients
on the last, as if they were on another host (``--no-pin``: both anywhere, sharing
the cores); ``--batch-client`` runs the clients under SCHED_BATCH, ``--gc``
freezes the server's start-up objects and raises the gen-0 threshold.

Before the runs, a busy loop on every CPU measures what the host itself takes
from an always-runnable process (gaps > 1 ms, the longest, ms lost per second):
a p99 over 2 s of 1 ms packets has a 1 % budget, and that line tells whether
the host left it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import multiprocessing as mp
import os
import sys
import time
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import numpy as np
from aiohttp import web
from pydantic import SecretStr

from spikegate.drivers.net.frames import HEADER
from spikegate.drivers.packet import EventPacket, Geometry
from spikegate.drivers.synthetic import MovingDisk, SyntheticDvsSource
from spikegate.service.app import GATEWAY, init
from spikegate.service.config import (
    DemoSourceConfig,
    PipelineConfig,
    ServerConfig,
    Settings,
    WebSocketSinkConfig,
)
from spikegate.service.pipeline import Pipeline
from spikegate.service.sinks import WebSocketSink
from spikegate.service.stats import LatencyWindow
from spikegate.service.subscribers import WebSocketClient

RATE_EV_S = 1_000_000
WINDOW_S = 2.0
SETTLE_S = 0.5
SLOW_SLEEP_S = 0.02
RAW_CLIENT = True
"""Latency clients: ``_RawClient`` (stamps in ``data_received``), or aiohttp's client."""
PIN_CPUS = True
"""The server process on the first CPU, the client process on the last (``--no-pin``: off)."""
CLIENT_BATCH = False
"""``--batch-client``: the client process under SCHED_BATCH (no wake-up preemption): as
clients on another host, they cannot take the server's core between two of its writes."""
GC_FREEZE = False
"""``--gc``: the server freezes start-up objects and collects generation 0 less often."""


class ReplaySource:
    """Pre-made demo packets replayed at ``RATE_EV_S`` on the wall clock (looping in time).

    The synthetic scene itself makes well under 1 M events/s on a shared core, so
    the events are made once before the run; only pacing and packet headers are live.
    """

    def __init__(self, packets: list[EventPacket], geometry: Geometry) -> None:
        self.name = "demo"
        self.geometry = geometry
        self._packets = packets
        self._span_us = packets[-1].t_last_us + 1_000

    async def packets(self) -> AsyncIterator[EventPacket]:
        start = time.monotonic()
        seq = 0
        while True:
            for p in self._packets:
                t_us = seq // len(self._packets) * self._span_us + p.t_first_us
                delay = start + t_us / 1e6 - time.monotonic()
                await asyncio.sleep(max(delay, 0.0))  # behind: still let the loop run
                events = p.events.copy()
                events["t"] += seq // len(self._packets) * self._span_us
                yield EventPacket(events, self.name, self.geometry, seq)
                seq += 1


async def make_packets(seconds: float, packet_us: int) -> list[EventPacket]:
    scene = MovingDisk(64, 64, 6.0, 40.0, RATE_EV_S, 0.05, 0)
    source = SyntheticDvsSource(scene, "demo", packet_us, realtime=False, duration_s=seconds)
    return [p async for p in source.packets()]


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# --- the client process -------------------------------------------------------------------

async def _receive(ws: aiohttp.ClientWebSocketResponse, slow: bool, start: float,
                   end: float) -> dict[str, Any]:
    got: dict[str, Any] = {"bytes": 0, "events": 0, "messages": 0, "missed": 0, "slow": slow}
    latencies: list[float] = []
    while True:
        now = time.monotonic()
        if now >= end:
            break
        try:
            msg = await ws.receive(timeout=end - now)
        except TimeoutError:
            break
        if msg.type != aiohttp.WSMsgType.BINARY:
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
            continue
        arrived_ns = time.monotonic_ns()
        data = msg.data
        if time.monotonic() >= start:  # count only inside the window
            _, _, _, _, count, missed, _, _, ingress_ns = HEADER.unpack_from(data, 0)
            got["bytes"] += len(data)
            got["events"] += count
            got["messages"] += 1
            got["missed"] += missed
            if ingress_ns:
                latencies.append((arrived_ns - ingress_ns) / 1000.0)
        if slow:
            await asyncio.sleep(SLOW_SLEEP_S)
    got["latencies_us"] = latencies
    return got


class _RawClient(asyncio.Protocol):
    """A websocket reader that stamps each binary frame when its last byte reaches the
    process (``data_received``): no per-message task wake-up or message object, so ten
    of them on one loop add little to what they measure. Server frames are unmasked."""

    def __init__(self, key: bytes, start: float, end: float) -> None:
        self.key = key
        self.start, self.end = start, end
        self.buf = bytearray()
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.got: dict[str, Any] = {"bytes": 0, "events": 0, "messages": 0, "missed": 0,
                                    "slow": False}
        self.latencies: list[float] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        arrived_ns = time.monotonic_ns()
        buf = self.buf
        buf += data
        if not self.upgraded.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                self.upgraded.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            del buf[:end + 4]
            self.upgraded.set_result(None)
        inside = self.start <= arrived_ns / 1e9 < self.end
        pos = 0
        while len(buf) - pos >= 2:
            opcode, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                n, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if len(buf) - pos < head + n:
                break
            if opcode == 0x2 and inside and n >= HEADER.size:
                _, _, _, _, count, missed, _, _, ingress_ns = HEADER.unpack_from(buf, pos + head)
                got = self.got
                got["bytes"] += n
                got["events"] += count
                got["messages"] += 1
                got["missed"] += missed
                if ingress_ns:
                    self.latencies.append((arrived_ns - ingress_ns) / 1000.0)
            pos += head + n
        del buf[:pos]


async def _run_raw(urls: list[str], conn: Connection) -> None:
    """The latency runs' clients: ``_RawClient`` on each url, results as ``_receive``'s."""
    loop = asyncio.get_running_loop()
    clients = []
    for url in urls:
        parts = urlsplit(url)
        key = base64.b64encode(os.urandom(16))
        client = _RawClient(key, float("inf"), 0.0)  # the window is set once all are up
        await loop.create_connection(lambda c=client: c, parts.hostname, parts.port)
        assert client.transport is not None
        client.transport.write(
            f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
            f"{key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        clients.append(client)
    await asyncio.gather(*(c.upgraded for c in clients))
    start = time.monotonic() + SETTLE_S
    end = start + WINDOW_S
    for c in clients:
        c.start, c.end = start, end
    conn.send("connected")
    await asyncio.sleep(max(start - time.monotonic(), 0.0))
    cpu0 = time.process_time()
    await asyncio.sleep(max(end - time.monotonic(), 0.0))
    cpu = (time.process_time() - cpu0) / WINDOW_S  # the client process's CPU, cores
    await asyncio.sleep(0.05)
    results = []
    for c in clients:
        assert c.transport is not None
        c.transport.close()
        results.append({**c.got, "latencies_us": c.latencies, "cpu": cpu})
    conn.send(results)


async def _run(urls: list[str], slow_index: int | None, conn: Connection,
               raw: bool = False) -> None:
    if raw:
        await _run_raw(urls, conn)
        return
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = await asyncio.gather(*(session.ws_connect(url, max_msg_size=0, compress=0)
                                         for url in urls))
        conn.send("connected")
        start = time.monotonic() + SETTLE_S
        end = start + WINDOW_S
        results = await asyncio.gather(*(_receive(ws, i == slow_index, start, end)
                                         for i, ws in enumerate(sockets)))
        await asyncio.gather(*(ws.close() for ws in sockets))
    conn.send(results)


def client_process(conn: Connection, cpu: int | None = None, batch: bool = False) -> None:
    """The clients' side: one run per (urls, slow index) received, until None."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    if batch:  # woken by a frame, it does not preempt the server mid fan-out
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    _install_uvloop()
    while (job := conn.recv()) is not None:
        urls, slow_index, raw = job
        asyncio.run(_run(urls, slow_index, conn, raw))


def jitter_probe(cpu: int, seconds: float, conn: Connection) -> None:
    """A busy loop on ``cpu`` that reads the clock and records every gap > 100 µs: the
    time an always-runnable process on this host loses to things outside it (the
    hypervisor, host interrupts, kernel threads). Sends (gaps > 1 ms, longest gap in
    µs, time lost in gaps > 100 µs per second in µs)."""
    os.sched_setaffinity(0, {cpu})
    clock = time.perf_counter_ns
    start = prev = clock()
    end = start + int(seconds * 1e9)
    over_1ms = longest = lost = 0
    while prev < end:
        now = clock()
        gap = now - prev
        if gap > 100_000:
            lost += gap
            over_1ms += gap > 1_000_000
            longest = max(longest, gap)
        prev = now
    conn.send((over_1ms, longest / 1e3, lost / 1e3 / seconds))


def platform_jitter(seconds: float = 2.0) -> str:
    """``jitter_probe`` on every core at once (nothing else of ours running): one line."""
    ctx = mp.get_context("spawn")
    parts = []
    probes = []
    for cpu in sorted(os.sched_getaffinity(0)):
        here, there = ctx.Pipe()
        proc = ctx.Process(target=jitter_probe, args=(cpu, seconds, there), daemon=True)
        proc.start()
        probes.append((cpu, here, proc))
    for cpu, here, proc in probes:
        over_1ms, longest, lost = here.recv()
        proc.join(5)
        parts.append(f"CPU {cpu}: {over_1ms} gaps > 1 ms, longest {longest:,.0f} µs, "
                     f"{lost / 1e3:.1f} ms/s lost")
    return (f"platform (a busy loop per CPU, {seconds:.0f} s, before the runs): "
            + "; ".join(parts))


# --- the server side ----------------------------------------------------------------------

async def measure(app: web.Application, conn: Connection, urls: list[str],
                  slow_index: int | None, raw: bool = False) -> dict[str, Any]:
    """One run: the client process connects ``urls``; both sides count over the window."""
    pipeline = app[GATEWAY].pipelines["demo"]
    deadline = time.monotonic() + 3.0
    while pipeline.queue.qsize() > 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # what the previous run left queued drains first
    conn.send((urls, slow_index, raw))
    connected = await asyncio.to_thread(conn.recv)
    assert connected == "connected", connected
    await asyncio.sleep(SETTLE_S)
    pipeline.core_latency = LatencyWindow()  # per-stage latencies of this window only
    for sink in pipeline.sinks:
        sink.latency = LatencyWindow()
    c0, q0 = pipeline.counters.events, pipeline.queue.dropped_weight
    k0, o0 = pipeline.counters.kernel_s, pipeline.counters.outputs
    t0, cpu0 = time.monotonic(), time.process_time()
    await asyncio.sleep(WINDOW_S * 0.9)
    elapsed = time.monotonic() - t0
    cpu = (time.process_time() - cpu0) / elapsed  # the server's CPU (both threads), cores
    core_ev_s = (pipeline.counters.events - c0) / elapsed
    queue_drops = pipeline.queue.dropped_weight - q0
    # the server's view of each events subscriber (the taps are their bound methods)
    subscribers = [tap.__self__ for tap in pipeline.taps]  # type: ignore[attr-defined]
    server = sorted(((s.missed, s.rate_factor) for s in subscribers), reverse=True)
    core = pipeline.core_latency.percentiles_us()
    sink = max((s.latency.percentiles_us() for s in pipeline.sinks),
               key=lambda p: p["p99"] or 0.0)
    stages = {"core": f"{core['p50'] or 0:.0f}/{core['p99'] or 0:.0f}",
              "sink": f"{sink['p50'] or 0:.0f}/{sink['p99'] or 0:.0f}",
              "kernel_us": 1e6 * (pipeline.counters.kernel_s - k0)
              / max(pipeline.counters.outputs - o0, 1), "cpu": cpu}
    clients = await asyncio.to_thread(conn.recv)
    return {"clients": clients, "core_ev_s": core_ev_s, "queue_drop_ev": queue_drops,
            "server": server, "stages": stages}


def summary(result: dict[str, Any]) -> dict[str, float]:
    clients = result["clients"]
    fast = [c for c in clients if not c["slow"]]
    slow = [c for c in clients if c["slow"]]
    total_bytes = sum(c["bytes"] for c in clients)
    return {
        "n": len(clients),
        "mb_s": total_bytes / WINDOW_S / 1e6,
        "ev_s_total": sum(c["events"] for c in clients) / WINDOW_S,
        "ev_s_fast_mean": float(np.mean([c["events"] for c in fast])) / WINDOW_S if fast else 0,
        "slow_ev_s": slow[0]["events"] / WINDOW_S if slow else float("nan"),
        "core_ev_s": result["core_ev_s"],
        "queue_drop_ev": result["queue_drop_ev"],
        # the most-behind subscriber as the server saw it: messages dropped, rate factor
        "worst_missed": result["server"][0][0] if result["server"] else 0,
        "worst_factor": result["server"][0][1] if result["server"] else 1.0,
    }


def latency(result: dict[str, Any]) -> tuple[float, float, float, int]:
    lat = np.concatenate([np.asarray(c["latencies_us"]) for c in result["clients"]])
    if lat.size == 0:
        return float("nan"), float("nan"), float("nan"), 0
    p50, p99 = np.percentile(lat, [50, 99])
    return float(p50), float(p99), float(lat.max()), int(lat.size)


@contextlib.asynccontextmanager
async def serve(packet_us: int) -> AsyncIterator[tuple[web.Application, str]]:
    """A gateway whose demo pipeline replays the scene at ``RATE_EV_S`` in ``packet_us`` packets."""
    source = DemoSourceConfig(rate_ev_s=RATE_EV_S, packet_us=packet_us, realtime=True)
    settings = Settings(server=ServerConfig(port=0, api_token=SecretStr("bench")),
                        pipelines=[PipelineConfig(
                            source=source, sinks=[WebSocketSinkConfig(client_buffer=64)])])
    packets = await make_packets(1.0, packet_us)
    app = init(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # the gateway exists; it starts its pipelines once warmed up
    pipeline = app[GATEWAY].pipelines["demo"]
    pipeline.source = ReplaySource(packets, pipeline.source.geometry)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        await app[GATEWAY].wait_ready()
        if GC_FREEZE:
            gc.collect()
            gc.freeze()  # start-up objects out of the collector's scans
            gc.set_threshold(50_000, 50, 100)
        await asyncio.sleep(0.5)
        yield app, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def throughput_table(rows: list[tuple[int, dict[str, Any], dict[str, Any] | None]]) -> None:
    print(f"{'clients':>7} {'slow':>5} {'MB/s':>8} {'Mev/s out':>10} {'fast mean ev/s':>15} "
          f"{'slow ev/s':>10} {'most behind: missed':>19} {'rate×':>7} {'core ev/s':>11} "
          f"{'queue drops':>11} {'core slow÷fast':>14}")
    for n, fast, slowed in rows:
        for label, s in (("no", fast), ("yes", slowed)):
            if s is None:
                continue
            ratio = "" if label == "no" else f"{s['core_ev_s'] / max(fast['core_ev_s'], 1):.3f}"
            print(f"{n:>7} {label:>5} {s['mb_s']:>8.1f} {s['ev_s_total'] / 1e6:>10.2f} "
                  f"{s['ev_s_fast_mean']:>15,.0f} {s['slow_ev_s']:>10,.0f} "
                  f"{s['worst_missed']:>19,} {s['worst_factor']:>7.3f} "
                  f"{s['core_ev_s']:>11,.0f} {s['queue_drop_ev']:>11,} {ratio:>14}")


async def main(latency_only: bool = False, packets_us: tuple[int, ...] = (5_000, 1_000)
               ) -> None:
    jitter = platform_jitter()
    ctx = mp.get_context("spawn")
    conn, child = ctx.Pipe()
    cpus = sorted(os.sched_getaffinity(0))
    pin = PIN_CPUS and len(cpus) >= 2
    if pin:  # the server on one core, the clients on another, as if on another host
        os.sched_setaffinity(0, {cpus[0]})
    proc = ctx.Process(target=client_process,
                       args=(child, cpus[-1] if pin else None, CLIENT_BATCH), daemon=True)
    proc.start()
    print(f"input: demo scene replayed at {RATE_EV_S:,} events/s; window {WINDOW_S:.0f} s; "
          f"the slow client sleeps {SLOW_SLEEP_S * 1000:.0f} ms after each message")
    latency_rows = []
    try:
        for packet_us in packets_us:
            async with serve(packet_us) as (app, base):
                events_url = f"{base}/ws/events?source=demo&max_rate=10000000"
                outputs_url = f"{base}/ws/outputs?pipeline=demo&format=binary"
                for label, url in (("/ws/outputs (through the core)", outputs_url),
                                   ("/ws/events (source tap)", events_url)):
                    result = await measure(app, conn, [url] * 10, None, RAW_CLIENT)
                    cpu = result["clients"][0].get("cpu")
                    latency_rows.append((label, packet_us, *latency(result),
                                         result["core_ev_s"], result["stages"],
                                         "" if cpu is None else f"{cpu:.0%}"))
                if packet_us == 5_000 and not latency_only:
                    rows: list[tuple[int, dict[str, Any], dict[str, Any] | None]] = [
                        (1, summary(await measure(app, conn, [events_url], None)), None)]
                    for n in (10, 100):
                        fast = summary(await measure(app, conn, [events_url] * n, None))
                        slowed = summary(await measure(app, conn, [events_url] * n, 0))
                        rows.append((n, fast, slowed))
                    print("\n/ws/events throughput: raw event frames to N clients, "
                          "packets of 5,000 events ('most behind': the server's count for "
                          "its slowest subscriber, and the rate factor it was cut to)")
                    throughput_table(rows)
    finally:
        conn.send(None)
        proc.join(5)
    where = (f" (server on CPU {cpus[0]}, clients on CPU {cpus[-1]})" if pin
             else " (server and clients sharing the CPUs)")
    print(f"\ningress → client latency at {RATE_EV_S:,} events/s, 10 clients{where}")
    print(jitter)
    print(f"{'stream':<32} {'packet':>8} {'p50 µs':>8} {'p99 µs':>8} {'max µs':>9} "
          f"{'samples':>8} {'core ev/s':>10} {'p99 ≤ 1 ms':>10} "
          f"{'core p50/99':>11} {'sink p50/99':>11} {'kernel µs/call':>14} {'server CPU':>10} "
          f"{'client CPU':>10}")
    for label, packet_us, p50, p99, worst, n, core, stages, client_cpu in latency_rows:
        print(f"{label:<32} {packet_us // 1000:>6}ms {p50:>8.0f} {p99:>8.0f} "
              f"{worst:>9.0f} {n:>8} {core:>10,.0f} {'yes' if p99 <= 1000 else 'no':>10} "
              f"{stages['core']:>11} {stages['sink']:>11} {stages['kernel_us']:>14.0f} "
              f"{stages['cpu']:>10.0%} {client_cpu:>10}")


if __name__ == "__main__":
    _install_uvloop()
    t_start = time.monotonic()
    if "--hub" in sys.argv[1:]:  # the websocket sink behind the hub, as before: for comparison
        WebSocketSink.direct = False
    baseline = "--baseline" in sys.argv[1:]  # the latency work switched off, for old/new pairs
    if baseline or "--no-inline" in sys.argv[1:]:
        Pipeline.inline_events = 0
    if baseline or "--no-direct" in sys.argv[1:]:
        WebSocketClient.write_direct = False
    GC_FREEZE = "--gc" in sys.argv[1:]
    PIN_CPUS = "--no-pin" not in sys.argv[1:]
    CLIENT_BATCH = "--batch-client" in sys.argv[1:]
    if "--aiohttp-client" in sys.argv[1:]:  # latency read through aiohttp's client, as before
        RAW_CLIENT = False
    only_1ms = "--1ms" in sys.argv[1:]
    asyncio.run(main(latency_only="--latency" in sys.argv[1:] or only_1ms,
                     packets_us=(1_000,) if only_1ms else (5_000, 1_000)))
    print(f"\n({time.monotonic() - t_start:.0f} s)", file=sys.stderr)
