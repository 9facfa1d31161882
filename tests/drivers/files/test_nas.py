"""Headerless NAS cochlea AEDAT: the real pyNAVIS sample, round trips, bad input."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import detect, nas, read_events
from spikegate.drivers.packet import Geometry, make_events

from .format_bytes import read_bytes as read_format_bytes
from .format_bytes import write_bytes as write_format_bytes
from .reference_figures import reference_for

SAMPLE = "pynavis_sound_mono_32ch_ONOFF_addr2b_ts02.aedat"


def read_bytes(data: bytes, chunk_bytes: int = 1 << 22) -> tuple[Geometry | None, np.ndarray]:
    header, events = read_format_bytes(nas.FORMAT, data, chunk_bytes)
    return header.geometry, events


write_bytes = partial(write_format_bytes, nas.FORMAT)


def test_real_sample_matches_reference(shared: Path) -> None:
    path = shared / "data" / SAMPLE
    ref = reference_for(shared / "data", SAMPLE)
    header, events = read_events(path, "nas")
    assert header.geometry == Geometry(ref["width"], ref["height"])
    assert len(events) == ref["count"]
    # the JSON's µs figures are ticks × 0.2; ours are ticks // 5 (exact here)
    assert int(events["t"][0]) == ref["t_first_us"] == ref["t_first_raw_ticks"] // 5
    assert int(events["t"][-1]) == ref["t_last_us"] == ref["t_last_raw_ticks"] // 5
    assert (int(events["x"].min()), int(events["x"].max())) == (ref["x_min"], ref["x_max"])
    assert int(events["y"].max()) == 0
    assert int((events["p"] == 1).sum()) == ref["n_on"]
    assert int((events["p"] == 0).sum()) == ref["n_off"]
    first = np.load(shared / "data" / f"{SAMPLE}.first1000.npy")  # t in raw 0.2 µs ticks
    np.testing.assert_array_equal(events["t"][:1000], first["t"] // 5)
    for name in ("x", "y", "p"):
        np.testing.assert_array_equal(events[name][:1000], first[name])


def test_real_sample_detected_by_extension(shared: Path) -> None:
    assert detect(shared / "data" / SAMPLE) is nas.FORMAT


@pytest.mark.parametrize("chunk_bytes", [7, 600, 4096])
def test_chunk_size_invariant(shared: Path, chunk_bytes: int) -> None:
    data = (shared / "data" / SAMPLE).read_bytes()
    np.testing.assert_array_equal(read_bytes(data, chunk_bytes)[1], read_bytes(data)[1])


def test_tick_counter_wrap_is_unwrapped() -> None:
    t_us = np.array([0, 800_000_000, 900_000_000, 1_700_000_000], dtype=np.int64)
    events = make_events(t_us, [1, 2, 3, 4], 0, [1, 0, 1, 0])
    _, decoded = read_bytes(write_bytes(events), chunk_bytes=6)
    np.testing.assert_array_equal(decoded, events)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**8), st.integers(0, 255), st.integers(0, 1)),
                max_size=300),
       st.integers(6, 5000))
def test_write_read_round_trip(rows: list[tuple[int, int, int]], chunk_bytes: int) -> None:
    dt = np.array([r[0] for r in rows], dtype=np.int64)
    events = make_events(np.cumsum(dt), [r[1] for r in rows], 0, [r[2] for r in rows])
    _, decoded = read_bytes(write_bytes(events), chunk_bytes)
    np.testing.assert_array_equal(decoded, events)


def test_truncated_and_headered_files_are_refused() -> None:
    with pytest.raises(FormatError, match="multiple of 6"):
        read_bytes(b"\0" * 13)
    with pytest.raises(FormatError, match="AEDAT header"):
        read_bytes(b"#!AER-DAT2.0\r\n" + b"\0" * 4)
