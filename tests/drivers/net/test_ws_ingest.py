"""Websocket ingest frames: round trip, batching, malformed frames, fuzz."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.net.ws_ingest import (
    IngestSource,
    decode_ingest_frame,
    encode_ingest_frame,
)
from spikegate.drivers.packet import Geometry, make_events
from tests.conftest import make_packet

GEOMETRY = Geometry(32, 32)


async def drain(source: IngestSource) -> list:
    source.close()
    return [p async for p in source.packets()]


async def test_frames_become_batched_packets() -> None:
    a = make_packet(50, geometry=GEOMETRY, seed=1).events
    b = make_packet(30, geometry=GEOMETRY, seed=2, t0_us=10_000).events
    source = IngestSource(GEOMETRY, name="ws")
    assert source.feed(encode_ingest_frame(a), "client-1")
    assert source.feed(encode_ingest_frame(b), "client-2")
    assert source.feed(b"")  # an empty frame is fine and yields nothing
    packets = await drain(source)
    assert len(packets) == 1 and packets[0].seq == 0 and packets[0].source == "ws"
    np.testing.assert_array_equal(packets[0].events, np.concatenate([a, b]))
    assert source.stats.events == 80 and source.stats.dropped_total == 0


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (encode_ingest_frame(make_events([0, 1], [1, 2], 3, 1)) + b"\x00\x01",
         "byte 26: 2 trailing"),
        (encode_ingest_frame(make_events([0, 1], [1, 2], 3, [1, 2])),
         "byte 13: event 1: polarity 2"),
        (encode_ingest_frame(make_events([0, 1], [1, 40], 3, 1)), "byte 13: event 1: address"),
        (encode_ingest_frame(make_events([5, 4], [1, 2], 3, 1)), "byte 13: event 1: time 4"),
    ],
)
def test_malformed_frames_name_the_byte(frame: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        decode_ingest_frame(frame, GEOMETRY, "ws: frame 0")


async def test_malformed_frames_are_counted_and_the_source_goes_on() -> None:
    source = IngestSource(GEOMETRY, name="ws")
    good = make_events([100, 200], [1, 2], 3, 1)
    assert source.feed(encode_ingest_frame(good), "c")
    assert not source.feed(encode_ingest_frame(make_events([150], [1], 1, 1)), "c")  # older
    assert not source.feed(b"\x01" * 14, "c")
    later = make_events([300], [4], 4, 0)
    assert source.feed(encode_ingest_frame(later), "c")
    packets = await drain(source)
    np.testing.assert_array_equal(packets[0].events, np.concatenate([good, later]))
    assert source.stats.dropped == {"malformed": 2}
    assert source.stats.last_error.startswith("ws: frame 2 from c: byte 13")


async def test_overflow_and_closed_are_counted() -> None:
    source = IngestSource(GEOMETRY, max_pending_frames=1)
    frame = encode_ingest_frame(make_events([0], [1], 1, 1))
    assert source.feed(frame)
    assert not source.feed(frame)
    source.close()
    assert not source.feed(frame)
    assert source.stats.dropped == {"overflow": 1, "closed": 1}


async def test_a_waiting_consumer_wakes_on_feed() -> None:
    source = IngestSource(GEOMETRY)
    packets = []

    async def consume() -> None:
        async for packet in source.packets():
            packets.append(packet)
            source.close()

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    source.feed(encode_ingest_frame(make_events([7], [1], 1, 1)))
    await asyncio.wait_for(task, 20)
    assert len(packets) == 1 and int(packets[0].events["t"][0]) == 7


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=6))
def test_random_frames_never_raise(frames: list[bytes]) -> None:
    source = IngestSource(GEOMETRY)
    accepted = [source.feed(f) for f in frames]
    assert source.stats.dropped_total == accepted.count(False)
    pending = sum(len(e) for e in source._pending)
    assert all(len(f) % 13 == 0 for f, ok in zip(frames, accepted, strict=True) if ok)
    assert pending == sum(len(f) // 13 for f, ok in zip(frames, accepted, strict=True) if ok)
