"""EVT 2.0: hand-built words, chunking, writer rules, bad input (shared tests: test_raw_evt)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files.evt2 import FORMAT
from spikegate.drivers.packet import Geometry, make_events

from .format_bytes import decode_bytes as decode_bytes_of
from .format_bytes import rows, write_bytes

decode_bytes = partial(decode_bytes_of, FORMAT)
encode = partial(write_bytes, FORMAT)


def cd(p: int, t_low: int, x: int, y: int) -> int:
    return (p << 28) | (t_low << 22) | (x << 11) | y


def time_high(value: int) -> int:
    return (0x8 << 28) | value


def raw_file(words: list[int], header: str = "% evt 2.0\n") -> bytes:
    return header.encode() + np.asarray(words, dtype="<u4").tobytes()


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

