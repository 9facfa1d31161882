"""ALIF, the adaptive leaky integrate-and-fire neuron, as a first-class node (a NIR extension).

The ODE (continuous time; Bellec et al. 2018, Yin et al. 2021)::

    τ_mem · dv/dt = (v_leak − v) + r·I
    τ_adp · da/dt = −a
    θ(t) = v_threshold + beta · a          (v_threshold is b0)
    z = H(v − θ);  on a spike: v ← v_reset,  a ← a + adapt_jump

On a time grid (``models.profiles``) ``v`` follows the profile's LIF step and
``a`` decays by ``rho = exp(−dt/τ_adp)`` (``exact``, ``sinabs``) or
``1 − dt/τ_adp`` (Euler profiles). Per step, in this order::

    a ← rho·a
    v ← beta_v·v + gain_v·x + leak            (the profile's LIF coefficients)
    θ = v_threshold + beta·a
    z = [v > θ]  ([v ≥ θ] where the profile says so)
    reset: v ← v_reset (zero) or v ← v − θ (subtract);  a ← a + adapt_jump·z

Yin et al.'s adaptation (``b_t = ρ·b_{t−1} + (1 − ρ)·z_{t−1}``,
``B = b0 + β·b``) is this one with ``adapt_jump = (1 − ρ)/ρ`` (here the jump
lands at the spike and decays with the next step); their membrane differs in
two details: the input enters as ``(1 − α)·R·x`` and a reset subtracts the
*next* step's threshold ``B_t``.

NIR has no such node: it is written as a node of type ``"ALIF"`` (see
docs/nir-extensions.md) that readers without this extension refuse by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import nir
import numpy as np

from .graph import (
    GraphError,
    Kind,
    Layer,
    LIFParams,
    _declared_shape,
    _neuron_shape,
    as_param,
    register_kind,
)
from .kernels.alif import advance_alif
from .kernels.neuron import N_ACTIVE, N_FLAGS, N_HEAP, heap_capacity, next_wake
from .profiles import (
    RESET_SUBTRACT,
    RESET_ZERO,
    NeuronCoefficients,
    Profile,
    neuron_coefficients,
)
from .signal import Signal
from .stages import Stage, register_stage

EXTENSION = "spikegate.alif/1"
"""Value of ``metadata["extension"]`` on every ALIF node this project writes."""

_FIELDS = ("tau_mem", "tau_adp", "r", "v_leak", "v_threshold", "beta", "v_reset", "adapt_jump")


@dataclass(eq=False)
class ALIF(nir.NIRNode):
    """Adaptive LIF node (a spikegate NIR extension; ODE in the module docstring)."""

    tau_mem: np.ndarray
    tau_adp: np.ndarray
    r: np.ndarray
    v_leak: np.ndarray
    v_threshold: np.ndarray
    beta: np.ndarray
    v_reset: np.ndarray = field(default_factory=lambda: np.zeros(1))
    adapt_jump: np.ndarray = field(default_factory=lambda: np.ones(1))

    def __post_init__(self) -> None:
        for name in _FIELDS:
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        shape = np.broadcast_shapes(*(getattr(self, f).shape for f in _FIELDS))
        shape = shape if shape != () else (1,)
        self.input_type = {"input": np.array(shape)}
        self.output_type = {"output": np.array(shape)}
        metadata: dict[str, Any] = dict(getattr(self, "metadata", None) or {})
        self.metadata = {**metadata, "extension": EXTENSION}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: np.asarray(getattr(self, name)) for name in _FIELDS}
        out["type"] = "ALIF"
        out["metadata"] = dict(self.metadata)
        return out

    @classmethod
    def from_dict(cls, kwargs: dict[str, Any]) -> ALIF:
        data = dict(kwargs)
        data.pop("type", None)
        data.pop("input_type", None)
        data.pop("output_type", None)
        missing = [f for f in _FIELDS[:6] if f not in data]
        if missing:
            raise GraphError(f"ALIF node: missing field(s) {', '.join(missing)}")
        unknown = set(data) - set(_FIELDS) - {"metadata"}
        if unknown:
            raise GraphError(f"ALIF node: unknown field(s) {', '.join(sorted(unknown))}")
        metadata = data.pop("metadata", {}) or {}
        return cls(**data, metadata=dict(metadata))


@dataclass(frozen=True)
class ALIFParams:
    """ALIF parameters, each broadcast to the layer's shape (float64, read-only)."""

    tau_mem: np.ndarray
    tau_adp: np.ndarray
    r: np.ndarray
    v_leak: np.ndarray
    v_threshold: np.ndarray
    beta: np.ndarray
    v_reset: np.ndarray
    adapt_jump: np.ndarray


def _read_alif(name: str, node: Any) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
    raw = {}
    for f in _FIELDS:
        value = getattr(node, f, None)
        if value is None:
            raise GraphError(f"node {name!r} (ALIF): missing field {f!r}")
        raw[f] = as_param(name, f, value, allow_inf=f in ("tau_mem", "tau_adp", "v_threshold"))
    shape = _neuron_shape(name, node, raw)
    declared = _declared_shape(node, "input_type")
    if declared is not None and int(np.prod(declared)) != int(np.prod(shape)):
        raise GraphError(f"node {name!r}: input_type {declared} does not match parameters {shape}")
    full: dict[str, np.ndarray] = {}
    for f, arr in raw.items():
        if arr.size not in (1, int(np.prod(shape))):
            raise GraphError(f"node {name!r}: field {f!r} has {arr.size} values, the layer {shape}")
        b = np.array(np.broadcast_to(arr.reshape(()) if arr.size == 1 else arr.reshape(shape),
                                     shape), dtype=np.float64)
        b.setflags(write=False)
        full[f] = b
    for f in ("tau_mem", "tau_adp"):
        if not (full[f] > 0).all():
            raise GraphError(f"node {name!r}: field {f!r} must be > 0")
    for f in ("beta", "adapt_jump"):
        if (full[f] < 0).any():
            raise GraphError(f"node {name!r}: field {f!r} must be ≥ 0 (a raises the threshold)")
    return ALIFParams(**full), shape, shape


def _write_alif(layer: Layer) -> Any:
    p: ALIFParams = layer.params
    return ALIF(**{f: np.array(getattr(p, f)) for f in _FIELDS})


register_kind(Kind("alif", ALIF, _read_alif, _write_alif, is_neuron=True))


@dataclass(frozen=True)
class ALIFCoefficients:
    """The LIF coefficients of the membrane plus the adaptation's, flat per neuron."""

    lif: NeuronCoefficients
    rho: np.ndarray
    beta_adapt: np.ndarray
    adapt_jump: np.ndarray

    @property
    def spiking(self) -> bool:
        """ALIF layers output spikes (what ``Network`` asks of a layer's coefficients)."""
        return True

    @property
    def threshold(self) -> np.ndarray:
        """The base threshold b0 (what state-precision tools scale from)."""
        return self.lif.threshold


def alif_coefficients(layer: Layer, profile: Profile) -> ALIFCoefficients:
    """Per-step coefficients of an ALIF layer under ``profile`` (see the module docstring)."""
    p: ALIFParams = layer.params
    if profile.integration == "euler" and (profile.dt_s > p.tau_adp).any():
        raise GraphError(
            f"node {layer.name!r}: dt = {profile.dt_s:g} s exceeds tau_adp = "
            f"{float(p.tau_adp.min()):g} s; the Euler step is unstable"
        )
    # the membrane is a LIF: reuse the profile's LIF coefficients (Sinabs' importer does
    # not read this extension, so its LIF convention does not apply: exact exponentials)
    lif_params = LIFParams(tau=p.tau_mem, r=p.r, v_leak=p.v_leak, v_threshold=p.v_threshold,
                           v_reset=p.v_reset)
    lif = neuron_coefficients(dataclasses.replace(layer, kind="lif", params=lif_params),
                              dataclasses.replace(profile, leaky_in_steps=False))
    tau_adp = np.asarray(p.tau_adp, dtype=np.float64).reshape(-1)
    if profile.integration == "exact":
        rho = np.exp(-profile.dt_s / tau_adp)
    else:
        rho = 1.0 - profile.dt_s / tau_adp
    arrays = [np.ascontiguousarray(np.broadcast_to(a, (layer.output_size,)), dtype=np.float64)
              for a in (rho, np.asarray(p.beta).reshape(-1), np.asarray(p.adapt_jump).reshape(-1))]
    for a in arrays:
        a.setflags(write=False)
    return ALIFCoefficients(lif, *arrays)


class ALIFStage(Stage):
    """Run-time ALIF layer: state (v, a) in flat arrays, stepped by ``kernels.alif``."""

    kinds = ("alif",)
    absorbs_constant = True

    def __init__(self, layer: Layer, profile: Profile) -> None:
        super().__init__(layer, profile)
        self.coef = alif_coefficients(layer, profile)
        n = self.size
        self.bias = np.zeros(n)
        self.bias_rec = np.zeros(n)
        self.rec_start = 0
        self.v = np.zeros(n)
        self.a = np.zeros(n)
        # no synaptic current: ``i`` stays zero; it is here for the tools that round a
        # neuron layer's (v, i) to a precision (models.weights), which leave ``a`` float64
        self.i = np.zeros(n)
        self.last = np.full(n, -1, dtype=np.int64)
        self.due = np.zeros(n, dtype=np.int64)
        self.flags = np.zeros(N_FLAGS, dtype=np.int64)  # due-list and heap sizes
        self.wake = np.full(n, -1, dtype=np.int64)
        self.sched = np.zeros((2, heap_capacity(n)), dtype=np.int64)
        self.acc = np.zeros(n)
        self.mark = np.zeros(n, dtype=np.uint8)
        self.cand = np.zeros(n, dtype=np.int64)
        self.counters = np.zeros(1, dtype=np.int64)
        self.always = np.zeros(n, dtype=np.uint8)
        self._update_always()
        self.reset_state()

    def set_drive(self, bias: np.ndarray, bias_rec: np.ndarray, rec_start: int) -> None:
        self.bias = np.ascontiguousarray(bias, dtype=np.float64).reshape(-1)
        self.bias_rec = np.ascontiguousarray(bias_rec, dtype=np.float64).reshape(-1)
        self.rec_start = int(rec_start)
        self._update_always()
        self.reset_state()

    def _update_always(self) -> None:
        lif = self.coef.lif
        always = (self.bias != 0) | (self.bias_rec != 0) | (lif.leak != 0) | (lif.threshold <= 0)
        self.always = always.astype(np.uint8)

    def reset_state(self) -> None:
        super().reset_state()
        for arr in (self.v, self.a, self.acc):
            arr[:] = 0.0
        self.mark[:] = 0
        self.last[:] = -1
        self.counters[0] = 0
        always = np.flatnonzero(self.always)
        self.due[: always.size] = always
        self.flags[N_ACTIVE] = always.size
        self.wake[:] = -1
        self.flags[N_HEAP] = 0

    def quiet(self) -> bool:
        """Nobody due at the next step (wake-ups scheduled later: ``next_wake``)."""
        return int(self.flags[N_ACTIVE]) == 0

    def next_wake(self) -> int | None:
        w = int(next_wake(self.sched, self.flags, self.wake))
        return None if w < 0 else w

    def reschedule(self) -> None:
        """After the state was changed from outside: every scheduled neuron becomes due."""
        na = int(self.flags[N_ACTIVE])
        due = np.union1d(self.due[:na], np.flatnonzero(self.wake >= 0))
        self.due[: due.size] = due
        self.flags[N_ACTIVE] = due.size
        self.wake[:] = -1
        self.flags[N_HEAP] = 0

    def advance(self, k0: int, k1: int, inp: Signal) -> Signal:
        c = self.coef
        lif = c.lif
        reset_code = RESET_ZERO if lif.reset_code == RESET_ZERO else RESET_SUBTRACT
        cap = max(2 * self.size, 2 * len(inp), 1024)
        parts: list[Signal] = []
        k, pos = k0, 0
        before = int(self.counters[0])
        while k < k1:
            out = Signal(np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap))
            n_out, k, pos = advance_alif(
                k, k1, inp.step, inp.idx, inp.val, pos, self.bias, self.bias_rec,
                self.rec_start, c.rho, c.beta_adapt, c.adapt_jump, lif.beta, lif.gain_v,
                lif.leak, lif.threshold, lif.v_reset, reset_code, lif.spike_at_threshold,
                self.always, self.v, self.a, self.last, self.due, self.flags, self.wake,
                self.sched, self.acc, self.mark, self.cand, out.step, out.idx, out.val,
                self.counters,
            )
            parts.append(Signal(out.step[:n_out], out.idx[:n_out], out.val[:n_out]))
            cap *= 2
        self.updates += int(self.counters[0]) - before
        if len(parts) == 1:
            return parts[0]
        return Signal(*(np.concatenate([getattr(p, f) for p in parts]) for f in Signal._fields))


register_stage(ALIFStage)
