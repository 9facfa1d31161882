"""Profiles: the discretisations are what they claim (exact exponentials, Euler)."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from spikegate.models.graph import GraphError, from_nir
from spikegate.models.network import Network
from spikegate.models.profiles import make_profile, neuron_coefficients

TAU_SYN, TAU_MEM, R, W_IN, V_LEAK = 3e-3, 10e-3, 2.0, 1.5, 0.25


def cuba_li_graph() -> nir.NIRGraph:
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([1])}),
            "li": nir.CubaLI(tau_syn=np.array([TAU_SYN]), tau_mem=np.array([TAU_MEM]),
                             r=np.array([R]), v_leak=np.array([V_LEAK]), w_in=np.array([W_IN])),
            "output": nir.Output(output_type={"output": np.array([1])}),
        },
        edges=[("input", "li"), ("li", "output")],
        type_check=False,
    )


def expm2(a: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eig(a)
    return (vecs @ np.diag(np.exp(vals)) @ np.linalg.inv(vecs)).real


def test_exact_profile_is_the_ode_solution_with_held_input():
    """v of a CubaLI under `exact` equals the matrix-exponential solution of its ODE."""
    dt = 1e-3
    x = np.zeros((30, 1))
    x[0, 0] = x[7, 0] = 2.0
    net = Network(from_nir(cuba_li_graph()), make_profile("exact", dt))
    got = net.run(x)["output"][:, 0]
    # state s = (I, v - v_leak): ds/dt = A s + B x
    a = np.array([[-1 / TAU_SYN, 0.0], [R / TAU_MEM, -1 / TAU_MEM]])
    b = np.array([W_IN / TAU_SYN, 0.0])
    prop = expm2(a * dt)
    drive = np.linalg.solve(a, (prop - np.eye(2)) @ b)
    s = np.zeros(2)
    s[1] = -V_LEAK  # v starts at 0
    want = []
    for k in range(len(x)):
        s = prop @ s + drive * x[k, 0]
        want.append(s[1] + V_LEAK)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_euler_coefficients_are_the_snntorch_convention():
    layer = from_nir(cuba_li_graph()).layer("li")
    c = neuron_coefficients(layer, make_profile("norse", 1e-3))
    assert c.alpha[0] == pytest.approx(1 - 1e-3 / TAU_SYN)
    assert c.beta[0] == pytest.approx(1 - 1e-3 / TAU_MEM)
    assert c.gain_syn[0] == pytest.approx(1e-3 / TAU_SYN * W_IN)
    assert c.gain_v[0] == pytest.approx(1e-3 / TAU_MEM * R)
    assert c.leak[0] == pytest.approx(1e-3 / TAU_MEM * V_LEAK)


def test_unstable_euler_step_is_refused_by_name():
    with pytest.raises(GraphError, match=r"node 'li': dt = 0\.005 s exceeds tau_syn"):
        Network(from_nir(cuba_li_graph()), make_profile("snntorch", 5e-3))


def test_profile_arguments_are_checked():
    with pytest.raises(ValueError, match="unknown profile"):
        make_profile("brian")
    with pytest.raises(ValueError, match="unknown reset"):
        make_profile("norse", reset="halve")
    assert make_profile("snntorch", reset="subtract").reset == "subtract_snntorch"
    assert make_profile("norse", reset="subtract").reset == "subtract"
