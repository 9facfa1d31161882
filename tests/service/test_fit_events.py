"""``ModelCore.fit_events`` (one kernel through per-axis maps) against the plain
numpy formulation it replaced, for both fits, any sensor and model geometry and
addresses beyond the sensor."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.packet import EVENT_DTYPE, Geometry, make_events
from spikegate.service.cores import ModelCore


class _Net:
    def __init__(self, n_p: int, n_y: int, n_x: int) -> None:
        self.event_shape = (n_p, n_y, n_x)
        self.output_size = 1


def _reference(events, width, height, n_p, n_y, n_x, fit):
    out = np.empty(events.shape[0], dtype=EVENT_DTYPE)
    out["t"] = events["t"]
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    if fit == "scale":
        x = x * n_x // max(width, 1)
        y = y * n_y // max(height, 1)
    keep = (x < n_x) & (y < n_y)
    out["x"] = np.where(keep, x, 0)
    out["y"] = np.where(keep, y, 0)
    out["p"] = np.minimum(events["p"], 1) if n_p == 2 else 0
    return out[keep], int(np.count_nonzero(~keep))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), fit=st.sampled_from(["scale", "crop"]), n_p=st.sampled_from([1, 2]))
def test_fit_events_equals_numpy(data, fit: str, n_p: int) -> None:
    width, height = data.draw(st.integers(0, 80)), data.draw(st.integers(0, 80))
    n_x, n_y = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 40))
    n = data.draw(st.integers(0, 50))
    xs = data.draw(st.lists(st.integers(0, 120), min_size=n, max_size=n))
    ys = data.draw(st.lists(st.integers(0, 120), min_size=n, max_size=n))
    ps = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    events = make_events(np.arange(n), xs, ys, ps)
    core = ModelCore(_Net(n_p, n_y, n_x), Geometry(width, height), fit=fit)  # type: ignore[arg-type]
    got = core.fit_events(events)
    ref, outside = _reference(events, width, height, n_p, n_y, n_x, fit)
    assert got.tobytes() == ref.tobytes()
    assert core.outside == outside
