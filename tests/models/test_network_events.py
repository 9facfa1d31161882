"""Event input: address flattening, time binning, late events, held steps."""

from __future__ import annotations

import nir
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.packet import make_events
from spikegate.models.graph import from_nir
from spikegate.models.network import Network
from spikegate.models.profiles import make_profile


def identity_graph(shape):
    n = int(np.prod(shape))
    return from_nir(nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array(shape)}),
            "fc": nir.Linear(weight=np.eye(n)),
            "th": nir.Threshold(threshold=np.full(n, 0.5)),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "th"), ("th", "output")],
        type_check=False,
    ))


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(2, 3, 4), (3, 5), (7,)]),
    data=st.data(),
)
def test_addresses_flatten_in_c_order_of_the_input_shape(shape, data):
    net = Network(identity_graph(shape), make_profile("snntorch", 1e-3))
    p_n, h_n, w_n = (shape if len(shape) == 3 else (1, *shape) if len(shape) == 2
                     else (1, 1, shape[0]))
    n = data.draw(st.integers(1, 10))
    xs = data.draw(st.lists(st.integers(0, w_n - 1), min_size=n, max_size=n))
    ys = data.draw(st.lists(st.integers(0, h_n - 1), min_size=n, max_size=n))
    ps = data.draw(st.lists(st.integers(0, p_n - 1), min_size=n, max_size=n))
    t = np.arange(n) * 1000  # one event per step
    result = net.step(make_events(t, xs, ys, ps))
    want = [(p * h_n + y) * w_n + x for x, y, p in zip(xs, ys, ps, strict=True)]
    assert result.events["x"].tolist() == want
    assert result.steps.tolist() == list(range(n))
    assert result.events["t"].tolist() == t.tolist()


def test_late_events_go_to_the_next_open_step_and_are_counted():
    net = Network(identity_graph((4,)), make_profile("snntorch", 1e-3))
    first = net.step(make_events([0, 2500], [0, 1]))  # steps 0 and 2
    assert first.n_steps == 3
    late = net.step(make_events([1200, 3100], [2, 3]))  # step 1 is closed: runs at 3
    assert late.n_late == 1
    assert late.first_step == 3 and late.n_steps == 1
    assert sorted(late.events["x"].tolist()) == [2, 3]


def test_held_step_waits_for_the_rest_of_its_events():
    net = Network(identity_graph((4,)), make_profile("snntorch", 1e-3))
    a = net.step(make_events([0, 1500], [0, 1]), flush=False)
    assert a.n_steps == 1 and a.events["x"].tolist() == [0]  # step 1 held back
    b = net.step(make_events([1900], [2]), flush=True)
    assert b.n_late == 0 and sorted(b.events["x"].tolist()) == [1, 2]


def test_event_shape_maps_a_sensor_onto_a_flat_input():
    net = Network(identity_graph((2 * 3 * 4,)), make_profile("snntorch", 1e-3),
                  event_shape=(2, 3, 4))
    result = net.step(make_events([0], [3], [2], [1]))
    assert result.events["x"].tolist() == [(1 * 3 + 2) * 4 + 3]
