"""Output spikes → events (``kernels.events.output_events``) against plain numpy.

One event per spike (a multi-spike count capped, the rest counted), one per
entry for a non-spiking output; each stamped with the latest input time of
its step, or the step's start when the step had no input.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.packet import EVENT_DTYPE
from spikegate.models.kernels.events import output_events


def _reference(step, idx, val, spiking, max_rep, origin, dt, c_steps, c_t):
    if spiking:
        counts = np.rint(val).astype(np.int64)
        reps = np.minimum(counts, max_rep)
        truncated = int((counts - reps).sum())
    else:
        reps = np.ones(len(step), np.int64)
        truncated = 0
    ev_steps = np.repeat(step, reps)
    times = origin + ev_steps * dt
    if len(c_steps) and len(ev_steps):
        at = np.minimum(np.searchsorted(c_steps, ev_steps), len(c_steps) - 1)
        hit = c_steps[at] == ev_steps
        times[hit] = c_t[at[hit]]
    ev = np.zeros(len(ev_steps), dtype=EVENT_DTYPE)
    ev["t"] = times
    ev["x"] = np.repeat(idx, reps)
    ev["p"] = 1
    return ev, ev_steps, truncated


@settings(max_examples=150, deadline=None)
@given(data=st.data(), spiking=st.booleans(), max_rep=st.sampled_from([1, 3, 255]))
def test_output_events_equal_numpy(data, spiking: bool, max_rep: int) -> None:
    n = data.draw(st.integers(0, 30))
    step = np.sort(np.array(data.draw(st.lists(st.integers(0, 40), min_size=n, max_size=n)),
                            dtype=np.int64))
    idx = np.array(data.draw(st.lists(st.integers(0, 500), min_size=n, max_size=n)), np.int64)
    if spiking:
        val = np.array(data.draw(st.lists(st.integers(0, 300), min_size=n, max_size=n)),
                       dtype=np.float64)
    else:
        val = np.array(data.draw(st.lists(st.floats(-5, 5), min_size=n, max_size=n)))
    c_steps = np.array(sorted(set(data.draw(st.lists(st.integers(0, 40), max_size=20)))),
                       dtype=np.int64)
    c_t = np.array(data.draw(st.lists(st.integers(0, 10**9), min_size=len(c_steps),
                                      max_size=len(c_steps))), dtype=np.int64)
    origin, dt = data.draw(st.integers(0, 10**6)), data.draw(st.sampled_from([1, 1000]))
    got = output_events(step, idx, val, spiking, max_rep, origin, dt, c_steps, c_t)
    ref = _reference(step, idx, val, spiking, max_rep, origin, dt, c_steps, c_t)
    assert got[0].tobytes() == ref[0].tobytes()
    np.testing.assert_array_equal(got[1], ref[1])
    assert int(got[2]) == ref[2]
