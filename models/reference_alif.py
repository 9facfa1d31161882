"""Clock-driven reference of the ALIF neuron: every neuron, every step, plain numpy.

The oracle for ``kernels.alif.advance_alif``; the step is written out in
``models.alif``'s docstring and uses the same coefficients, in the same order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .alif import ALIFCoefficients, alif_coefficients
from .graph import Layer
from .profiles import RESET_ZERO, Profile
from .reference import register_reference


def run_alif(
    x: np.ndarray, coeffs: ALIFCoefficients, bias: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step an ALIF layer over input currents ``x (T, n)`` from rest (v = a = 0).

    Returns ``(spikes (T, n), v (T, n), a (T, n))``, the state after each step.
    """
    lif = coeffs.lif
    n_steps, n = x.shape
    v = np.zeros(n)
    a = np.zeros(n)
    drive = np.zeros(n) if bias is None else np.asarray(bias, dtype=np.float64)
    spikes = np.zeros((n_steps, n))
    vs = np.zeros((n_steps, n))
    as_ = np.zeros((n_steps, n))
    for k in range(n_steps):
        a = coeffs.rho * a
        v = lif.beta * v + lif.gain_v * (x[k] + drive) + lif.leak
        theta = lif.threshold + coeffs.beta_adapt * a
        z = (v >= theta) if lif.spike_at_threshold else (v > theta)
        if lif.reset_code == RESET_ZERO:
            v = np.where(z, lif.v_reset, v)
        else:
            v = np.where(z, v - theta, v)
        a = np.where(z, a + coeffs.adapt_jump, a)
        spikes[k] = z
        vs[k] = v
        as_[k] = a
    return spikes, vs, as_


@register_reference("alif")
def alif_step(layer: Layer, profile: Profile, state: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """One clock step of an ALIF layer for ``models.reference.run_reference``."""
    c = state.get("coef")
    if c is None:
        c = state["coef"] = alif_coefficients(layer, profile)
        state["v"] = np.zeros(x.size)
        state["a"] = np.zeros(x.size)
    lif = c.lif
    a = c.rho * state["a"]
    v = lif.beta * state["v"] + lif.gain_v * x + lif.leak
    theta = lif.threshold + c.beta_adapt * a
    z = (v >= theta) if lif.spike_at_threshold else (v > theta)
    v = np.where(z, lif.v_reset if lif.reset_code == RESET_ZERO else v - theta, v)
    state["v"] = v
    state["a"] = np.where(z, a + c.adapt_jump, a)
    return z.astype(np.float64)
