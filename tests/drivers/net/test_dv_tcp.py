"""dv-processing NetworkWriter TCP client: real capture, reconnect, corruption, fuzz."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.files.aedat4 import (
    Compression,
    encode_evts_packet,
    encode_ioheader,
    make_info_xml,
)
from spikegate.drivers.net.dv_tcp import DvTcpSource
from spikegate.drivers.packet import Geometry, make_events

CAPTURE = "data/wire/dv_processing_2.0.4_tcp_stream.first_batches.bin"
REFERENCE = "data/aermanager_data_sample.aedat4.first1000.npy"


async def serve(payloads: list[bytes]) -> tuple[asyncio.Server, int, list[int]]:
    """A server sending ``payloads[k]`` to its k-th connection (the last one repeats)."""
    seen: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(len(seen))
        writer.write(payloads[min(len(seen) - 1, len(payloads) - 1)])
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


async def collect(source: DvTcpSource) -> np.ndarray:
    parts = [p.events async for p in source.packets()]
    return np.concatenate(parts) if parts else make_events([], [])


def synthetic_stream(
    packets: list[bytes], compression: Compression = Compression.LZ4
) -> bytes:
    return encode_ioheader(compression, make_info_xml(Geometry(64, 48), compression)) + b"".join(
        packets
    )


async def test_capture_matches_reference(shared: Path) -> None:
    data = (shared / CAPTURE).read_bytes()
    ref = np.load(shared / REFERENCE)
    server, port, _ = await serve([data])
    async with server:
        source = DvTcpSource(port=port, max_connections=1)
        events = await asyncio.wait_for(collect(source), 20)
    assert len(events) >= len(ref)
    np.testing.assert_array_equal(events[: len(ref)], ref)
    assert source.header is not None and source.header.geometry == Geometry(320, 240)
    assert source.stats.dropped_total == 0
    assert "stream ended" in source.stats.last_error


async def test_reconnects_after_the_server_drops_mid_packet(shared: Path) -> None:
    data = (shared / CAPTURE).read_bytes()
    ref = np.load(shared / REFERENCE)
    server, port, seen = await serve([data[:2000], data])
    async with server:
        source = DvTcpSource(port=port, max_connections=2, backoff_initial_s=0.01)
        packets = []
        async for packet in source.packets():
            packets.append(packet)
    assert len(seen) == 2 and source.connections == 2
    assert [p.seq for p in packets] == list(range(len(packets)))
    np.testing.assert_array_equal(packets[0].events[: len(ref)], ref)


async def test_connection_refused_retries_with_backoff_then_stops() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = DvTcpSource(port=port, max_connections=3, backoff_initial_s=0.001)
    events = await asyncio.wait_for(collect(source), 20)
    assert len(events) == 0 and source.connections == 3
    assert "cannot connect" in source.stats.last_error


async def test_corrupt_payload_is_dropped_and_stream_goes_on() -> None:
    a = make_events(np.arange(10), np.arange(10), 1, 1)
    b = make_events(100 + np.arange(5), np.arange(5), 2, 0)
    good_a = encode_evts_packet(a, 0, Compression.LZ4)
    bad = encode_evts_packet(a, 0, Compression.LZ4)
    bad = bad[:8] + bytes(len(bad) - 8)
    imu = encode_evts_packet(b, 1, Compression.LZ4)  # another stream id: skipped
    good_b = encode_evts_packet(b, 0, Compression.LZ4)
    server, port, _ = await serve([synthetic_stream([good_a, bad, imu, good_b])])
    async with server:
        source = DvTcpSource(port=port, name="cam", max_connections=1)
        events = await asyncio.wait_for(collect(source), 20)
    np.testing.assert_array_equal(events, np.concatenate([a, b]))
    assert source.stats.dropped == {"payload": 1}
    assert source.stats.packets == 2 and source.stats.events == 15


async def test_huge_packet_size_is_a_framing_drop_not_an_allocation() -> None:
    stream = synthetic_stream([b"\x00\x00\x00\x00\xff\xff\xff\x7f"])
    server, port, _ = await serve([stream])
    async with server:
        source = DvTcpSource(port=port, name="cam", max_connections=1)
        await asyncio.wait_for(collect(source), 20)
    assert source.stats.dropped == {"framing": 1}
    assert "out of range" in source.stats.last_error


def feed(data: bytes) -> Callable[[DvTcpSource], list[int]]:
    async def run(source: DvTcpSource) -> list[int]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return [len(p) async for p in source.read_connection(reader)]

    return lambda source: asyncio.run(run(source))


@settings(max_examples=100, deadline=None)
@given(
    st.binary(max_size=300),
    st.integers(0, 200),
    st.sampled_from([Compression.NONE, Compression.LZ4, Compression.ZSTD]),
)
def test_random_and_corrupted_streams_never_raise(
    noise: bytes, flip_at: int, compression: Compression
) -> None:
    events = make_events(np.arange(4), np.arange(4), 3, 1)
    stream = bytearray(synthetic_stream([encode_evts_packet(events, 0, compression)], compression))
    # corruption anywhere in the stream, then noise after it
    position = flip_at * len(stream) // 200
    if position < len(stream):
        stream[position] ^= 0x5A
    source = DvTcpSource(name="fuzz")
    lengths = feed(bytes(stream) + noise)(source)
    assert sum(lengths) == source.stats.events
    lengths = feed(noise)(DvTcpSource(name="fuzz"))
    assert all(n > 0 for n in lengths)
