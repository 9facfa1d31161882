"""Hypothesis strategies for event arrays (time-ordered, with gaps, rows and offsets)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from spikegate.drivers.packet import make_events


@st.composite
def event_arrays(draw, max_x: int = 96, max_y: int = 16):
    n = draw(st.integers(0, 200))
    t0 = draw(st.one_of(st.just(0), st.integers(0, 1 << 50)))
    gaps = draw(st.lists(st.one_of(st.just(0), st.integers(0, 5000), st.integers(0, 1 << 27)),
                         min_size=n, max_size=n))
    xs = draw(st.lists(st.integers(0, max_x - 1), min_size=n, max_size=n))
    ys = draw(st.lists(st.integers(0, max_y - 1), min_size=n, max_size=n))
    ps = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    events = make_events(t0 + np.cumsum(np.asarray(gaps, dtype=np.int64)), xs, ys, ps)
    if draw(st.booleans()):  # make runs on rows, as a sensor's vectors
        events = np.sort(events, order=["t", "y", "p", "x"], kind="stable")
    return events
