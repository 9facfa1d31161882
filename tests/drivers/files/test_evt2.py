"""EVT 2.0: the real sample against its reference, hand-built words, round trips, bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import detect, read_events
from spikegate.drivers.files.base import concat_events, iter_event_chunks
from spikegate.drivers.files.evt2 import FORMAT, Evt2Writer, warm_up
from spikegate.drivers.packet import EVENT_DTYPE, Geometry, make_events

from .event_strategies import event_arrays
from .reference_figures import check_against_reference

SAMPLE = "faery_evt2.raw"


def cd(p: int, t_low: int, x: int, y: int) -> int:
    return (p << 28) | (t_low << 22) | (x << 11) | y


def time_high(value: int) -> int:
    return (0x8 << 28) | value


def raw_file(words: list[int], header: str = "% evt 2.0\n") -> bytes:
    return header.encode() + np.asarray(words, dtype="<u4").tobytes()


def decode_bytes(data: bytes, chunk_bytes: int = 1 << 22) -> np.ndarray:
    _, chunks = iter_event_chunks(io.BytesIO(data), FORMAT, "test.raw", chunk_bytes)
    return concat_events(chunks)


def encode(events: np.ndarray, geometry: Geometry | None) -> bytes:
    buf = io.BytesIO()
    writer = Evt2Writer(buf, geometry)
    writer.write(events)
    writer.close()
    return buf.getvalue()


def rows(events: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in events]


@pytest.mark.shared
def test_sample_matches_reference(shared):
    path = shared / "data" / SAMPLE
    assert detect(path).name == "evt2"
    header, events = read_events(path)
    # no geometry line: the header's system_ID 21 (Gen3 EVK) says 640x480
    assert header.geometry == Geometry(640, 480)
    check_against_reference(shared / "data", SAMPLE, events)


@pytest.mark.shared
@pytest.mark.parametrize("chunk_bytes", [4097, 65_535])
def test_sample_chunking_invariant(shared, chunk_bytes):
    path = shared / "data" / SAMPLE
    _, whole = read_events(path)
    with open(path, "rb") as f:
        _, chunks = iter_event_chunks(f, FORMAT, SAMPLE, chunk_bytes)
        np.testing.assert_array_equal(concat_events(chunks), whole)


def test_word_types():
    words = [cd(1, 3, 9, 9),  # before the first TIME_HIGH: skipped
             time_high(10), cd(1, 5, 100, 200), (0xA << 28) | 0x101, (0xE << 28) | 7,
             (0xF << 28) | 7, cd(0, 63, 2047, 2047), time_high(11), cd(0, 0, 0, 0)]
    assert rows(decode_bytes(raw_file(words))) == [
        (10 * 64 + 5, 100, 200, 1), (10 * 64 + 63, 2047, 2047, 0), (11 * 64, 0, 0, 0)]


def test_time_high_wrap_adds_a_loop():
    top = (1 << 28) - 1
    words = [time_high(top), cd(1, 1, 0, 0), time_high(0), cd(1, 2, 0, 0),
             time_high(5), time_high(3), cd(1, 0, 0, 0)]  # a small drop is not a wrap
    assert [e[0] for e in rows(decode_bytes(raw_file(words)))] == [
        top * 64 + 1, (1 << 34) + 2, (1 << 34) + 3 * 64]


def test_tiny_chunks():
    rng = np.random.default_rng(2)
    n = 2000
    events = make_events(np.sort(rng.integers(0, 1 << 30, n)), rng.integers(0, 640, n),
                         rng.integers(0, 480, n), rng.integers(0, 2, n))
    data = encode(events, Geometry(640, 480))
    whole = decode_bytes(data)
    np.testing.assert_array_equal(whole, events)
    for chunk_bytes in (3, 4, 5, 11):
        np.testing.assert_array_equal(decode_bytes(data, chunk_bytes), whole)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_arrays(), with_geometry=st.booleans())
def test_write_read_round_trip(events, with_geometry):
    geometry = Geometry(96, 16) if with_geometry else None
    data = encode(events, geometry)
    assert FORMAT.read_header(io.BytesIO(data), "rt").geometry == geometry
    decoded = decode_bytes(data)
    assert decoded.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(decoded, events)


def test_large_gaps_and_offsets_round_trip():
    events = make_events([0, 1 << 35, (1 << 35) + 1, 1 << 40], [1, 2, 3, 4], 5, 1)
    np.testing.assert_array_equal(decode_bytes(encode(events, None)), events)
    later = make_events([(1 << 50) + 7, (1 << 50) + (1 << 34) + 9], [1, 2], 0, 0)
    np.testing.assert_array_equal(decode_bytes(encode(later, None)), later)


def test_writer_rejects_bad_events():
    with pytest.raises(FormatError, match="goes backwards"):
        encode(make_events([5, 3], [0, 0]), None)
    with pytest.raises(FormatError, match="y = 2048"):
        encode(make_events([5], [1], 2048), None)
    with pytest.raises(FormatError, match="negative"):
        encode(make_events([-1], [1]), None)


def test_truncated_word_is_a_format_error():
    with pytest.raises(FormatError, match="trailing bytes"):
        decode_bytes(raw_file([time_high(1), cd(1, 0, 0, 0)])[:-1])


@settings(max_examples=50, deadline=None)
@given(events=event_arrays(), cut=st.integers(0, 10_000), flips=st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8))
def test_truncated_or_corrupted_file_never_raises_anything_else(events, cut, flips):
    data = bytearray(encode(events, Geometry(96, 16)))
    for pos, value in flips:
        data[pos % len(data)] = value
    for blob in (bytes(data), bytes(data[: cut % (len(data) + 1)])):
        try:
            _, chunks = iter_event_chunks(io.BytesIO(blob), FORMAT, "bad.raw", 32)
            concat_events(chunks)
        except FormatError:
            pass


def test_warm_up_runs():
    warm_up()
