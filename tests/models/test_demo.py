"""The demo tracker's kernel against a slow, obvious reference."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.packet import Geometry, make_events
from spikegate.drivers.synthetic import MovingDisk
from spikegate.models.demo import TrackerNetwork


def reference_lif(net: TrackerNetwork, events: np.ndarray) -> list[tuple[int, int]]:
    v = [0.0] * net.output_size
    t_last = [0] * net.output_size
    spikes = []
    for e in events:
        row = int(e["y"]) * net.geometry.width + int(e["x"])
        for j in range(net.output_size):
            v[j] *= math.exp(-(int(e["t"]) - t_last[j]) / net.tau_us)
            t_last[j] = int(e["t"])
            v[j] += net.w[row, j]
            if v[j] > net.v_th:
                v[j] = 0.0
                spikes.append((int(e["t"]), j))
    return spikes


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 15), st.integers(0, 11)),
                max_size=200), st.integers(1, 2))
def test_event_driven_equals_reference(raw: list[tuple[int, int, int]], split: int) -> None:
    net = TrackerNetwork(Geometry(16, 12), n_x=4, n_y=3, gain=0.4)
    dts, xs, ys = zip(*raw, strict=True) if raw else ((), (), ())
    events = make_events(np.cumsum(np.asarray(dts, dtype=np.int64)), xs, ys, 1)
    expected = reference_lif(net, events)
    got = []
    for part in np.array_split(events, split):  # packets split anywhere give the same spikes
        out = net.step(part)
        got += [(int(t), int(n)) for t, n in zip(out.spikes["t"], out.spikes["neuron"],
                                                   strict=True)]
        assert out.synops == len(part) * net.output_size
    assert got == expected


def test_tracker_finds_the_disk() -> None:
    scene = MovingDisk(noise_fraction=0.0, rate_ev_s=200_000)
    net = TrackerNetwork(scene.geometry)
    net.warm_up()
    counts = np.zeros(net.output_size)
    out = net.step(scene.events(0, 50_000, 0))
    np.add.at(counts, out.spikes["neuron"].astype(int), 1)
    where = net.decode(counts)
    assert where is not None
    centre, _ = scene.position(np.array([25_000]))
    half = (scene.width - 1) / 2
    assert abs(where[0] - (centre[0, 0] - half) / half) < 0.2
    assert abs(where[1] - (centre[0, 1] - half) / half) < 0.2


def test_events_outside_the_sensor_are_ignored() -> None:
    net = TrackerNetwork(Geometry(8, 8), n_x=2, n_y=2)
    out = net.step(make_events([0, 1], [100, 3], [0, 3]))
    assert out.synops == net.output_size
