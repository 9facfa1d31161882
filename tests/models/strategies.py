"""Hypothesis strategies for the models tests: random small NIR graphs and inputs.

Weights, biases and gains are drawn from a dyadic lattice (k/16), so sums of a
step's inputs are exact in float64 whatever order they arrive in.
"""

from __future__ import annotations

import nir
import numpy as np
from hypothesis import strategies as st

from spikegate.models.graph import from_nir

NEURON_KINDS = ("lif", "cuba_lif", "if", "li", "cuba_li", "integrator", "threshold")
SPIKING_KINDS = ("lif", "cuba_lif", "if", "threshold")
DT_S = 1e-3
TAUS = (2e-3, 4e-3, 8e-3, 1e-2, 3e-2)


def lattice(draw, shape, lo=-24, hi=24, den=16.0):
    n = int(np.prod(shape))
    vals = draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))
    return np.array(vals, dtype=np.float64).reshape(shape) / den


def neuron_node(draw, kind, n):
    tau = np.full(n, draw(st.sampled_from(TAUS)))
    tau_syn = np.full(n, draw(st.sampled_from(TAUS)))
    r = lattice(draw, (n,), 1, 24)
    leak = lattice(draw, (n,), -8, 8) if draw(st.booleans()) else np.zeros(n)
    theta = lattice(draw, (n,), 0, 24) if draw(st.integers(0, 9)) == 0 else lattice(
        draw, (n,), 1, 24)
    reset = lattice(draw, (n,), -8, 8) if draw(st.booleans()) else np.zeros(n)
    w_in = lattice(draw, (n,), 1, 24)
    if kind == "lif":
        return nir.LIF(tau=tau, r=r, v_leak=leak, v_threshold=theta, v_reset=reset)
    if kind == "cuba_lif":
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau, r=r, v_leak=leak, v_threshold=theta,
                           v_reset=reset, w_in=w_in)
    if kind == "if":
        return nir.IF(r=r, v_threshold=theta, v_reset=reset)
    if kind == "li":
        return nir.LI(tau=tau, r=r, v_leak=leak)
    if kind == "cuba_li":
        return nir.CubaLI(tau_syn=tau_syn, tau_mem=tau, r=r, v_leak=leak, w_in=w_in)
    if kind == "integrator":
        return nir.I(r=r)
    return nir.Threshold(threshold=theta)


@st.composite
def random_graphs(draw):
    """Input → [Affine/Linear (+Scale, +Delay) → neuron (+recurrent Affine)]×L → Output."""
    n_in = draw(st.integers(1, 4))
    nodes: dict[str, object] = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    edges: list[tuple[str, str]] = []
    prev, n_prev = "input", n_in
    n_layers = draw(st.integers(1, 3))
    for layer in range(n_layers):
        n = draw(st.integers(1, 5))
        # non-spiking neurons (their output is v, a real value) only as the readout:
        # a step's input sums are then sums of lattice values, exact in any order
        kinds = NEURON_KINDS if layer == n_layers - 1 else SPIKING_KINDS
        kind = draw(st.sampled_from(kinds))
        weight = lattice(draw, (n, n_prev))
        syn = f"fc{layer}"
        if draw(st.booleans()):
            bias = lattice(draw, (n,), -8, 8) if draw(st.booleans()) else np.zeros(n)
            nodes[syn] = nir.Affine(weight=weight, bias=bias)
        else:
            nodes[syn] = nir.Linear(weight=weight)
        edges.append((prev, syn))
        last = syn
        if draw(st.integers(0, 3)) == 0:
            nodes[f"scale{layer}"] = nir.Scale(scale=lattice(draw, (n,), -16, 16))
            edges.append((last, f"scale{layer}"))
            last = f"scale{layer}"
        if draw(st.integers(0, 3)) == 0:
            steps = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
            nodes[f"delay{layer}"] = nir.Delay(delay=steps * DT_S)
            edges.append((last, f"delay{layer}"))
            last = f"delay{layer}"
        neuron = f"n{layer}"
        nodes[neuron] = neuron_node(draw, kind, n)
        edges.append((last, neuron))
        if kind not in ("li", "cuba_li", "integrator") and draw(st.booleans()):
            rec_bias = lattice(draw, (n,), -8, 8) if draw(st.booleans()) else np.zeros(n)
            nodes[f"rec{layer}"] = nir.Affine(weight=lattice(draw, (n, n)), bias=rec_bias)
            edges += [(neuron, f"rec{layer}"), (f"rec{layer}", neuron)]
        prev, n_prev = neuron, n
    nodes["output"] = nir.Output(output_type={"output": np.array([n_prev])})
    edges.append((prev, "output"))
    graph = from_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    n_steps = draw(st.integers(1, 40))
    density = draw(st.sampled_from([0.05, 0.2, 0.5]))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x = rng.binomial(2, density, size=(n_steps, n_in)).astype(np.float64)
    return graph, x
