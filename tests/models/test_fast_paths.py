"""The kernels' fast paths give exactly what their general paths give.

``step_all``'s voltage-only pass (neurons without synaptic current) against
the general pass with the flag off, and the dense scatter's unit-value path
against the general products, on random states, biases, missed steps and
every reset rule; the one-call chain kernel against the general plan.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.models.kernels import neuron as kn
from spikegate.models.kernels.dense import add_rows, add_rows_unit


def _layer(rng: np.random.Generator, n: int, reset_code: int, rec_start: int):
    coef = np.zeros((kn.N_COEF, n))
    coef[kn.GAIN_SYN] = rng.uniform(0.5, 1.5, n)
    coef[kn.BETA] = rng.uniform(0.5, 1.0, n)
    coef[kn.GAIN_V] = rng.uniform(0.01, 1.0, n)
    coef[kn.LEAK] = np.where(rng.random(n) < 0.2, rng.normal(0, 0.05, n), 0.0)
    coef[kn.THRESHOLD] = rng.uniform(0.2, 1.5, n)
    coef[kn.V_RESET] = np.where(rng.random(n) < 0.5, 0.0, rng.normal(0, 0.1, n))
    coef[kn.V_MIN] = np.where(rng.random(n) < 0.7, -np.inf, -1.0)
    coef[kn.BIAS] = np.where(rng.random(n) < 0.2, rng.normal(0, 0.1, n), 0.0)
    coef[kn.BIAS_REC] = np.where(rng.random(n) < 0.2, rng.normal(0, 0.1, n), 0.0)
    coef[kn.WAKE_GAIN] = np.abs(coef[kn.GAIN_V])
    flags = np.zeros(kn.N_FLAGS, np.int64)
    flags[kn.SPIKING] = 1
    flags[kn.RESET_CODE] = reset_code
    flags[kn.REC_START] = rec_start
    flags[kn.NO_CURRENT] = 1
    fstate = np.zeros((3, n))
    fstate[0] = rng.normal(0.2, 0.6, n)
    istate = np.zeros((kn.N_ISTATE, n), np.int64)
    istate[kn.LAST] = rng.integers(-1, 3, n)  # some neurons several steps behind
    istate[kn.WAKE] = -1
    bstate = np.zeros((2, n), np.uint8)
    bstate[1] = (coef[kn.BIAS] != 0) | (coef[kn.BIAS_REC] != 0) | (coef[kn.LEAK] != 0)
    sched = np.zeros((2, kn.heap_capacity(n)), np.int64)
    return coef, flags, fstate, istate, bstate, sched


@pytest.mark.parametrize("reset_code",
                         [kn.RESET_ZERO, kn.RESET_SUBTRACT, kn.RESET_SUBTRACT_SNNTORCH])
@given(seed=st.integers(0, 2**32 - 1), rec_start=st.integers(0, 6))
@settings(max_examples=40, deadline=None)
def test_voltage_pass_equals_general_pass(reset_code: int, seed: int, rec_start: int) -> None:
    rng = np.random.default_rng(seed)
    n = 37
    fast = _layer(rng, n, reset_code, rec_start)
    general = tuple(a.copy() for a in fast)
    general[1][kn.NO_CURRENT] = 0
    outs = []
    for coef, flags, fstate, istate, bstate, sched in (fast, general):
        out = (np.zeros(8 * n, np.int64), np.zeros(8 * n, np.int64), np.zeros(8 * n))
        counters = np.zeros(1, np.int64)
        n_out = 0
        drive = np.random.default_rng(seed + 1).normal(0.3, 0.8, (5, n))
        for k, step in zip((4, 5, 7, 8, 9), drive, strict=True):  # steps 6 missed
            fstate[2] = step
            n_out = kn.step_all(k, coef, flags, fstate, istate, bstate, sched, *out, n_out,
                                counters)
        na = int(flags[kn.N_ACTIVE])
        outs.append((n_out, [o[:n_out] for o in out], fstate[:2], istate[0],
                     np.sort(istate[1, :na]), counters[0]))
    (n_f, out_f, st_f, last_f, act_f, c_f), (n_g, out_g, st_g, last_g, act_g, c_g) = outs
    assert n_f == n_g
    for a, b in zip(out_f, out_g, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(st_f, st_g)
    np.testing.assert_array_equal(last_f, last_g)
    np.testing.assert_array_equal(act_f, act_g)
    assert c_f == c_g


@given(seed=st.integers(0, 2**32 - 1), n_events=st.integers(0, 11))
@settings(max_examples=40, deadline=None)
def test_unit_rows_equal_products(seed: int, n_events: int) -> None:
    rng = np.random.default_rng(seed)
    weight_t = rng.normal(0, 1, (9, 13)).astype(np.float32)
    idx = rng.integers(0, 9, n_events)
    acc_unit, acc_mul = (np.full(13, 0.25) for _ in range(2))
    assert add_rows_unit(0, n_events, idx, weight_t, acc_unit) == n_events
    add_rows(0, n_events, idx, np.ones(n_events), weight_t, acc_mul)
    np.testing.assert_array_equal(acc_unit, acc_mul)


def _two_layer_graph(rng: np.random.Generator, float32_first: bool, bias: float):
    """12 → Affine → 9 LIF → Affine → 4 LIF (random weights; ``bias`` on the first)."""
    import nir

    from spikegate.models.graph import from_nir

    sizes = [12, 9, 4]
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([12])})}
    edges, prev = [], "input"
    for k in range(2):
        n_in, n_out = sizes[k], sizes[k + 1]
        weight = rng.normal(0.3, 0.6, (n_out, n_in))
        if float32_first and k == 0:  # stored as float32 (exact), the next as float64
            weight = weight.astype(np.float32).astype(np.float64)
        nodes[f"fc{k}"] = nir.Affine(weight=weight, bias=rng.normal(bias, 0.02, n_out) * (k == 0))
        nodes[f"lif{k}"] = nir.LIF(tau=np.full(n_out, 0.01), r=np.ones(n_out),
                                   v_leak=np.zeros(n_out), v_threshold=np.ones(n_out),
                                   v_reset=np.zeros(n_out))
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"lif{k}")]
        prev = f"lif{k}"
    nodes["output"] = nir.Output(output_type={"output": np.array([4])})
    edges.append((prev, "output"))
    return from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))


def _chain_and_general(graph, packets, until_step=None):
    """Each packet's result (as comparable values) with the chain path, then without."""
    from spikegate.models.network import Network
    from spikegate.models.profiles import make_profile

    results = []
    for chain in (True, False):
        net = Network(graph, make_profile("snntorch", dt_s=1e-3))
        assert net._chain is not None
        if not chain:
            net._chain = None
        net.reset_state(t_origin_us=0)
        got = []
        for part in packets:
            r = net.step(part, until_step=until_step)
            got.append((r.events.tobytes(), r.steps.tolist(), r.synops, r.neuron_updates,
                        r.n_steps, r.first_step))
        results.append(got)
    return results


@given(seed=st.integers(0, 2**32 - 1), packet_us=st.sampled_from([700, 1000, 5000, 40_000]),
       float32_first=st.booleans())
@settings(max_examples=20, deadline=None)
def test_chain_path_equals_the_general_plan(seed: int, packet_us: int,
                                            float32_first: bool) -> None:
    """The one-call chain kernel (or, with float32 weights in one layer and float64 in
    the other, the layer-by-layer chain path) == the general plan, packet by packet."""
    from spikegate.drivers.packet import make_events

    rng = np.random.default_rng(seed)
    graph = _two_layer_graph(rng, float32_first, 0.0)
    n = 400
    events = make_events(np.sort(rng.integers(0, 60_000, n)), rng.integers(0, 12, n))
    packets = [events[(events["t"] >= start) & (events["t"] < start + packet_us)]
               for start in range(0, 60_000, packet_us)]
    results = _chain_and_general(graph, packets)
    assert results[0] == results[1]


def test_chain_kernel_grows_its_buffers() -> None:
    """A biased first layer fires at every step of a long call without input: far more
    output than the kernel's first buffer holds (it doubles it) — same as the plan."""
    from spikegate.drivers.packet import make_events

    graph = _two_layer_graph(np.random.default_rng(5), False, 3.0)
    results = _chain_and_general(graph, [make_events([0], [1])], until_step=3000)
    assert results[0] == results[1]
    assert results[0][0][2]["fc1"] > 4 * 1000  # first-layer spikes × 4 targets, > 256
