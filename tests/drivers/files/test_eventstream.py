"""Event Stream .es: files built by a test-only encoder from the spec, no y flip, bad input."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import detect, eventstream, read_events
from spikegate.drivers.files.base import concat_events, iter_event_chunks
from spikegate.drivers.packet import Geometry, make_events


def es_header(kind: int, width: int, height: int, version: bytes = b"\x02\x00\x00") -> bytes:
    return b"Event Stream" + version + bytes([kind]) + width.to_bytes(2, "little") + \
        height.to_bytes(2, "little")


def encode_dvs(events: np.ndarray, resets: bool = False) -> bytes:
    """Test-only DVS encoder (spec 2.0): overflow bytes of 127 µs, 5-byte events."""
    out = bytearray()
    t_prev = 0
    for t, x, y, p in events.tolist():
        dt = t - t_prev
        t_prev = t
        while dt >= 127:
            out.append(0xFF)
            dt -= 127
        if resets:
            out += b"\xfe" * 5
        out += bytes([(dt << 1) | p]) + int(x).to_bytes(2, "little") + int(y).to_bytes(2, "little")
    return bytes(out)


def encode_atis(events: np.ndarray, tc_every: int = 0) -> bytes:
    """Test-only ATIS encoder: overflows of up to 3 × 63 µs, optional threshold crossings."""
    out = bytearray()
    t_prev = 0
    for i, (t, x, y, p) in enumerate(events.tolist()):
        dt = t - t_prev
        t_prev = t
        while dt >= 63:
            steps = min(3, dt // 63)
            out.append(0xFC | steps)
            dt -= 63 * steps
        if tc_every and i % tc_every == 0:  # a threshold crossing at the same time
            out += bytes([(dt << 2) | 0b11]) + int(x).to_bytes(2, "little") + \
                int(y).to_bytes(2, "little")
            dt = 0
        out += bytes([(dt << 2) | (p << 1)]) + int(x).to_bytes(2, "little") + \
            int(y).to_bytes(2, "little")
    return bytes(out)


def random_events(n: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(np.cumsum(rng.integers(0, 400, n)), rng.integers(0, width, n),
                       rng.integers(0, height, n), rng.integers(0, 2, n))


def read_bytes(data: bytes, chunk_bytes: int = 1 << 22) -> tuple[Geometry | None, np.ndarray]:
    head, chunks = iter_event_chunks(io.BytesIO(data), eventstream.FORMAT, "mem.es",
                                     chunk_bytes)
    return head.geometry, concat_events(chunks)


def test_dvs_file_raw_coordinates_no_flip(tmp_path: Path) -> None:
    events = make_events([5, 200, 200, 1000], [0, 303, 7, 1], [0, 239, 1, 238], [1, 0, 1, 0])
    path = tmp_path / "rec.es"
    path.write_bytes(es_header(1, 304, 240) + encode_dvs(events))
    assert detect(path) is eventstream.FORMAT
    header, decoded = read_events(path)
    assert header.geometry == Geometry(304, 240)
    assert header.meta == {"version": "2.0.0", "type": "dvs"}
    np.testing.assert_array_equal(decoded, events)  # y = 239 stays 239, y = 0 stays 0


def test_dvs_resets_are_ignored() -> None:
    events = random_events(50, 64, 48, seed=2)
    data = es_header(1, 64, 48) + encode_dvs(events, resets=True)
    np.testing.assert_array_equal(read_bytes(data, 7)[1], events)


def test_atis_keeps_change_events_and_skips_threshold_crossings() -> None:
    events = random_events(300, 304, 240, seed=5)
    data = es_header(2, 304, 240) + encode_atis(events, tc_every=3)
    for chunk_bytes in (5, 64, 1 << 20):
        np.testing.assert_array_equal(read_bytes(data, chunk_bytes)[1], events)


@pytest.mark.parametrize(("head", "message"), [
    (es_header(0, 0, 0)[:16], "no ON/OFF pixel events"),
    (es_header(4, 10, 10), "no ON/OFF pixel events"),
    (es_header(9, 10, 10), "unknown Event Stream type 9"),
    (es_header(1, 10, 10, b"\x01\x00\x00"), "version 1.0.0 is not supported"),
    (es_header(1, 10, 10)[:17], "truncated sensor size"),
    (b"Event Strean\x02\x00\x00\x01", "signature"),
])
def test_bad_headers(head: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        read_bytes(head)


def test_event_outside_sensor_names_the_offset() -> None:
    data = es_header(1, 10, 10) + encode_dvs(make_events([1, 2], [1, 12], [1, 1], [0, 1]))
    with pytest.raises(FormatError, match="byte 25: event outside the 10×10 sensor"):
        read_bytes(data)


def test_truncated_event_is_a_format_error() -> None:
    data = es_header(1, 10, 10) + encode_dvs(make_events([1], [1], [1], [0]))
    with pytest.raises(FormatError, match="trailing bytes"):
        read_bytes(data[:-2])


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 300), st.integers(1, 2000), st.integers(0, 10**6),
       st.sampled_from([1, 2]))
def test_round_trip(n: int, chunk_bytes: int, seed: int, kind: int) -> None:
    events = random_events(n, 1280, 720, seed)
    body = encode_dvs(events) if kind == 1 else encode_atis(events)
    np.testing.assert_array_equal(read_bytes(es_header(kind, 1280, 720) + body,
                                             chunk_bytes)[1], events)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)),
                                       max_size=4))
def test_truncation_and_corruption_raise_only_format_error(
        cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(es_header(1, 64, 48) + encode_dvs(random_events(100, 64, 48)))
    for where, mask in flips:
        data[where % len(data)] ^= mask
    with contextlib.suppress(FormatError):
        read_bytes(bytes(data[: cut % (len(data) + 1)]), 64)
