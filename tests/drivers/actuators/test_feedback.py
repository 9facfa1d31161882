"""Send-on-delta feedback channels: encoder, naive reference, sources, JSON feed, fuzz."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from collections.abc import AsyncIterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.actuators.feedback import (
    SAMPLE_DTYPE,
    FeedbackSource,
    SendOnDelta,
    UdpJsonFeed,
    as_samples,
    parse_feedback_json,
)
from spikegate.drivers.packet import EVENT_DTYPE


def samples(rows: list[tuple[int, int, float]]) -> np.ndarray:
    return np.array(rows, dtype=SAMPLE_DTYPE)


def naive_send_on_delta(
    rows: list[tuple[int, int, float]], n_channels: int, delta: float, max_spikes: int
) -> list[tuple[int, int, int]]:
    ref: dict[int, float] = {}
    out: list[tuple[int, int, int]] = []
    last_t = -(2**63)
    for t, c, v in rows:
        if t < last_t or c >= n_channels or not math.isfinite(v):
            continue
        last_t = t
        if c not in ref:
            ref[c] = v
            continue
        diff = v - ref[c]
        if diff >= delta:
            k = math.floor(diff / delta)
            ref[c] += k * delta
            out += [(t, c, 1)] * min(k, max_spikes)
        elif -diff >= delta:
            k = math.floor(-diff / delta)
            ref[c] -= k * delta
            out += [(t, c, 0)] * min(k, max_spikes)
    return out


def as_rows(events: np.ndarray) -> list[tuple[int, int, int]]:
    return [(int(e["t"]), int(e["x"]), int(e["p"])) for e in events]


def test_rises_and_falls_give_on_and_off_spikes() -> None:
    encoder = SendOnDelta(n_channels=2, delta=1.0)
    events = encoder.encode(
        samples([(0, 0, 0.0), (10, 0, 0.5), (20, 0, 1.0), (30, 0, 3.2), (40, 0, 3.0),
                 (50, 0, 0.9), (60, 1, 5.0), (70, 1, 6.5)])
    )
    assert events.dtype == EVENT_DTYPE
    assert as_rows(events) == [(20, 0, 1), (30, 0, 1), (30, 0, 1), (50, 0, 0), (50, 0, 0),
                               (70, 1, 1)]
    assert (events["y"] == 0).all()


def test_bad_samples_are_dropped_and_counted() -> None:
    encoder = SendOnDelta(n_channels=1, delta=0.5, max_spikes_per_sample=3)
    events = encoder.encode(
        samples([(10, 0, 0.0), (5, 0, 9.0), (20, 4, 1.0), (30, 0, math.nan), (40, 0, 100.0)])
    )
    assert as_rows(events) == [(40, 0, 1)] * 3
    assert encoder.counters.tolist() == [1, 1, 1, 1]
    assert encoder.ref[0] == 100.0  # the reference moved the whole way


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 50), st.integers(0, 4),
                       st.floats(-100, 100, allow_nan=False)), max_size=60),
    st.floats(0.1, 10.0),
    st.integers(1, 8),
)
def test_equals_naive_reference_in_any_chunking(
    raw: list[tuple[int, int, float]], delta: float, cut: int
) -> None:
    t = np.cumsum([r[0] for r in raw]).tolist()
    rows = [(int(ti), c, v) for ti, (_, c, v) in zip(t, raw, strict=True)]
    expected = naive_send_on_delta(rows, 3, delta, 16)
    encoder = SendOnDelta(3, delta, 16)
    data = samples(rows) if rows else np.zeros(0, SAMPLE_DTYPE)
    parts = [encoder.encode(data[i : i + cut]) for i in range(0, len(data), cut)]
    got = np.concatenate(parts) if parts else np.zeros(0, EVENT_DTYPE)
    assert as_rows(got) == expected


async def test_feedback_source_batches_an_async_stream() -> None:
    async def stream() -> AsyncIterator[object]:
        yield (0, 0, 0.0)
        yield [(10, 0, 2.0), (20, 1, 1.0)]
        yield samples([(30, 1, -1.0), (40, 0, 0.0)])
        yield "not a sample"

    source = FeedbackSource(stream(), n_channels=2, delta=1.0, name="arm")
    packets = [p async for p in source.packets()]
    events = np.concatenate([p.events for p in packets])
    assert as_rows(events) == [(10, 0, 1), (10, 0, 1), (30, 1, 0), (30, 1, 0),
                               (40, 0, 0), (40, 0, 0)]
    assert [p.seq for p in packets] == list(range(len(packets)))
    assert all(p.source == "arm" and p.geometry == (2, 1, 2) for p in packets)
    assert source.stats.dropped == {"malformed": 1}
    assert source.stats.events == 6


async def test_udp_json_feed_over_loopback() -> None:
    feed = UdpJsonFeed(port=0, name="enc")
    host, port = await feed.start()
    datagrams = [
        json.dumps({"t_us": 0, "channel": 0, "value": 0.0}).encode(),
        b"{broken",
        json.dumps([{"t_us": 5, "channel": 0, "value": 2.5}]).encode(),
        json.dumps({"t_us": [7, 9], "channel": [0, 0], "value": [0.4, -3.0]}).encode(),
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for d in datagrams:
            sender.sendto(d, (host, port))
    source = FeedbackSource(feed.samples(), n_channels=1, delta=1.0)
    got: list[np.ndarray] = []

    async def collect() -> None:
        async for packet in source.packets():
            got.append(packet.events)
            if sum(len(e) for e in got) >= 7:
                feed.close()

    await asyncio.wait_for(collect(), 20)
    assert as_rows(np.concatenate(got)) == [(5, 0, 1), (5, 0, 1), (7, 0, 0)] + [(9, 0, 0)] * 4
    assert feed.stats.dropped == {"malformed": 1}
    assert "enc: datagram 1" in feed.stats.last_error and "byte 1" in feed.stats.last_error


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.binary(max_size=80),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["t_us", "channel", "value", "x"]), inner, max_size=4),
        max_leaves=8,
    ).map(lambda doc: json.dumps(doc).encode()),
))
def test_random_json_datagrams_never_raise_anything_but_value_error(data: bytes) -> None:
    try:
        out = parse_feedback_json(data, "fuzz")
    except ValueError as exc:
        assert str(exc).startswith("fuzz: byte ")
    else:
        assert out.dtype == SAMPLE_DTYPE
        SendOnDelta(65_536, 1.0).encode(out)


def test_bad_parameters_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="delta"):
        SendOnDelta(2, 0.0)
    with pytest.raises(ValueError, match="n_channels"):
        SendOnDelta(0, 1.0)
    with pytest.raises(ValueError, match="dtype"):
        SendOnDelta(1, 1.0).encode(np.zeros(1))
    assert as_samples((1, 2, 3.0)).tolist() == [(1, 2, 3.0)]
