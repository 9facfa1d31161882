"""Accounting: synaptic operations and neuron updates per layer and per call; cause times."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from spikegate.drivers.packet import make_events
from spikegate.models.graph import from_nir
from spikegate.models.network import InputError, Network, warm_up
from spikegate.models.profiles import make_profile


def two_layer(n_in=4, n_hidden=6, n_out=2, threshold=0.5):
    def lif(n):
        return nir.LIF(tau=np.full(n, 1e-2), r=np.full(n, 10.0), v_leak=np.zeros(n),
                       v_threshold=np.full(n, threshold), v_reset=np.zeros(n))

    return from_nir(nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n_in])}),
            "fc1": nir.Linear(weight=np.ones((n_hidden, n_in))),
            "lif1": lif(n_hidden),
            "fc2": nir.Linear(weight=np.ones((n_out, n_hidden))),
            "lif2": lif(n_out),
            "output": nir.Output(output_type={"output": np.array([n_out])}),
        },
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
               ("lif2", "output")],
        type_check=False,
    ))


def test_synops_are_events_times_fan_out_per_layer_and_call():
    net = Network(two_layer(), make_profile("snntorch", 1e-3))
    events = make_events([0, 100, 2500], [0, 3, 1])  # steps 0, 0, 2
    result = net.step(events)
    hidden_spikes = result.recorded.get("lif1")
    assert result.synops["fc1"] == 3 * 6
    assert result.n_steps == 3
    again = net.step(make_events([3500], [2]))
    assert again.synops["fc1"] == 6  # per call, not cumulative
    assert hidden_spikes is None  # only recorded nodes are returned
    full = Network(two_layer(), make_profile("snntorch", 1e-3))
    res = full.step(events, record=["lif1"])
    n_hidden_spikes = int(res.recorded["lif1"].val.sum())
    assert n_hidden_spikes > 0
    assert res.synops["fc2"] == n_hidden_spikes * 2


def test_neuron_updates_count_only_touched_or_active_neurons():
    net = Network(two_layer(threshold=100.0), make_profile("norse", 1e-3))
    # one event at step 0 and one at step 999: between them nothing is active (no
    # neuron can reach threshold without input), so no step polls the layer; the
    # second event's catch-up replays the 998 missed decays of each of the 6 neurons
    # one by one (bit-exact with the clock) and counts them
    result = net.step(make_events([0, 999_000], [0, 1]))
    assert result.n_steps == 1000
    assert result.neuron_updates["lif1"] == 6 + 6 * (998 + 1)
    assert result.neuron_updates["lif2"] == 0
    # a state that stops changing ends the replay early: IF neurons never decay
    if_net = Network(two_layer(threshold=100.0), make_profile("norse", 1e-3))
    for stage in if_net.stages.values():
        if hasattr(stage, "coef_rows"):
            stage.coef_rows[2] = 1.0  # beta = 1: no leak
    result = if_net.step(make_events([0, 999_000], [0, 1]))
    assert result.neuron_updates["lif1"] == 6 + 6 * (2 + 1)  # i → 0, then unchanged: stop


def test_output_spikes_carry_the_time_of_their_cause():
    net = Network(two_layer(threshold=0.05), make_profile("snntorch", 1e-3))
    result = net.step(make_events([10_250, 10_900, 13_100], [0, 1, 2]))
    assert len(result.events) > 0
    # step 0 starts at 10 000 µs; a spike at step 0 is stamped 10 900 (its step's last event)
    first = result.events[result.steps == 0]
    assert (first["t"] == 10_900).all()
    between = (result.steps > 0) & (result.steps < 3)
    assert (result.events["t"][between] == 10_000 + 1000 * result.steps[between]).all()


def test_warm_up_runs():
    warm_up()


def test_a_clock_jump_is_refused_not_run():
    net = Network(two_layer(), make_profile("snntorch", 1e-3))
    net.step(make_events([0], [0]))
    with pytest.raises(InputError, match="max_steps_per_call"):
        net.step(make_events([10**13], [0]))  # 10^13 µs later
    net.reset_state()
    assert net.step(make_events([10**13], [0])).n_steps == 1  # a new origin is fine
