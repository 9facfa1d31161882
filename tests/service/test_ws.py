"""Websockets: binary outputs, the events tap with downsampling, ingest, slow clients."""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from pydantic import SecretStr

from spikegate.drivers.net.frames import (
    HEADER_BYTES,
    FrameFlag,
    FrameKind,
    decode_frame,
    encode_frame,
)
from spikegate.drivers.net.ws_ingest import IngestSource
from spikegate.drivers.packet import EVENT_DTYPE, SPIKE_DTYPE, Geometry, OutputPacket, make_events
from spikegate.service.app import GATEWAY, init
from spikegate.service.config import (
    DemoSourceConfig,
    IngestSourceConfig,
    PipelineConfig,
    ServerConfig,
    Settings,
)
from spikegate.service.sinks import WebSocketSink
from spikegate.service.subscribers import (
    EventsSubscriber,
    WebSocketClient,
    tell_missed,
    ws_frame_header,
)
from tests.conftest import eventually, make_packet

TOKEN = "ws-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GEOMETRY = Geometry(32, 32)


def demo_settings(tmp_path: Path, **source: Any) -> Settings:
    src = DemoSourceConfig(rate_ev_s=100_000, packet_us=2_000, **source)
    return Settings(server=ServerConfig(api_token=SecretStr(TOKEN), models_dir=tmp_path),
                    pipelines=[PipelineConfig(source=src, command_interval_ms=10)])


def ingest_settings(tmp_path: Path) -> Settings:
    return Settings(
        server=ServerConfig(api_token=SecretStr(TOKEN), models_dir=tmp_path),
        pipelines=[PipelineConfig(name="pushed", source=IngestSourceConfig(
            name="cam", width=GEOMETRY.width, height=GEOMETRY.height))])


class BlockedWs:
    """A websocket whose sends wait until ``release`` is set (a slow client)."""

    def __init__(self) -> None:
        self.closed = False
        self.release = asyncio.Event()
        self.sent: list[bytes | str] = []

    async def send_bytes(self, data: bytes) -> None:
        await self.release.wait()
        self.sent.append(data)

    async def send_str(self, data: str) -> None:
        await self.release.wait()
        self.sent.append(data)


# --- subscribers ----------------------------------------------------------------------

async def test_a_slow_client_is_told_what_it_missed() -> None:
    ws = BlockedWs()
    client = WebSocketClient(ws, buffer_size=2)  # type: ignore[arg-type]
    task = asyncio.create_task(client.send_loop())
    client.offer({"n": 0})
    await asyncio.sleep(0)  # the send task takes message 0 and waits on the socket
    for n in range(1, 8):
        client.offer({"n": n})
    frame = encode_frame(make_events([1], [1]))
    client.offer(frame)
    ws.release.set()
    await eventually(lambda: len(ws.sent) == 3)
    task.cancel()
    first, second, third = ws.sent
    assert json.loads(first) == {"n": 0}
    assert json.loads(second) == {"n": 7, "missed": 6}  # 1..6 were dropped while it waited
    assert decode_frame(third).missed == 0 and client.missed == 6


class FakeTransport:
    """What ``WebSocketClient`` needs of a transport; ``backlog`` bytes wait unsent."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.backlog = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += data

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.closing


def ws_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each unmasked RFC 6455 frame in ``data``."""
    frames, pos = [], 0
    while pos < len(data):
        assert data[pos] & 0x80 and not data[pos + 1] & 0x80  # final, unmasked
        opcode, n, pos = data[pos] & 0x0F, data[pos + 1], pos + 2
        if n == 126:
            n, pos = struct.unpack_from("!H", data, pos)[0], pos + 2
        elif n == 127:
            n, pos = struct.unpack_from("!Q", data, pos)[0], pos + 8
        frames.append((opcode, bytes(data[pos:pos + n])))
        pos += n
    return frames


@pytest.mark.parametrize("n_bytes", [0, 125, 126, 65535, 65536])
def test_ws_frame_header_lengths(n_bytes: int) -> None:
    payload = bytes(n_bytes)
    assert ws_frames(ws_frame_header(0x2, n_bytes) + payload) == [(0x2, payload)]


async def test_an_idle_transport_is_written_at_once_a_busy_one_through_the_buffer() -> None:
    ws, transport = BlockedWs(), FakeTransport()
    client = WebSocketClient(ws, buffer_size=2, transport=transport)  # type: ignore[arg-type]
    frame = encode_frame(make_events([1], [2]))
    client.offer(frame)
    client.offer({"n": 1})
    assert ws_frames(transport.written) == [(0x2, frame), (0x1, b'{"n":1}')]
    assert client.buffer.qsize() == 0 and client.sent == client.sent_direct == 2
    transport.backlog = 10  # the socket is behind: the bounded buffer and the send task
    for n in range(2, 6):
        client.offer({"n": n})
    assert client.buffer.qsize() == 2 and client.missed == 2 and ws.sent == []
    transport.backlog = 0  # idle again, but older messages wait: they go first, in order
    client.offer({"n": 6})
    assert client.buffer.qsize() == 2 and client.missed == 3
    task = asyncio.create_task(client.send_loop())
    ws.release.set()
    await eventually(lambda: len(ws.sent) == 2)
    assert [json.loads(m) for m in ws.sent] == [{"n": 5, "missed": 3}, {"n": 6}]
    client.offer(frame)  # nothing waits now: direct again
    assert decode_frame(ws_frames(transport.written)[-1][1]).missed == 0
    task.cancel()


async def test_a_direct_write_tells_what_was_missed_and_a_closed_socket_gets_none() -> None:
    ws, transport = BlockedWs(), FakeTransport()
    client = WebSocketClient(ws, buffer_size=1, transport=transport)  # type: ignore[arg-type]
    transport.backlog = 1
    for n in range(3):
        client.offer(encode_frame(make_events([n], [n])))
    assert client.missed == 2
    client.buffer.get_nowait()  # as if the send task had sent it (and told nothing yet)
    client.buffer.task_done()
    transport.backlog = 0
    client.offer(encode_frame(make_events([9], [9])))
    (_, payload), = ws_frames(transport.written)
    assert decode_frame(payload).missed == 2
    ws.closed = True
    client.offer({"n": 1})
    assert len(ws_frames(transport.written)) == 1 and client.buffer.qsize() == 1


def test_a_client_writes_directly_only_with_a_usable_transport() -> None:
    assert WebSocketClient(BlockedWs()).transport is None  # type: ignore[arg-type]
    assert WebSocketClient(BlockedWs(), transport=object()).transport is None  # type: ignore[arg-type]


def test_tell_missed_in_json_and_frames() -> None:
    assert json.loads(tell_missed('{"a":1}', 3)) == {"a": 1, "missed": 3}
    assert json.loads(tell_missed("{}", 2)) == {"missed": 2}
    assert decode_frame(tell_missed(encode_frame(make_events([1], [2])), 5)).missed == 5


def test_events_subscriber_thins_to_its_rate() -> None:
    client = EventsSubscriber(BlockedWs(), buffer_size=1000,  # type: ignore[arg-type]
                              max_rate_ev_s=10_000)
    for seq in range(20):  # 20 packets of 1000 events arriving at once: far over 10 k ev/s
        client.offer_packet(make_packet(1000, seq=seq, geometry=GEOMETRY))
    frames = [decode_frame(client.buffer.get_nowait()) for _ in range(client.buffer.qsize())]
    assert sum(len(f.records) for f in frames) <= 10_000 * 0.1 + 1000
    assert client.events_offered == 20_000 and client.events_kept < 2_000
    assert all(f.flags & FrameFlag.DECIMATED for f in frames[1:])
    assert all(f.kind == FrameKind.EVENTS and np.all(np.diff(f.records["t"]) >= 0)
               for f in frames)


def test_events_subscribers_share_frames_and_a_total_rate() -> None:
    clients = [EventsSubscriber(BlockedWs(), buffer_size=8,  # type: ignore[arg-type]
                                max_rate_ev_s=1e9, peers=lambda: 800) for _ in range(3)]
    packet = make_packet(100, geometry=GEOMETRY)
    for client in clients:
        client.offer_packet(packet)
    frames = [c.buffer.get_nowait() for c in clients]
    assert frames[0] is frames[1] is frames[2]  # encoded once
    assert all(c.rate_ev_s == 5_000.0 for c in clients)  # 4 M ev/s ÷ 800 peers
    for seq in range(1, 5):  # within its 0.2 s frame interval: skipped
        clients[0].offer_packet(make_packet(1000, seq=seq, geometry=GEOMETRY))
    assert clients[0].events_kept == 100 and clients[0].buffer.qsize() == 0


def test_events_subscriber_slows_down_while_behind() -> None:
    client = EventsSubscriber(BlockedWs(), buffer_size=4,  # type: ignore[arg-type]
                              max_rate_ev_s=1e9)
    for seq in range(10):
        client.offer_packet(make_packet(10, seq=seq, geometry=GEOMETRY))
    assert client.rate_factor < 1.0 and client.missed > 0


# --- /ws/outputs ------------------------------------------------------------------------

async def test_outputs_as_binary_spike_frames_and_command_messages(
        aiohttp_client: Any, tmp_path: Path) -> None:
    app = init(demo_settings(tmp_path))
    client = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    frames, commands = [], []
    async with client.ws_connect("/ws/outputs?pipeline=demo&format=binary") as ws:
        while len(commands) < 2 or not any(len(f.records) for f in frames):
            msg = await ws.receive(timeout=10)
            if msg.type == aiohttp.WSMsgType.BINARY:
                frames.append(decode_frame(msg.data, "test"))
            else:
                message = json.loads(msg.data)
                assert message["type"] == "commands" and message["pipeline"] == "demo"
                commands += message["commands"]
    assert all(f.kind == FrameKind.SPIKES and f.records.dtype == SPIKE_DTYPE for f in frames)
    assert all(f.ingress_ns > 0 for f in frames)
    assert [f.seq for f in frames] == sorted(f.seq for f in frames)
    assert {c["command"] for c in commands} <= {"turn", "tilt", "stop"}


async def test_outputs_refuses_an_unknown_format(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await aiohttp_client(init(demo_settings(tmp_path)))
    resp = await client.get("/ws/outputs?pipeline=demo&format=xml")
    assert resp.status == 400 and "format" in await resp.text()


async def test_a_stalled_subscriber_stalls_neither_the_core_nor_other_clients(
        aiohttp_client: Any, tmp_path: Path) -> None:
    app = init(demo_settings(tmp_path))
    client = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    pipeline = app[GATEWAY].pipelines["demo"]
    sink = next(s for s in pipeline.sinks if isinstance(s, WebSocketSink))
    stalled = sink.subscribe(BlockedWs(), "binary")  # type: ignore[arg-type]
    stalled_task = asyncio.create_task(stalled.send_loop())
    try:
        async with client.ws_connect("/ws/outputs?pipeline=demo&format=json") as ws:
            events_before = pipeline.counters.events
            received = 0
            while received < 3 * sink.client_buffer:
                msg = await ws.receive_json(timeout=10)
                received += 1
            assert msg["events_in"] > 0
        assert pipeline.counters.events > events_before
        # the stalled client lost messages (counted), the other got 3 buffers' worth
        assert sink.stats()["client_drops"] >= stalled.missed > 0
        assert stalled.sent == 0
    finally:
        stalled_task.cancel()
        sink.unsubscribe(stalled)


# --- /ws/events -------------------------------------------------------------------------

async def test_events_of_the_demo_source(aiohttp_client: Any, tmp_path: Path) -> None:
    app = init(demo_settings(tmp_path))
    client = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    async with client.ws_connect("/ws/events?source=demo&max_rate=20000") as ws:
        hello = await ws.receive_json(timeout=10)
        assert hello["type"] == "hello" and hello["geometry"][:2] == [64, 64]
        frames = [decode_frame((await ws.receive_bytes(timeout=10)), "test") for _ in range(20)]
        subscriber, = (tap.__self__ for tap in app[GATEWAY].pipelines["demo"].taps)
        assert subscriber.sent_direct > 0  # written straight to the idle socket
    events = np.concatenate([f.records for f in frames])
    assert events.dtype == EVENT_DTYPE and len(events) > 0
    assert events["x"].max() < 64 and events["y"].max() < 64 and set(events["p"]) <= {0, 1}
    assert any(f.flags & FrameFlag.DECIMATED for f in frames)  # 100 k ev/s source, 20 k asked
    await eventually(lambda: not app[GATEWAY].pipelines["demo"].taps, what="the tap removed")


@pytest.mark.parametrize(("query", "status"), [
    ("source=nope", 404), ("source=demo&max_rate=0", 400), ("source=demo&max_rate=x", 400),
    ("source=demo&max_rate=1e12", 400),
])
async def test_events_refusals(aiohttp_client: Any, tmp_path: Path, query: str,
                               status: int) -> None:
    client = await aiohttp_client(init(demo_settings(tmp_path)))
    resp = await client.get(f"/ws/events?{query}")
    assert resp.status == status


# --- /ws/ingest -------------------------------------------------------------------------

def events_at(t0_us: int, n: int, seed: int = 0) -> np.ndarray:
    return make_packet(n, geometry=GEOMETRY, t0_us=t0_us, seed=seed).events


async def test_ingest_pushes_events_into_the_pipeline_and_the_events_tap(
        aiohttp_client: Any, tmp_path: Path) -> None:
    app = init(ingest_settings(tmp_path))
    client = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    pipeline = app[GATEWAY].pipelines["pushed"]
    sent = [events_at(1000 * k, 50, seed=k) for k in range(4)]
    async with client.ws_connect("/ws/events?source=cam&max_rate=1e6") as watch:
        assert (await watch.receive_json(timeout=10))["source"] == "cam"
        async with client.ws_connect("/ws/ingest?source=cam", headers=AUTH) as ws:
            for seq, events in enumerate(sent):
                await ws.send_bytes(encode_frame(events, seq=seq))
            await eventually(lambda: pipeline.counters.events == 200, what="200 events in")
        seen = []
        while sum(len(f) for f in seen) < 200:
            seen.append(decode_frame(await watch.receive_bytes(timeout=10)).records)
    np.testing.assert_array_equal(np.concatenate(seen), np.concatenate(sent))
    assert pipeline.source.stats.dropped_total == 0


def corrupt(frame: bytes, position: int, value: bytes) -> bytes:
    out = bytearray(frame)
    out[position:position + len(value)] = value
    return bytes(out)


async def test_bad_ingest_frames_are_answered_counted_and_the_connection_stays(
        aiohttp_client: Any, tmp_path: Path) -> None:
    app = init(ingest_settings(tmp_path))
    client = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    pipeline = app[GATEWAY].pipelines["pushed"]
    source = pipeline.source
    assert isinstance(source, IngestSource)
    good = encode_frame(events_at(10_000, 20))
    backwards = events_at(20_000, 20)
    backwards["t"][7] = 5
    outside = events_at(30_000, 5)
    outside["x"][3] = GEOMETRY.width
    spikes = np.zeros(2, dtype=SPIKE_DTYPE)
    bad: list[tuple[bytes | str, int, str]] = [
        (corrupt(good, 0, b"NOPE"), 0, "magic"),
        (corrupt(good, 8, struct.pack("<I", 21)), 8, "count 21"),
        (good[:-1], 8, "count 20"),
        (b"\x01\x02", 2, "shorter than the 40-byte header"),
        (encode_frame(spikes), 5, "ingest takes events"),
        (encode_frame(backwards), HEADER_BYTES + 7 * 13, "backwards"),
        (encode_frame(outside), HEADER_BYTES + 3 * 13, "outside"),
        ("hello", 0, "binary event frames"),
    ]
    async with client.ws_connect("/ws/ingest?source=cam", headers=AUTH) as ws:
        await ws.send_bytes(good)
        for index, (frame, offset, words) in enumerate(bad, start=1):
            if isinstance(frame, str):
                await ws.send_str(frame)
            else:
                await ws.send_bytes(frame)
            error = await ws.receive_json(timeout=10)
            assert error["type"] == "error" and error["frame"] == index, error
            assert error["offset"] == offset and words in error["error"], error
            assert f"byte {offset}:" in error["error"] and "cam" in error["error"]
        await ws.send_bytes(encode_frame(events_at(40_000, 10)))  # still open, still taken
        await eventually(lambda: pipeline.counters.events == 30, what="30 events in")
    assert source.stats.dropped["malformed"] == len(bad)


async def test_ingest_refusals(aiohttp_client: Any, tmp_path: Path) -> None:
    client = await aiohttp_client(init(ingest_settings(tmp_path)))
    assert (await client.get("/ws/ingest?source=cam")).status == 401
    assert (await client.get("/ws/ingest?source=nope", headers=AUTH)).status == 404
    assert (await client.get("/ws/ingest", headers=AUTH)).status == 400
    demo = await aiohttp_client(init(demo_settings(tmp_path)))
    resp = await demo.get("/ws/ingest?source=demo", headers=AUTH)
    assert resp.status == 409 and "ingest" in await resp.text()


def test_ingest_source_config_needs_a_geometry() -> None:
    with pytest.raises(ValueError, match="width"):
        IngestSourceConfig(height=4)  # type: ignore[call-arg]
    # the API helper's output vs the old one-message form: both still build
    OutputPacket("p", 0, 0, 0, np.zeros(0, dtype=SPIKE_DTYPE))
