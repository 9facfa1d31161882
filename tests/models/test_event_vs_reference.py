"""Event-driven core == clock-driven reference, spike for spike, on random graphs.

Weights, biases and gains are drawn from a dyadic lattice (k/16), so sums of a
step's inputs are exact in float64 whatever order they arrive in: any
difference is then a real difference of semantics, not of rounding. That
holds while values stay well inside float64's 53 bits: a recurrent multi-spike
layer can run away to 10^15 spikes a step, where sums round differently by
order, so such cases are discarded.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from spikegate.drivers.packet import make_events
from spikegate.models.graph import GraphError
from spikegate.models.network import Network
from spikegate.models.profiles import PROFILE_NAMES, make_profile
from spikegate.models.reference import run_reference

from .strategies import DT_S, NEURON_KINDS, random_graphs

PROFILES = [make_profile(name, DT_S) for name in PROFILE_NAMES] + [
    make_profile("norse", DT_S, "subtract"),
    make_profile("snntorch", DT_S, "subtract"),
    dataclasses.replace(make_profile("exact", DT_S), reset="subtract"),
]


def _compile(graph, profile):
    try:
        return Network(graph, profile)
    except GraphError:  # e.g. a multi-spike IF with threshold 0: refused, not run
        assume(False)
        raise


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_graphs(), profile=st.sampled_from(PROFILES))
def test_event_driven_equals_reference(case, profile):
    graph, x = case
    net = _compile(graph, profile)
    neurons = [la.name for la in graph.layers if la.kind in NEURON_KINDS]
    got = net.run(x, record=neurons)
    want = run_reference(graph, profile, x)
    assume(all(np.all(np.abs(w) < 2.0**32) for w in want.values()))
    for name in [*neurons, "output"]:
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"node {name}")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_graphs(), profile=st.sampled_from(PROFILES), data=st.data())
def test_events_in_packets_equal_one_raster(case, profile, data):
    """Streaming the same input as events, split into packets anywhere, changes nothing
    (packets hold back their last step until the final one)."""
    graph, x = case
    net = _compile(graph, profile)
    assume(net._output_is_spiking())
    want = net.run(x)["output"].reshape(x.shape[0], -1)
    steps, idx = np.nonzero(x)
    reps = x[steps, idx].astype(np.int64)
    events = make_events(np.repeat(steps * profile.dt_us, reps) + 7, np.repeat(idx, reps))
    net.reset_state(t_origin_us=0)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), max_size=4)))
    got = np.zeros_like(want)
    for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True):
        final = b == len(events)
        result = net.step(events[a:b], until_step=x.shape[0] if final else None, flush=final)
        assert result.n_late == 0
        out = result.output
        np.add.at(got, (out.step, out.idx), out.val)
        assert np.all(result.events["t"] >= 0)
    np.testing.assert_array_equal(got, want)
