"""Prophesee DAT: the N-CARS sample against its reference, hand-built records, bad input."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import detect, read_events
from spikegate.drivers.files.base import concat_events, iter_event_chunks
from spikegate.drivers.files.dat import FORMAT, warm_up
from spikegate.drivers.packet import Geometry

from .reference_figures import check_against_reference

SAMPLE = "tonic_sample_ncars.dat"
HEADER = "% Data file containing CD events.\n% Version 2\n% Width 640\n% Height 480\n"


def dat_file(records: list[tuple[int, int, int, int]], event_type: int = 0x0C,
             header: str = HEADER) -> bytes:
    words = []
    for t, x, y, p in records:
        words += [t, x | (y << 14) | (p << 28)]
    return header.encode() + bytes([event_type, 8]) + np.asarray(words, "<u4").tobytes()


def decode_bytes(data: bytes, chunk_bytes: int = 1 << 22) -> np.ndarray:
    _, chunks = iter_event_chunks(io.BytesIO(data), FORMAT, "test.dat", chunk_bytes)
    return concat_events(chunks)


@pytest.mark.shared
def test_sample_matches_reference(shared):
    path = shared / "data" / SAMPLE
    assert detect(path).name == "dat"
    header, events = read_events(path)
    assert header.geometry is None  # N-CARS crops carry no size
    assert header.meta["event_type"] == "Event2D"
    check_against_reference(shared / "data", SAMPLE, events)


@pytest.mark.shared
def test_sample_tiny_chunks(shared):
    data = (shared / "data" / SAMPLE).read_bytes()
    whole = decode_bytes(data)
    for chunk_bytes in (5, 8, 13, 1000):
        np.testing.assert_array_equal(decode_bytes(data, chunk_bytes), whole)


def test_records_and_geometry():
    data = dat_file([(0, 1, 2, 1), (7, 639, 479, 0), (2**32 - 1, 3, 4, 1), (5, 6, 7, 0)])
    header = FORMAT.read_header(io.BytesIO(data), "h")
    assert header.geometry == Geometry(640, 480)
    events = decode_bytes(data)
    assert events["t"].tolist() == [0, 7, 2**32 - 1, 2**32 + 5]  # the u32 clock wrapped
    assert events["x"].tolist() == [1, 639, 3, 6]
    assert events["y"].tolist() == [2, 479, 4, 7]
    assert events["p"].tolist() == [1, 0, 1, 0]


def test_unknown_event_type_is_a_format_error():
    with pytest.raises(FormatError, match=r"byte \d+: DAT event type 0x0D is not supported"):
        decode_bytes(dat_file([(0, 1, 2, 1)], event_type=0x0D))


def test_truncated_record_is_a_format_error():
    with pytest.raises(FormatError, match="trailing bytes"):
        decode_bytes(dat_file([(0, 1, 2, 1)])[:-3])


def test_missing_type_bytes_is_a_format_error():
    with pytest.raises(FormatError, match="missing the DAT event type"):
        decode_bytes(HEADER.encode())


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=300), cut=st.integers(0, 400))
def test_garbage_never_raises_anything_else(body, cut):
    for blob in (HEADER.encode() + body, dat_file([(1, 2, 3, 1)] * 5)[:cut] + body[:3]):
        with contextlib.suppress(FormatError):
            decode_bytes(blob, chunk_bytes=16)


def test_warm_up_runs():
    warm_up()
