"""AEDAT 3.1: packets built by a test-only encoder, other types and invalid events skipped."""

from __future__ import annotations

import contextlib
import io
import itertools
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import aedat3, detect
from spikegate.drivers.files.base import concat_events, iter_event_chunks
from spikegate.drivers.packet import Geometry, make_events

HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DAVIS346B\r\n"
          b"#Start-Time: 2024-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")


def polarity_packet(events: np.ndarray, overflow: int = 0, invalid: int = 0) -> bytes:
    """Test-only encoder: one polarity packet (plus ``invalid`` invalid events at the end)."""
    n = len(events) + invalid
    rows = np.zeros((n, 2), dtype="<u4")
    data = ((events["x"].astype(np.uint32) << 17) | (events["y"].astype(np.uint32) << 2)
            | (events["p"].astype(np.uint32) << 1) | 1)
    rows[: len(events), 0] = data
    rows[: len(events), 1] = events["t"] & 0x7FFFFFFF
    rows[len(events):, 0] = 0x12345678 & ~1  # valid bit clear
    head = struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, n, n, len(events))
    return head + rows.tobytes()


def other_packet(etype: int, size: int, count: int) -> bytes:
    return struct.pack("<hhiiiiii", etype, 1, size, 4, 0, count, count, count) + bytes(
        size * count)


def read_bytes(data: bytes, chunk_bytes: int = 1 << 22) -> tuple[Geometry | None, np.ndarray]:
    head, chunks = iter_event_chunks(io.BytesIO(data), aedat3.FORMAT, "mem.aedat", chunk_bytes)
    return head.geometry, concat_events(chunks)


def random_events(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(np.cumsum(rng.integers(0, 100, n)), rng.integers(0, 346, n),
                       rng.integers(0, 260, n), rng.integers(0, 2, n))


def test_polarity_packets_between_other_types(tmp_path: Path) -> None:
    events = random_events(300)
    data = (HEADER + other_packet(0, 8, 2) + polarity_packet(events[:100], invalid=5)
            + other_packet(2, 40, 3) + polarity_packet(events[100:]))
    path = tmp_path / "rec.aedat"
    path.write_bytes(data)
    assert detect(path) is aedat3.FORMAT
    for chunk_bytes in (28, 100, 1 << 20):
        geometry, decoded = read_bytes(data, chunk_bytes)
        assert geometry == Geometry(346, 260)
        np.testing.assert_array_equal(decoded, events)


def test_overflow_extends_timestamps_past_31_bits() -> None:
    events = make_events([5, 7], [1, 2], [3, 4], [1, 0])
    decoded = read_bytes(HEADER + polarity_packet(events, overflow=2))[1]
    assert decoded["t"].tolist() == [(2 << 31) | 5, (2 << 31) | 7]


def test_header_without_end_and_non_raw_format_are_refused() -> None:
    with pytest.raises(FormatError, match="END-HEADER"):
        read_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n")
    with pytest.raises(FormatError, match="only RAW"):
        read_bytes(b"#!AER-DAT3.1\r\n#Format: SerializedTS\r\n#!END-HEADER\r\n")


def test_bad_packet_header_names_the_offset() -> None:
    bad = struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 2, 3, 1)  # number > capacity
    with pytest.raises(FormatError, match=f"byte {len(HEADER)}: bad AEDAT 3.1 packet header"):
        read_bytes(HEADER + bad)


def test_unknown_source_has_no_geometry() -> None:
    data = b"#!AER-DAT3.1\r\n#Source 1: Mystery\r\n#!END-HEADER\r\n"
    assert read_bytes(data)[0] is None


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 60), max_size=6), st.integers(28, 3000), st.integers(0, 10**6))
def test_round_trip_any_packetisation(sizes: list[int], chunk_bytes: int, seed: int) -> None:
    events = random_events(sum(sizes), seed)
    cuts = np.cumsum([0, *sizes])
    data = HEADER + b"".join(polarity_packet(events[a:b]) for a, b in
                             itertools.pairwise(cuts))
    np.testing.assert_array_equal(read_bytes(data, chunk_bytes)[1], events)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)),
                                       max_size=4))
def test_truncation_and_corruption_raise_only_format_error(
        cut: int, flips: list[tuple[int, int]]) -> None:
    events = random_events(120, 3)
    data = bytearray(HEADER + polarity_packet(events[:60]) + other_packet(2, 16, 2)
                     + polarity_packet(events[60:]))
    for where, mask in flips:
        data[where % len(data)] ^= mask
    with contextlib.suppress(FormatError):
        read_bytes(bytes(data[: cut % (len(data) + 1)]), 64)
