"""The ``sinabs`` profile against Sinabs itself (test extra): the same NIR graph read
by ``sinabs.from_nir`` and stepped by Sinabs gives the same spikes and readout."""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.models.graph import GraphError, from_nir
from spikegate.models.network import Network
from spikegate.models.profiles import make_profile

sinabs = pytest.importorskip("sinabs", reason="Sinabs is a test peer (make test installs it)")
torch = pytest.importorskip("torch")


def _graph(rng: np.random.Generator, n_in: int, n: int, leaky: str) -> nir.NIRGraph:
    tau = rng.uniform(1.5, 30.0, n)
    neuron = (nir.LIF(tau=tau, r=np.ones(n), v_leak=np.zeros(n),
                      v_threshold=rng.uniform(0.5, 2.0, n), v_reset=np.zeros(n))
              if leaky == "lif" else nir.LI(tau=tau, r=np.ones(n), v_leak=np.zeros(n)))
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n_in])}),
            "fc": nir.Affine(weight=rng.normal(0.4, 0.8, (n, n_in)).astype(np.float32),
                             bias=np.zeros(n, np.float32)),
            "neuron": neuron,
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "neuron"), ("neuron", "output")],
    )


def _sinabs_run(graph: nir.NIRGraph, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # Sinabs 3.1 calls nirtorch's deprecated loader
        warnings.simplefilter("ignore", DeprecationWarning)
        model = sinabs.from_nir(graph, batch_size=1)
    with torch.no_grad():
        out = model(torch.tensor(x, dtype=torch.float32))
    return (out[0] if isinstance(out, tuple) else out).numpy().astype(np.float64)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), leaky=st.sampled_from(["lif", "li"]))
def test_sinabs_profile_equals_sinabs(seed: int, leaky: str) -> None:
    rng = np.random.default_rng(seed)
    graph = _graph(rng, 6, 5, leaky)
    x = (rng.random((80, 6)) < 0.35).astype(np.float64)
    want = _sinabs_run(graph, x)
    got = Network(from_nir(graph), make_profile("sinabs", dt_s=1e-3)).run(x)["output"]
    if leaky == "lif":
        np.testing.assert_array_equal(got, want)
        assert want.max() >= 1
    else:  # a readout of v: Sinabs steps in float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_what_sinabs_cannot_read_is_refused_by_name() -> None:
    rng = np.random.default_rng(0)
    graph = _graph(rng, 3, 2, "lif")
    graph.nodes["neuron"].v_leak[:] = 0.5
    with pytest.raises(GraphError, match=r"'neuron'.*v_leak"):
        Network(from_nir(graph), make_profile("sinabs", dt_s=1e-3))
