"""SPIF / AEStream UDP: real captures over loopback, garbage, wrap, fuzz."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.net.udp import (
    SpifDecoder,
    UdpSource,
    decode_spif,
    encode_spif,
    split_datagrams,
)
from spikegate.drivers.packet import Geometry, make_events

WIRE = "data/wire/aestream_0.6.4_spif_udp_{}.lenprefixed.bin"
REFERENCE = "data/aermanager_data_sample.aedat4.first1000.npy"


def read_lenprefixed(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, offset = [], 0
    while offset < len(data):
        (n,) = struct.unpack_from("<I", data, offset)
        out.append(data[offset + 4 : offset + 4 + n])
        offset += 4 + n
    return out


async def replay(source: UdpSource, datagrams: list[bytes], n_events: int) -> np.ndarray:
    """Send ``datagrams`` to ``source`` from a second socket; collect ``n_events``."""
    host, port = await source.start()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for d in datagrams:
            sender.sendto(d, (host, port))
    finally:
        sender.close()
    parts: list[np.ndarray] = []
    got = 0

    async def collect() -> None:
        nonlocal got
        async for packet in source.packets():
            parts.append(packet.events)
            got += len(packet)
            if got >= n_events:
                return

    try:
        await asyncio.wait_for(collect(), timeout=20)
    finally:
        source.close()
    return np.concatenate(parts)


async def test_no_timestamp_capture_matches_reference(shared: Path) -> None:
    datagrams = read_lenprefixed(shared / WIRE.format("no_timestamp.first8"))
    ref = np.load(shared / REFERENCE)
    source = UdpSource(port=0, name="spif", geometry=Geometry(320, 240))
    events = await replay(source, datagrams, 128 * len(datagrams))
    assert len(events) == 128 * len(datagrams)
    n = len(ref)
    for field in ("x", "y", "p"):
        np.testing.assert_array_equal(events[field][:n], ref[field])
    assert (events["t"] >= 0).all() and (np.diff(events["t"]) >= 0).all()
    assert source.stats.dropped_total == 0
    assert source.stats.events == len(events)


async def test_timestamp_capture_matches_reference(shared: Path) -> None:
    datagrams = read_lenprefixed(shared / WIRE.format("with_timestamp.first32"))
    ref = np.load(shared / REFERENCE)
    source = UdpSource(port=0, name="spif", layout="timestamp")
    events = await replay(source, datagrams, 32 * len(datagrams))
    n = len(ref)
    for field in ("x", "y", "p"):
        np.testing.assert_array_equal(events[field][:n], ref[field])
    # the wire carries the low 32 bits; unwrapping starts from the first low word
    high = int(ref["t"][0]) & ~0xFFFFFFFF
    np.testing.assert_array_equal(events["t"][:n], ref["t"] - high)
    assert source.stats.dropped_total == 0


async def test_over_long_final_datagram_is_cut_and_source_keeps_running() -> None:
    ev = make_events(1000 + np.arange(8) * 3, np.arange(8), 7, [0, 1] * 4)
    good = encode_spif(ev, timestamp=True)
    over_long = good + bytes(24) + b"\x01\x02\x03"  # zero padding + odd tail
    after = encode_spif(make_events([2000], [9], 9, 1), timestamp=True)
    source = UdpSource(port=0, name="cam", geometry=Geometry(16, 16))
    events = await replay(source, [over_long, after], 9)
    np.testing.assert_array_equal(events[:8], ev)
    assert events[8]["x"] == 9 and events[8]["t"] == 2000
    assert source.stats.dropped == {"garbage": 1}
    assert source.stats.dropped_bytes == 27
    assert "cam: datagram 0" in source.stats.last_error
    assert f"byte {len(good)}" in source.stats.last_error


def test_no_timestamp_stops_at_first_invalid_word() -> None:
    ev = make_events(np.zeros(4), [1, 2, 3, 4], [5, 6, 7, 8], [1, 0, 1, 0])
    data = encode_spif(ev, timestamp=False) + b"\x00\x00\x00\x00" + encode_spif(ev, False)
    events, used = decode_spif(data, geometry=Geometry(16, 16))
    assert used == 16
    np.testing.assert_array_equal(events, ev)
    # x beyond the geometry is invalid too
    wide = encode_spif(make_events([0], [20], 0, 1), timestamp=False)
    events, used = decode_spif(encode_spif(ev, False) + wide, geometry=Geometry(16, 16))
    assert (len(events), used) == (4, 16)


def test_timestamp_wrap_unwraps_into_int64() -> None:
    t = np.array([2**32 - 20, 2**32 + 3, 2**32 + 2**30, 2**32 + 2**30 + 2**31 - 1, 2**33 + 5])
    ev = make_events(t, np.arange(5), 0, 1)
    decoder = SpifDecoder("timestamp")
    # one event per datagram: the wrap is unwrapped across datagrams too
    datagrams = [encode_spif(ev[i : i + 1], timestamp=True) for i in range(5)]
    events, used = decoder.decode(datagrams[:3])
    more, _ = decoder.decode(datagrams[3:])
    got = np.concatenate([events, more])["t"]
    np.testing.assert_array_equal(got, t)  # first low word is 2**32 - 20 itself
    assert (used == 8).all()


def test_timestamp_backwards_inside_a_datagram_is_garbage() -> None:
    ev = make_events([100, 200, 50], [1, 2, 3], 0, 1)
    events, used = decode_spif(encode_spif(ev, True), layout="timestamp")
    assert len(events) == 2 and used == 16


async def test_overflow_is_counted() -> None:
    source = UdpSource(port=0, name="small", max_pending_datagrams=2)
    datagram = encode_spif(make_events([0], [1], 1, 1), timestamp=False)
    for _ in range(5):
        source._on_datagram(datagram, ("127.0.0.1", 1))
    assert source.stats.dropped == {"overflow": 3}
    source.close()
    packets = [p async for p in source.packets()]
    assert [len(p) for p in packets] == [2] and packets[0].seq == 0


def test_split_datagrams_round_trip() -> None:
    ev = make_events(np.arange(300), np.arange(300) % 100, 3, 1)
    datagrams = split_datagrams(encode_spif(ev, True), 256)
    events, used = SpifDecoder("timestamp").decode(datagrams)
    np.testing.assert_array_equal(events, ev)
    assert used.sum() == 300 * 8


@settings(max_examples=200, deadline=None)
@given(
    datagrams=st.lists(st.binary(max_size=96), max_size=6),
    layout=st.sampled_from(["auto", "no_timestamp", "timestamp"]),
)
def test_random_datagrams_never_raise(datagrams: list[bytes], layout: str) -> None:
    decoder = SpifDecoder(layout, Geometry(64, 64))  # type: ignore[arg-type]
    events, used = decoder.decode(datagrams)
    lengths = np.array([len(d) for d in datagrams], dtype=np.int64)
    assert (used <= lengths).all() and (used % 4 == 0).all()
    assert len(events) <= int(used.sum()) // 4
    assert (events["x"] < 64).all() and (events["y"] < 64).all() and (events["p"] <= 1).all()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 319), st.integers(0, 239),
                          st.integers(0, 1)), min_size=1, max_size=40))
def test_encode_decode_round_trip(rows: list[tuple[int, int, int, int]]) -> None:
    rows.sort()
    t, x, y, p = (np.array(c) for c in zip(*rows, strict=True))
    t = t - t[0] + (t[0] & 0xFFFFFFFF)  # the decoder's clock starts at the first low word
    ev = make_events(t, x, y, p)
    decoder = SpifDecoder("timestamp", max_step_us=2**31 - 1)
    events, _ = decoder.decode([encode_spif(ev[i : i + 1], True) for i in range(len(ev))])
    steps = np.diff(t)
    if (steps < 2**31).all():
        np.testing.assert_array_equal(events, ev)


@pytest.mark.parametrize("layout", ["bogus"])
def test_bad_layout_is_a_clear_error(layout: str) -> None:
    with pytest.raises(ValueError, match="SPIF layout 'bogus'"):
        SpifDecoder(layout)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(datagrams=st.lists(st.binary(max_size=64), min_size=1, max_size=8))
def test_live_path_counts_every_byte(datagrams: list[bytes]) -> None:
    """Random datagrams through the source: used + dropped bytes = received bytes."""

    async def run() -> int:
        source = UdpSource(port=0, name="fuzz", geometry=Geometry(32, 32))
        for d in datagrams:
            source._on_datagram(d, ("127.0.0.1", 9))
        source.close()
        n = sum([len(p) async for p in source.packets()])
        assert source.stats.events == n
        return source.stats.dropped_bytes

    dropped_bytes = asyncio.run(run())
    used = SpifDecoder("auto", Geometry(32, 32)).decode(datagrams)[1].sum()
    assert used + dropped_bytes == sum(len(d) for d in datagrams)
