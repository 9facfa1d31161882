"""EVT 2.0 and 3.0 ``.raw``: what both must do (real samples, round trips, bad input)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import detect, evt2, evt3, read_events
from spikegate.drivers.files.base import concat_events, iter_event_chunks
from spikegate.drivers.packet import EVENT_DTYPE, Geometry

from .event_strategies import event_arrays
from .format_bytes import decode_bytes, write_bytes
from .reference_figures import check_against_reference

MODULES = pytest.mark.parametrize("module", [evt2, evt3], ids=["evt2", "evt3"])
SAMPLES = pytest.mark.parametrize("module, sample, geometry", [
    # no geometry line: the header's system_ID 21 (Gen3 EVK) says 640x480
    (evt2, "faery_evt2.raw", Geometry(640, 480)),
    (evt3, "expelliarmus_evt3_sample.raw", Geometry(1280, 720)),
], ids=["evt2", "evt3"])


@pytest.mark.shared
@SAMPLES
def test_sample_matches_reference(shared, module, sample, geometry):
    path = shared / "data" / sample
    assert detect(path) is module.FORMAT
    header, events = read_events(path)
    assert header.geometry == geometry
    check_against_reference(shared / "data", sample, events)


@pytest.mark.shared
@SAMPLES
@pytest.mark.parametrize("chunk_bytes", [4097, 65_535, 1 << 20])
def test_sample_chunking_invariant(shared, module, sample, geometry, chunk_bytes):
    path = shared / "data" / sample
    _, whole = read_events(path)
    with open(path, "rb") as f:
        _, chunks = iter_event_chunks(f, module.FORMAT, sample, chunk_bytes)
        np.testing.assert_array_equal(concat_events(chunks), whole)


@MODULES
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_arrays(), with_geometry=st.booleans())
def test_write_read_round_trip(module, events, with_geometry):
    geometry = Geometry(96, 16) if with_geometry else None
    data = write_bytes(module.FORMAT, events, geometry)
    assert module.FORMAT.read_header(io.BytesIO(data), "rt").geometry == geometry
    decoded = decode_bytes(module.FORMAT, data)
    assert decoded.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(decoded, events)


@MODULES
@settings(max_examples=50, deadline=None)
@given(events=event_arrays(), cut=st.integers(0, 10_000), flips=st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8))
def test_truncated_or_corrupted_file_never_raises_anything_else(module, events, cut, flips):
    data = bytearray(write_bytes(module.FORMAT, events, Geometry(96, 16)))
    for pos, value in flips:
        data[pos % len(data)] = value
    for blob in (bytes(data), bytes(data[: cut % (len(data) + 1)])):
        with contextlib.suppress(FormatError):
            decode_bytes(module.FORMAT, blob, 32)


@MODULES
def test_warm_up_runs(module):
    module.warm_up()
