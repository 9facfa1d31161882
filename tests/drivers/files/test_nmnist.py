"""N-MNIST 40-bit .bin: the real tonic sample, overflow markers, round trips, bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import detect, nmnist, read_events
from spikegate.drivers.files.base import concat_events, iter_event_chunks
from spikegate.drivers.packet import Geometry, make_events

SAMPLE = "tonic_sample_nmnist.bin"


def read_bytes(data: bytes, chunk_bytes: int = 1 << 22) -> np.ndarray:
    _, chunks = iter_event_chunks(io.BytesIO(data), nmnist.FORMAT, "mem.bin", chunk_bytes)
    return concat_events(chunks)


def write_bytes(events: np.ndarray) -> bytes:
    out = io.BytesIO()
    writer = nmnist.FORMAT.writer(out, None)
    writer.write(events)
    writer.close()
    return out.getvalue()


def test_real_sample_matches_reference(shared: Path) -> None:
    path = shared / "data" / SAMPLE
    ref = next(e for e in json.loads((shared / "data" / "reference.json").read_text())
               if e["file"] == SAMPLE)
    assert detect(path) is nmnist.FORMAT
    header, events = read_events(path)
    assert header.geometry == Geometry(ref["width"], ref["height"])
    assert len(events) == ref["count"]
    assert (int(events["t"][0]), int(events["t"][-1])) == (ref["t_first_us"], ref["t_last_us"])
    assert (int(events["x"].min()), int(events["x"].max())) == (ref["x_min"], ref["x_max"])
    assert (int(events["y"].min()), int(events["y"].max())) == (ref["y_min"], ref["y_max"])
    assert int((events["p"] == 1).sum()) == ref["n_on"]
    assert int((events["p"] == 0).sum()) == ref["n_off"]
    np.testing.assert_array_equal(events[:1000],
                                  np.load(shared / "data" / f"{SAMPLE}.first1000.npy"))


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


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=100))
def test_arbitrary_bytes_raise_only_format_error(data: bytes) -> None:
    try:
        read_bytes(data, chunk_bytes=16)
    except FormatError:
        assert len(data) % 5 or data.startswith(b"#!AER-DAT")


def test_truncated_record_names_the_offset() -> None:
    with pytest.raises(FormatError, match="byte 5"):
        read_bytes(bytes(8))
