"""Semantics profiles: what a NIR graph's continuous ODEs mean on a time grid.

NIR stores ODEs without a dt. Each framework that trains these graphs reads
them differently; a model is loaded with one explicit ``Profile``:

- ``snntorch`` and ``norse``: forward Euler, as snnTorch writes and both read
  NIR (β = 1 − dt/τ_mem, α = 1 − dt/τ_syn). Per step, for a CubaLIF::

      I ← α·I + (dt/τ_syn)·w_in·x        (= α·I + x when w_in = τ_syn/dt)
      v ← β·v + (dt/τ_mem)·(v_leak + r·I) (= β·v + I when r = τ_mem/dt)
      z = [v > θ];  reset

  LIF / LI are the same with I = x (no synapse). IF and Integrator add r·x
  (v ← v + r·x: no dt, as every framework reads NIR's IF). Threshold is
  z = [x > θ]. The two differ in one rule: Norse (through nirtorch) skips a
  recurrent edge at step 0, so that edge's bias is first added at step 1;
  snnTorch adds it from step 0.
- ``sinabs``: what Sinabs' NIR importer builds. IF is Sinabs' integrate-and-
  fire: several spikes per step (⌊v/θ⌋ when v ≥ θ), subtractive reset, lower
  bound v ≥ −θ. LIF and LI are Sinabs' leaky layers as imported from NIR
  (``LIFSqueeze`` / ``ExpLeakSqueeze``, ``norm_input=False``): τ counts time
  steps, as Sinabs exports it (β = e^(−1/τ), whatever dt), the input is added
  as is (v ← β·v + x), LIF spikes like IF (⌊v/θ⌋, subtract) with no lower
  bound; Sinabs has no v_leak there and ignores r, so a graph with v_leak ≠ 0
  or r ≠ 1 is refused. Other neurons use the exact exponentials of ``exact``.
- ``exact``: the ODEs integrated exactly over each step (exact exponentials,
  and for CubaLIF the exact synapse → membrane propagator), the input of a
  step held constant through it (a count of 1 is an input current of 1 for
  dt; e.g. LIF: v ← e^(−dt/τ)·v + (1 − e^(−dt/τ))·(v_leak + r·x), as the
  NIR paper's exact LIF trace). Threshold crossings are tested on the dt
  grid: a crossing between grid points is reported at the next grid point (at
  most dt late); choose a fine ``dt_s`` for finer timing.

Reset rules: ``zero`` (v ← v_reset, NIR's rule), ``subtract`` (v ← v − θ per
spike), ``subtract_snntorch`` (snnTorch's ``reset_delay=False`` rule:
r = [v_prev > θ] from the stored, already-reset v; v ← β·v + I − r·θ;
z = [v > θ]; v ← v − (z − r)·θ). ``--reset subtract`` in the snntorch profile
means snnTorch's rule.

The per-neuron coefficients below are shared by the event-driven kernels and
the clock-driven reference, so both compute the same floating-point steps::

    i_new = alpha·i + gain_syn·x
    v_new = beta·v + gain_v_old·i + gain_v·i_new + gain_x·x + leak
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .graph import GraphError, Layer

RESET_ZERO = 0
RESET_SUBTRACT = 1
RESET_SUBTRACT_SNNTORCH = 2
RESET_CODES = {"zero": RESET_ZERO, "subtract": RESET_SUBTRACT,
               "subtract_snntorch": RESET_SUBTRACT_SNNTORCH}


@dataclass(frozen=True)
class Profile:
    """How to discretise a graph: dt, integration, reset and first-step rules."""

    name: str
    dt_s: float
    integration: str  # "euler" or "exact"
    reset: str  # a key of RESET_CODES
    recurrent_bias_first_step: bool  # is a recurrent edge's bias added at step 0?
    if_multi_spike: bool = False  # Sinabs: IF emits ⌊v/θ⌋ spikes, subtract reset, v ≥ −θ
    leaky_in_steps: bool = False  # Sinabs: LIF/LI τ in steps, v ← e^(−1/τ)·v + x, LIF multi-spike
    spike_at_threshold: bool = False  # z = [v ≥ θ] instead of [v > θ]

    @property
    def dt_us(self) -> int:
        return round(self.dt_s * 1e6)

    @property
    def reset_code(self) -> int:
        return RESET_CODES[self.reset]


_DEFAULTS: dict[str, Profile] = {
    "exact": Profile("exact", 1e-4, "exact", "zero", True),
    "snntorch": Profile("snntorch", 1e-3, "euler", "zero", True),
    "norse": Profile("norse", 1e-3, "euler", "zero", False),
    "sinabs": Profile("sinabs", 1e-3, "exact", "zero", True, if_multi_spike=True,
                      spike_at_threshold=True, leaky_in_steps=True),
}
PROFILE_NAMES: tuple[str, ...] = tuple(_DEFAULTS)


def make_profile(name: str, dt_s: float | None = None, reset: str | None = None) -> Profile:
    """The named profile, with an optional dt (seconds) and reset rule override.

    ``reset="subtract"`` in the snntorch profile selects snnTorch's own
    subtract rule (``subtract_snntorch``); name that or ``subtract`` explicitly
    through ``dataclasses.replace`` for the other.
    """
    if name not in _DEFAULTS:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILE_NAMES)}")
    profile = _DEFAULTS[name]
    if dt_s is not None:
        if not (np.isfinite(dt_s) and dt_s > 0):
            raise ValueError(f"dt must be a positive number of seconds, got {dt_s!r}")
        profile = dataclasses.replace(profile, dt_s=float(dt_s))
    if reset is not None:
        if reset == "subtract" and name == "snntorch":
            reset = "subtract_snntorch"
        if reset not in RESET_CODES:
            raise ValueError(f"unknown reset rule {reset!r}; known: zero, subtract")
        profile = dataclasses.replace(profile, reset=reset)
    return profile


@dataclass(frozen=True)
class NeuronCoefficients:
    """Flat float64 arrays (one value per neuron) for one step of a neuron layer."""

    alpha: np.ndarray
    gain_syn: np.ndarray
    beta: np.ndarray
    gain_v_old: np.ndarray
    gain_v: np.ndarray
    gain_x: np.ndarray
    leak: np.ndarray
    threshold: np.ndarray  # +inf: never spikes
    v_reset: np.ndarray
    v_min: np.ndarray  # -inf: unbounded
    spiking: bool  # False: the layer outputs v (LI, CubaLI, Integrator)
    multi_spike: bool
    reset_code: int
    spike_at_threshold: bool


def _euler_factor(layer: Layer, field: str, tau: np.ndarray, dt_s: float) -> np.ndarray:
    k = dt_s / tau
    if (k > 1).any():
        raise GraphError(
            f"node {layer.name!r}: dt = {dt_s:g} s exceeds {field} = {float(tau.min()):g} s; "
            "the Euler step is unstable (use a smaller dt or the exact profile)"
        )
    return k


def neuron_coefficients(layer: Layer, profile: Profile) -> NeuronCoefficients:
    """The per-step coefficients of a neuron layer under ``profile``."""
    p = layer.params
    n = layer.output_size
    dt = profile.dt_s
    zeros = np.zeros(n)
    ones = np.ones(n)
    exact = profile.integration == "exact"

    def flat(a: np.ndarray) -> np.ndarray:
        return np.array(a, dtype=np.float64).reshape(-1)

    alpha, gain_syn, gain_v_old, gain_x = zeros, ones, zeros, zeros
    threshold = np.full(n, np.inf)
    v_reset = zeros
    v_min = np.full(n, -np.inf)
    spiking = True
    multi = False
    reset_code = profile.reset_code
    kind = layer.kind
    if kind == "threshold":
        beta, gain_v, leak = zeros, ones, zeros
        threshold = flat(p.threshold)
        reset_code = RESET_ZERO
    elif kind in ("if", "integrator"):
        beta, gain_v, leak = ones, flat(p.r), zeros
        if kind == "if":
            threshold, v_reset = flat(p.v_threshold), flat(p.v_reset)
            if profile.if_multi_spike:
                multi = True
                reset_code = RESET_SUBTRACT
                v_min = -threshold
        else:
            spiking = False
    elif kind in ("li", "lif") and profile.leaky_in_steps:
        tau = flat(p.tau)
        for field, value, want in (("v_leak", flat(p.v_leak), 0.0), ("r", flat(p.r), 1.0)):
            if np.any(value != want):
                raise GraphError(
                    f"node {layer.name!r}: the {profile.name} profile reads {kind.upper()} as "
                    f"Sinabs does, which has no {field} (it must be {want:g} everywhere)")
        if not (tau > 0).all():
            raise GraphError(f"node {layer.name!r}: tau must be > 0 (time steps)")
        beta, gain_v, leak = np.exp(-1.0 / tau), ones, zeros
        if kind == "lif":
            threshold, v_reset = flat(p.v_threshold), zeros
            multi = True
            reset_code = RESET_SUBTRACT
        else:
            spiking = False
    elif kind in ("li", "lif"):
        tau = flat(p.tau)
        if exact:
            beta = np.exp(-dt / tau)
            k = 1.0 - beta
            leak = flat(p.v_leak) * (1.0 - beta)
        else:
            k = _euler_factor(layer, "tau", tau, dt)
            beta = 1.0 - k
            leak = k * flat(p.v_leak)
        gain_v = k * flat(p.r)
        if kind == "lif":
            threshold, v_reset = flat(p.v_threshold), flat(p.v_reset)
        else:
            spiking = False
    elif kind in ("cuba_li", "cuba_lif"):
        tau_s, tau_m = flat(p.tau_syn), flat(p.tau_mem)
        r, w_in = flat(p.r), flat(p.w_in)
        if exact:
            alpha = np.exp(-dt / tau_s)
            beta = np.exp(-dt / tau_m)
            # exact propagator with the step's input held: i* = w_in·x, u* = r·i*
            gain_syn = w_in * (1.0 - alpha)
            same = np.isclose(tau_s, tau_m, rtol=1e-9, atol=0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                coupled = r * tau_s * (alpha - beta) / (tau_s - tau_m)
            gain_v_old = np.where(same, r * (dt / tau_m) * beta, coupled)
            gain_x = w_in * (r * (1.0 - beta) - gain_v_old)
            gain_v = zeros
            leak = flat(p.v_leak) * (1.0 - beta)
        else:
            ks = _euler_factor(layer, "tau_syn", tau_s, dt)
            km = _euler_factor(layer, "tau_mem", tau_m, dt)
            alpha, beta = 1.0 - ks, 1.0 - km
            gain_syn = ks * w_in
            gain_v = km * r
            leak = km * flat(p.v_leak)
        if kind == "cuba_lif":
            threshold, v_reset = flat(p.v_threshold), flat(p.v_reset)
        else:
            spiking = False
    else:
        raise GraphError(f"node {layer.name!r}: kind {kind!r} is not a neuron")
    if multi and not (threshold > 0).all():
        raise GraphError(f"node {layer.name!r}: a multi-spike neuron needs v_threshold > 0")
    named = {"alpha": alpha, "gain_syn": gain_syn, "beta": beta, "gain_v_old": gain_v_old,
             "gain_v": gain_v, "gain_x": gain_x, "leak": leak, "threshold": threshold,
             "v_reset": v_reset, "v_min": v_min}
    arrays: dict[str, np.ndarray] = {}
    for key, value in named.items():
        arr = np.ascontiguousarray(np.broadcast_to(value, (n,)), dtype=np.float64)
        arr.setflags(write=False)
        arrays[key] = arr
    return NeuronCoefficients(**arrays, spiking=spiking, multi_spike=multi,
                              reset_code=reset_code,
                              spike_at_threshold=profile.spike_at_threshold)


def delay_steps(delay_s: np.ndarray, profile: Profile) -> np.ndarray:
    """Per-element delays in whole steps (rounded to the nearest step)."""
    return np.rint(np.asarray(delay_s, dtype=np.float64).reshape(-1) / profile.dt_s).astype(
        np.int64
    )
