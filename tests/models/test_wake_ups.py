"""Neurons that move without input are woken at the step they fire, not polled.

A constant drive above threshold fires periodically with no input at all; a
current-based neuron kicked once crosses threshold steps later; a drive below
threshold settles and then costs nothing however long the quiet lasts. Spikes
equal the clock-driven reference; neuron updates show that quiet steps are
not visited one by one.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest

from spikegate.drivers.packet import EVENT_DTYPE, make_events
from spikegate.models.graph import from_nir
from spikegate.models.network import Network
from spikegate.models.profiles import make_profile
from spikegate.models.reference import run_reference


def _graph(bias: float, neuron: nir.NIRNode, n_in: int = 1) -> nir.NIRGraph:
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n_in])}),
            "fc": nir.Affine(weight=np.full((2, n_in), 0.5), bias=np.array([bias, bias / 3])),
            "lif": neuron,
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
        type_check=False,
    )


def _lif() -> nir.LIF:
    return nir.LIF(tau=np.full(2, 0.02), r=np.ones(2), v_leak=np.zeros(2),
                   v_threshold=np.ones(2), v_reset=np.zeros(2))


@pytest.mark.parametrize("profile", ["exact", "snntorch", "norse"])
def test_constant_drive_fires_on_schedule(profile: str) -> None:
    graph = from_nir(_graph(1.7, _lif()))  # neuron 0 fires periodically, neuron 1 settles
    prof = make_profile(profile, dt_s=1e-3)
    steps = 3000
    x = np.zeros((steps, 1))
    want = run_reference(graph, prof, x)["output"]
    net = Network(graph, prof)
    got = net.run(x)["output"]
    np.testing.assert_array_equal(got, want)
    assert want[:, 0].sum() > 50 and want[:, 1].sum() == 0
    # the same quiet stretch as events: wake-ups only, a bounded number of updates
    net.reset_state(t_origin_us=0)
    result = net.step(np.zeros(0, EVENT_DTYPE), until_step=steps)
    spikes = np.bincount(result.steps, minlength=steps)
    np.testing.assert_array_equal(spikes, want[:, 0])
    assert result.neuron_updates["lif"] <= 2 * steps + 4096  # look-ahead + catch-up


def test_settled_neuron_costs_nothing_while_quiet() -> None:
    graph = from_nir(_graph(0.6, _lif()))  # both settle below threshold
    net = Network(graph, make_profile("exact", dt_s=1e-3))
    net.reset_state(t_origin_us=0)
    quiet = net.step(np.zeros(0, EVENT_DTYPE), until_step=1_000_000)
    assert len(quiet.events) == 0
    assert quiet.neuron_updates["lif"] < 10_000  # polled, it would be 2 × 1,000,000


def test_kicked_current_neuron_crosses_later_without_input() -> None:
    cuba = nir.CubaLIF(tau_syn=np.full(2, 0.05), tau_mem=np.full(2, 0.01), r=np.ones(2),
                       v_leak=np.zeros(2), v_threshold=np.full(2, 0.6), v_reset=np.zeros(2),
                       w_in=np.array([150.0, 1.0]))
    graph = from_nir(_graph(0.0, cuba))
    prof = make_profile("norse", dt_s=1e-3)
    steps = 400
    x = np.zeros((steps, 1))
    x[3, 0] = 1.0  # one input spike at step 3
    want = run_reference(graph, prof, x)["output"]
    fired = np.flatnonzero(want[:, 0])
    assert len(fired) >= 3 and fired[0] > 4  # crosses after its input, with no input then
    net = Network(graph, prof)
    net.reset_state(t_origin_us=0)
    result = net.step(make_events([3000], [0]), until_step=steps)
    spikes = np.zeros((steps, 2))
    np.add.at(spikes, (result.steps, result.events["x"].astype(np.int64)), 1)
    np.testing.assert_array_equal(spikes, want)


@pytest.mark.parametrize("profile", ["exact", "norse"])
def test_adaptive_neuron_on_a_constant_drive_fires_on_schedule(profile: str) -> None:
    from spikegate.models.alif import ALIF

    alif = ALIF(tau_mem=np.full(2, 0.02), tau_adp=np.full(2, 0.2), r=np.ones(2),
                v_leak=np.zeros(2), v_threshold=np.ones(2), beta=np.full(2, 1.5),
                v_reset=np.zeros(2), adapt_jump=np.full(2, 0.1))
    graph = from_nir(_graph(2.5, alif))
    prof = make_profile(profile, dt_s=1e-3)
    steps = 2000
    want = run_reference(graph, prof, np.zeros((steps, 1)))["output"]
    assert want[:, 0].sum() > 20
    net = Network(graph, prof)
    net.reset_state(t_origin_us=0)
    result = net.step(np.zeros(0, EVENT_DTYPE), until_step=steps)
    spikes = np.zeros((steps, 2))
    np.add.at(spikes, (result.steps, result.events["x"].astype(np.int64)), 1)
    np.testing.assert_array_equal(spikes, want)
