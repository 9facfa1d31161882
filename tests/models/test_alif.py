"""ALIF: event-driven kernel == clock-driven reference; the NIR extension round-trips."""

from __future__ import annotations

import dataclasses

import nir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.models import graph
from spikegate.models.alif import ALIF, EXTENSION, alif_coefficients
from spikegate.models.kernels import neuron as kn
from spikegate.models.kernels.alif import advance_alif
from spikegate.models.profiles import make_profile
from spikegate.models.reference_alif import run_alif


def make_alif_layer(n: int, rng: np.random.Generator, *, tau_adp_s: float = 0.2) -> graph.Layer:
    node = ALIF(
        tau_mem=rng.uniform(5e-3, 30e-3, n),
        tau_adp=np.full(n, tau_adp_s),
        r=rng.uniform(0.5, 2.0, n),
        v_leak=np.zeros(n),
        v_threshold=np.full(n, 0.5),
        beta=rng.uniform(0.0, 1.8, n),
        v_reset=np.zeros(n),
        adapt_jump=np.full(n, 0.2),
    )
    params, in_shape, out_shape = graph.KINDS["alif"].read("alif", node)
    return graph.Layer("alif", "alif", params, in_shape, out_shape)


def run_kernel(coeffs, n_steps: int, in_step, in_idx, in_val, *, chunk: int = 7) -> np.ndarray:
    """Drive ``advance_alif`` over ``n_steps`` in chunks; returns the spike raster."""
    lif = coeffs.lif
    n = lif.beta.shape[0]
    v, a = np.zeros(n), np.zeros(n)
    last = np.full(n, -1, np.int64)
    due = np.zeros(n, np.int64)
    flags = np.zeros(kn.N_FLAGS, np.int64)
    wake = np.full(n, -1, np.int64)
    sched = np.zeros((2, kn.heap_capacity(n)), np.int64)
    acc, mark, cand = np.zeros(n), np.zeros(n, np.uint8), np.zeros(n, np.int64)
    raster = np.zeros((n_steps, n))
    counters = np.zeros(1, np.int64)
    zeros, never = np.zeros(n), np.zeros(n, np.uint8)
    pos, k = 0, 0
    cap = 4 * n
    while k < n_steps:
        out = (np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap))
        n_out, k, pos = advance_alif(
            k, min(k + chunk, n_steps), in_step, in_idx, in_val, pos, zeros, zeros, 0,
            coeffs.rho, coeffs.beta_adapt, coeffs.adapt_jump, lif.beta, lif.gain_v, lif.leak,
            lif.threshold, lif.v_reset, lif.reset_code, lif.spike_at_threshold, never,
            v, a, last, due, flags, wake, sched, acc, mark, cand, *out, counters)
        raster[out[0][:n_out], out[1][:n_out]] += out[2][:n_out]
    return raster


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["exact", "snntorch", "norse", "sinabs"]),
    st.sampled_from(["zero", "subtract"]),
    st.integers(1, 12),
    st.integers(5, 120),
    st.floats(0.02, 0.6),
    st.integers(0, 2**31),
)
def test_event_driven_alif_equals_reference(profile_name, reset, n, n_steps, p_in, seed):
    rng = np.random.default_rng(seed)
    layer = make_alif_layer(n, rng)
    profile = make_profile(profile_name, dt_s=1e-3,
                           reset="subtract" if reset == "subtract" and profile_name != "snntorch"
                           else None)
    coeffs = alif_coefficients(layer, profile)
    # dyadic input values: per-step sums are exact in any order
    x = (rng.random((n_steps, n)) < p_in) * rng.integers(-8, 40, (n_steps, n)) / 8.0
    x *= 1.0 / max(float(np.max(coeffs.lif.gain_v)), 1e-12) * 0.2
    x = np.round(x * 64) / 64
    in_step, in_idx = np.nonzero(x)
    in_val = x[in_step, in_idx]
    got = run_kernel(coeffs, n_steps, in_step.astype(np.int64), in_idx.astype(np.int64), in_val)
    want, _, _ = run_alif(x, coeffs)
    np.testing.assert_array_equal(got, want)


def test_adaptation_lowers_the_rate_under_constant_drive():
    rng = np.random.default_rng(0)
    layer = make_alif_layer(1, rng, tau_adp_s=0.5)
    coeffs = alif_coefficients(layer, make_profile("exact", dt_s=1e-3))
    x = np.full((400, 1), 2.0 / float(coeffs.lif.gain_v[0]) * 0.2)
    spikes, _, a = run_alif(x, coeffs)
    early, late = spikes[:100].sum(), spikes[300:].sum()
    assert early > late > 0  # the threshold rose with a
    assert a[-1, 0] > 0


def _alif_graph(n: int = 4) -> nir.NIRGraph:
    rng = np.random.default_rng(1)
    return nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Affine(weight=rng.normal(size=(n, 3)), bias=np.zeros(n)),
            "alif": ALIF(tau_mem=np.full(n, 0.02), tau_adp=np.full(n, 0.3), r=np.ones(n),
                         v_leak=np.zeros(n), v_threshold=np.full(n, 1.0),
                         beta=np.full(n, 1.8), v_reset=np.zeros(n),
                         adapt_jump=np.full(n, 0.05)),
            "out": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("in", "fc"), ("fc", "alif"), ("alif", "out")],
        type_check=False,
    )


def test_alif_node_dict_round_trip():
    node = _alif_graph().nodes["alif"]
    data = node.to_dict()
    assert data["type"] == "ALIF" and data["metadata"]["extension"] == EXTENSION
    back = ALIF.from_dict(data)
    for field in ("tau_mem", "tau_adp", "r", "v_leak", "v_threshold", "beta", "v_reset",
                  "adapt_jump"):
        np.testing.assert_array_equal(getattr(back, field), getattr(node, field))


def test_alif_graph_import_export_round_trip():
    g = graph.from_nir(_alif_graph())
    layer = g.layer("alif")
    assert layer.kind == "alif" and layer.output_shape == (4,)
    again = graph.from_nir(graph.to_nir(g))
    np.testing.assert_array_equal(again.layer("alif").params.beta, layer.params.beta)


def test_alif_bad_fields_are_refused_by_name():
    node = _alif_graph().nodes["alif"]
    node.tau_adp = np.full(4, -1.0)
    with pytest.raises(graph.GraphError, match=r"'alif'.*tau_adp"):
        graph.KINDS["alif"].read("alif", node)
    with pytest.raises(graph.GraphError, match="unknown field"):
        ALIF.from_dict({**_alif_graph().nodes["alif"].to_dict(), "gamma": 1.0})


def test_plain_nir_reader_refuses_the_extension(tmp_path):
    path = tmp_path / "alif.nir"
    nir.write(path, _alif_graph())
    with pytest.raises(Exception):  # noqa: B017 - nir 1.0 asserts on an unknown type
        nir.read(path)


def test_alif_nir_file_round_trip(tmp_path):
    path = tmp_path / "alif.nir"
    graph.save_graph(graph.from_nir(_alif_graph()), path)
    g = graph.load_graph(path)
    layer = g.layer("alif")
    assert layer.kind == "alif"
    np.testing.assert_array_equal(layer.params.adapt_jump, np.full(4, 0.05))
    np.testing.assert_array_equal(layer.params.tau_adp, np.full(4, 0.3))


def test_reader_without_the_extension_refuses_it_by_name(tmp_path, monkeypatch):
    path = tmp_path / "alif.nir"
    nir.write(path, _alif_graph())
    monkeypatch.delitem(graph.KINDS, "alif")
    with pytest.raises(graph.GraphError, match="node 'alif': unsupported node type 'ALIF'"):
        graph.load_graph(path)


def _network_pair(beta: float):
    """The same 3 → 6 graph with an ALIF layer and with the plain LIF it reduces to."""
    from spikegate.models.network import Network

    rng = np.random.default_rng(7)
    n = 6
    w = rng.normal(0.0, 0.8, size=(n, 3))
    shared_nodes = {
        "in": nir.Input(input_type={"input": np.array([3])}),
        "fc": nir.Affine(weight=w, bias=np.zeros(n)),
        "out": nir.Output(output_type={"output": np.array([n])}),
    }
    edges = [("in", "fc"), ("fc", "n"), ("n", "out")]
    alif = ALIF(tau_mem=np.full(n, 0.02), tau_adp=np.full(n, 0.2), r=np.full(n, 20.0),
                v_leak=np.zeros(n), v_threshold=np.full(n, 1.0), beta=np.full(n, beta),
                v_reset=np.zeros(n), adapt_jump=np.full(n, 0.5))
    lif = nir.LIF(tau=np.full(n, 0.02), r=np.full(n, 20.0), v_leak=np.zeros(n),
                  v_threshold=np.full(n, 1.0), v_reset=np.zeros(n))
    profile = make_profile("snntorch", dt_s=1e-3)
    nets = [Network(graph.from_nir(nir.NIRGraph(nodes={**shared_nodes, "n": node}, edges=edges,
                                                type_check=False)), profile)
            for node in (alif, lif)]
    x = (rng.random((300, 3)) < 0.3).astype(float)
    return nets, x, w


def test_alif_without_adaptation_is_the_lif_in_a_network():
    (alif_net, lif_net), x, _ = _network_pair(beta=0.0)
    a = alif_net.run(x)["out"]
    b = lif_net.run(x)["out"]
    assert a.sum() > 10
    np.testing.assert_array_equal(a, b)


def test_alif_network_equals_reference():
    (alif_net, _), x, w = _network_pair(beta=1.5)
    got = alif_net.run(x)["out"]
    coeffs = alif_net.stages["n"].coef
    want, _, _ = run_alif(x @ w.T, coeffs)
    assert 0 < got.sum() < alif_net.run(x)["out"].size
    np.testing.assert_array_equal(got, want)


def test_warm_up_compiles():
    from spikegate.models.kernels import alif as alif_kernels

    alif_kernels.warm_up()


def test_alif_network_equals_run_reference():
    from spikegate.models.reference import run_reference

    (alif_net, _), x, _ = _network_pair(beta=1.5)
    want = run_reference(alif_net.graph, alif_net.profile, x)
    np.testing.assert_array_equal(alif_net.run(x, record=["n"])["n"], want["n"])


def test_adaptation_matches_yin_et_al_with_jump_expm1():
    """b_t = ρ·b_{t−1} + (1 − ρ)·z_{t−1} (Yin et al. 2021) is our a before the step's jump."""
    rng = np.random.default_rng(2)
    layer = make_alif_layer(3, rng, tau_adp_s=0.1)
    params = layer.params
    jump = np.expm1(1e-3 / params.tau_adp)  # (1 − ρ)/ρ with ρ = exp(−dt/τ_adp)
    layer = dataclasses.replace(layer, params=dataclasses.replace(params, adapt_jump=jump))
    coeffs = alif_coefficients(layer, make_profile("exact", dt_s=1e-3))
    x = (rng.random((300, 3)) < 0.3) * 3.0 / coeffs.lif.gain_v
    z, _, a_after = run_alif(x, coeffs)
    assert z.sum() > 10
    rho = coeffs.rho
    b = np.zeros(3)
    for k in range(1, 300):
        b = rho * b + (1 - rho) * z[k - 1]
        a_before_jump = a_after[k] - coeffs.adapt_jump * z[k]
        np.testing.assert_allclose(a_before_jump, b, rtol=1e-9, atol=1e-12)


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(["exact", "snntorch", "norse", "sinabs"]), st.booleans(),
       st.integers(0, 2**31))
def test_recurrent_alif_network_equals_run_reference(profile, with_bias, seed):
    """ALIF with a recurrent Affine (and biases: a constant drive) in every profile."""
    from spikegate.models.network import Network
    from spikegate.models.reference import run_reference

    rng = np.random.default_rng(seed)
    n = 5
    bias = rng.normal(0.0, 0.05, n) if with_bias else np.zeros(n)
    g = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Affine(weight=rng.normal(0.3, 0.6, size=(n, 3)), bias=bias),
            "alif": ALIF(tau_mem=rng.uniform(0.005, 0.03, n), tau_adp=rng.uniform(0.05, 0.5, n),
                         r=rng.uniform(5.0, 20.0, n), v_leak=np.zeros(n),
                         v_threshold=np.full(n, 1.0), beta=rng.uniform(0.0, 2.0, n),
                         v_reset=np.zeros(n), adapt_jump=rng.uniform(0.0, 0.5, n)),
            "rec": nir.Affine(weight=rng.normal(0.0, 0.4, size=(n, n)), bias=np.zeros(n)),
            "out": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("in", "fc"), ("fc", "alif"), ("alif", "rec"), ("rec", "alif"), ("alif", "out")],
        type_check=False,
    )
    net = Network(graph.from_nir(g), make_profile(profile, dt_s=1e-3))
    x = (rng.random((60, 3)) < 0.2).astype(float)
    got = net.run(x, record=["alif"])["alif"]
    want = run_reference(net.graph, net.profile, x)["alif"]
    np.testing.assert_array_equal(got, want)


def test_state_precision_tools_accept_an_alif_layer():
    from spikegate.models.precision import set_precision
    from spikegate.models.weights import bank_of

    (alif_net, _), x, _ = _network_pair(beta=1.5)
    bank = bank_of(alif_net)
    assert "n" in bank.states
    set_precision(bank, "int8")
    out = alif_net.run(x)["out"]
    assert out.sum() > 0


@pytest.mark.parametrize("damage", ["drop_beta", "bad_shape", "text"])
def test_damaged_alif_nodes_in_a_file_are_refused(tmp_path, damage):
    import h5py

    path = tmp_path / "alif.nir"
    nir.write(path, _alif_graph())
    with h5py.File(path, "r+") as f:
        node = f["node/nodes/alif"]
        if damage == "drop_beta":
            del node["beta"]
        elif damage == "bad_shape":
            del node["tau_adp"]
            node.create_dataset("tau_adp", data=np.ones(3))
        else:
            del node["r"]
            node.create_dataset("r", data="fast")
    with pytest.raises(graph.GraphError, match="alif"):
        graph.load_graph(path)
