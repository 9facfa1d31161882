"""N-MNIST 40-bit .bin: the real tonic sample, overflow markers, round trips, bad input."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import detect, nmnist, read_events
from spikegate.drivers.packet import Geometry, make_events

from .format_bytes import decode_bytes
from .format_bytes import write_bytes as write_format_bytes
from .reference_figures import check_against_reference, reference_for

SAMPLE = "tonic_sample_nmnist.bin"


read_bytes = partial(decode_bytes, nmnist.FORMAT)
write_bytes = partial(write_format_bytes, nmnist.FORMAT)


def test_real_sample_matches_reference(shared: Path) -> None:
    path = shared / "data" / SAMPLE
    ref = reference_for(shared / "data", SAMPLE)
    assert detect(path) is nmnist.FORMAT
    header, events = read_events(path)
    assert header.geometry == Geometry(ref["width"], ref["height"])
    check_against_reference(shared / "data", SAMPLE, events)


@pytest.mark.parametrize("chunk_bytes", [5, 333, 4096])
def test_chunk_size_invariant(shared: Path, chunk_bytes: int) -> None:
    data = (shared / "data" / SAMPLE).read_bytes()
    np.testing.assert_array_equal(read_bytes(data, chunk_bytes), read_bytes(data))


def test_overflow_marker_adds_8192_us_to_later_events() -> None:
    data = bytes([1, 2, 0x80, 0, 10,   0, 240, 0, 0, 0,   3, 4, 0, 0, 20])
    for chunk_bytes in (5, 10, 100):
        events = read_bytes(data, chunk_bytes)
        assert events["t"].tolist() == [10, 8192 + 20]
        assert events["p"].tolist() == [1, 0]
        assert events["x"].tolist() == [1, 3]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**23 - 1), st.integers(0, 255), st.integers(0, 239),
                          st.integers(0, 1)), max_size=300),
       st.integers(5, 2000))
def test_write_read_round_trip(rows: list[tuple[int, int, int, int]], chunk_bytes: int) -> None:
    cols = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    events = make_events(*cols)
    np.testing.assert_array_equal(read_bytes(write_bytes(events), chunk_bytes), events)


def test_truncated_record_names_the_offset() -> None:
    with pytest.raises(FormatError, match="byte 5"):
        read_bytes(bytes(8))
