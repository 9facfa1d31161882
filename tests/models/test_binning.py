"""Event binning (``kernels.events``) against plain numpy floor division.

The kernel divides only when an event leaves the step of the one before;
the steps, late counts, order flag and addresses must be those of dividing
every time, for any times (unsorted, late, negative, near the int64 limits).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.packet import make_events
from spikegate.models.kernels.events import bin_events

N_P, N_Y, N_X = 2, 3, 5


def _reference(t, x, y, p, origin, dt, k0):
    steps = np.array([(int(te) - origin) // dt for te in t], dtype=object)
    late = int(sum(1 for k in steps if k < k0))
    steps = np.array([max(int(k), k0) for k in steps], dtype=np.int64)
    ordered = bool(np.all(np.diff(np.concatenate([[k0], steps])) >= 0))
    last = int(max(k0, steps.max())) if len(steps) else k0
    idx = (p.astype(np.int64) * N_Y + y) * N_X + x
    return steps, late, ordered, last, idx


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    dt=st.sampled_from([1, 7, 1000, 33_333]),
    scale=st.sampled_from([10, 10_000, 2**40, 2**61, 2**62]),
)
def test_binning_equals_floor_division(data, dt: int, scale: int) -> None:
    n = data.draw(st.integers(0, 60))
    base = data.draw(st.integers(-scale, scale))
    jitter = data.draw(st.lists(st.integers(-3 * dt, 40 * dt), min_size=n, max_size=n))
    t = np.array([min(max(base + j, -(2**62)), 2**62) for j in jitter], dtype=np.int64)
    if data.draw(st.booleans()):
        t = np.sort(t)
    bound = min(scale, 2**61)  # t − origin stays within int64, as for any real clock
    origin = data.draw(st.integers(-bound, bound)) // dt * dt
    k0 = data.draw(st.integers(-5, 5))
    rng = np.random.default_rng(n)
    ev = make_events(t, rng.integers(0, N_X, n), rng.integers(0, N_Y, n), rng.integers(0, N_P, n))
    steps = np.empty(n, np.int64)
    idx = np.empty(n, np.int64)
    bad, _, n_late, last, ordered = bin_events(ev["t"], ev["x"], ev["y"], ev["p"], origin, dt,
                                               k0, N_P, N_Y, N_X, steps, idx)
    ref_steps, ref_late, ref_ordered, ref_last, ref_idx = _reference(
        ev["t"], ev["x"], ev["y"], ev["p"], origin, dt, k0)
    assert bad == -1
    np.testing.assert_array_equal(steps, ref_steps)
    np.testing.assert_array_equal(idx, ref_idx)
    assert (n_late, last, ordered) == (ref_late, ref_last, ref_ordered)
