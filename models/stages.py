"""Run-time layers: each owns its state as flat arrays and calls its kernel.

A ``Stage`` advances one layer over steps [k0, k1) given its input ``Signal``
and returns its output ``Signal``. ``STAGES`` maps a graph kind to its stage
class; adding a layer kind is: a kernel module in ``models/kernels``, a
reference function in ``models/reference.py``, and one ``Stage`` subclass
registered here with ``register_stage``.

Constant inputs (biases) never travel as events: ``map_constant`` carries a
constant through linear stages at compile time and neuron stages absorb it
as a per-neuron drive (``bias``, and ``bias_rec`` for what arrives through a
recurrent edge, added from the profile's first recurrent step).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .graph import GraphError, Layer
from .kernels import neuron as kn
from .kernels.dense import dense_into_neurons, scatter_dense
from .profiles import Profile, delay_steps, neuron_coefficients
from .signal import Signal, empty_signal


class Stage:
    """Base run-time layer: a pass-through (Input, Output, Flatten-like)."""

    kinds: ClassVar[tuple[str, ...]] = ("input", "output")
    absorbs_constant: ClassVar[bool] = False

    def __init__(self, layer: Layer, profile: Profile) -> None:
        self.layer = layer
        self.name = layer.name
        self.profile = profile
        self.size = layer.output_size
        self.synops = 0  # cumulative since reset_state
        self.updates = 0

    @staticmethod
    def map_constant(layer: Layer, constant: np.ndarray) -> np.ndarray:
        """The constant output for a constant input (flat arrays)."""
        return constant

    def set_drive(self, bias: np.ndarray, bias_rec: np.ndarray, rec_start: int) -> None:
        """Constant drive folded in from upstream biases (neuron stages only)."""
        if np.any(bias) or np.any(bias_rec):
            raise GraphError(
                f"node {self.name!r} ({self.layer.kind}) receives a constant (bias) input; "
                "the event-driven core needs a neuron layer to absorb it"
            )

    def reset_state(self) -> None:
        self.synops = 0
        self.updates = 0

    def quiet(self) -> bool:
        """True when the stage cannot emit anything at a step without input.

        Stateful (neuron) stages say False unless they know better.
        """
        return not self.absorbs_constant

    def next_wake(self) -> int | None:
        """The earliest later step the stage has scheduled work at without input, if any."""
        return None

    def advance(self, k0: int, k1: int, inp: Signal) -> Signal:
        return inp


class DenseStage(Stage):
    """Affine / Linear: weight rows scattered per input event."""

    kinds = ("affine", "linear")

    def __init__(self, layer: Layer, profile: Profile) -> None:
        super().__init__(layer, profile)
        weight = np.asarray(layer.params.weight, dtype=np.float64)
        weight_t = np.ascontiguousarray(weight.T)
        # float32 storage halves memory traffic and is exact when the values allow it
        as32 = weight_t.astype(np.float32)
        self.weight_t = as32 if np.array_equal(as32.astype(np.float64), weight_t) else weight_t
        self.acc = np.zeros(self.size, dtype=np.float64)
        self.counters = np.zeros(1, dtype=np.int64)

    @staticmethod
    def map_constant(layer: Layer, constant: np.ndarray) -> np.ndarray:
        out = np.asarray(layer.params.weight) @ constant
        if layer.kind == "affine":
            out = out + np.asarray(layer.params.bias)
        return out

    def reset_state(self) -> None:
        super().reset_state()
        self.counters[0] = 0

    def advance(self, k0: int, k1: int, inp: Signal) -> Signal:
        if not len(inp):
            return empty_signal()
        n_steps = int(np.count_nonzero(np.diff(inp.step))) + 1
        cap = n_steps * self.size
        out = Signal(np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.float64))
        before = int(self.counters[0])
        n = self._scatter(inp, out)
        self.synops += int(self.counters[0]) - before
        return Signal(out.step[:n], out.idx[:n], out.val[:n])

    def _scatter(self, inp: Signal, out: Signal) -> int:
        """Scatter the input events through the weights into ``out``; returns the count."""
        return scatter_dense(inp.step, inp.idx, inp.val, self.weight_t, self.acc,
                             out.step, out.idx, out.val, self.counters)


class ScaleStage(Stage):
    """Scale: each event's value times its element's factor."""

    kinds = ("scale",)

    def __init__(self, layer: Layer, profile: Profile) -> None:
        super().__init__(layer, profile)
        self.scale = np.asarray(layer.params.scale, dtype=np.float64).reshape(-1)

    @staticmethod
    def map_constant(layer: Layer, constant: np.ndarray) -> np.ndarray:
        return np.asarray(layer.params.scale).reshape(-1) * constant

    def advance(self, k0: int, k1: int, inp: Signal) -> Signal:
        self.synops += len(inp)
        return Signal(inp.step, inp.idx, inp.val * self.scale[inp.idx])


class DelayStage(Stage):
    """Delay: each element's events re-emitted ``round(delay / dt)`` steps later."""

    kinds = ("delay",)

    def __init__(self, layer: Layer, profile: Profile) -> None:
        super().__init__(layer, profile)
        self.steps = delay_steps(layer.params.delay, profile)
        self.pending = empty_signal()

    @staticmethod
    def map_constant(layer: Layer, constant: np.ndarray) -> np.ndarray:
        if np.any(constant):
            raise GraphError(
                f"node {layer.name!r}: a constant (bias) input through a Delay is not supported"
            )
        return constant

    def reset_state(self) -> None:
        super().reset_state()
        self.pending = empty_signal()

    def quiet(self) -> bool:
        return len(self.pending) == 0

    def advance(self, k0: int, k1: int, inp: Signal) -> Signal:
        shifted = Signal(inp.step + self.steps[inp.idx], inp.idx, inp.val)
        step = np.concatenate([self.pending.step, shifted.step])
        idx = np.concatenate([self.pending.idx, shifted.idx])
        val = np.concatenate([self.pending.val, shifted.val])
        order = np.argsort(step, kind="stable")
        step, idx, val = step[order], idx[order], val[order]
        cut = int(np.searchsorted(step, k1, side="left"))
        self.pending = Signal(step[cut:], idx[cut:], val[cut:])
        return Signal(step[:cut], idx[:cut], val[:cut])


class NeuronStage(Stage):
    """Every neuron kind: one kernel, per-neuron coefficients from the profile.

    State lives in three packed arrays (see ``kernels.neuron``); ``v`` and
    ``i`` are views of it.
    """

    kinds = ("threshold", "if", "li", "lif", "cuba_li", "cuba_lif", "integrator")
    absorbs_constant = True

    def __init__(self, layer: Layer, profile: Profile) -> None:
        super().__init__(layer, profile)
        c = self.coef = neuron_coefficients(layer, profile)
        n = self.size
        self.coef_rows = np.zeros((kn.N_COEF, n))
        for row, values in (
            (kn.ALPHA, c.alpha), (kn.GAIN_SYN, c.gain_syn), (kn.BETA, c.beta),
            (kn.GAIN_V_OLD, c.gain_v_old), (kn.GAIN_V, c.gain_v), (kn.GAIN_X, c.gain_x),
            (kn.LEAK, c.leak), (kn.THRESHOLD, c.threshold), (kn.V_RESET, c.v_reset),
            (kn.V_MIN, c.v_min),
        ):
            self.coef_rows[row] = values
        with np.errstate(divide="ignore"):
            gain = np.abs(c.gain_v_old) + np.abs(c.gain_v)
            self.coef_rows[kn.WAKE_GAIN] = np.where(c.alpha < 1.0, gain / (1.0 - c.alpha), np.inf)
        self.flags = np.zeros(kn.N_FLAGS, dtype=np.int64)
        self.flags[kn.SPIKING] = c.spiking
        self.flags[kn.MULTI] = c.multi_spike
        self.flags[kn.RESET_CODE] = c.reset_code
        self.flags[kn.AT_THRESHOLD] = c.spike_at_threshold
        self.flags[kn.NO_CURRENT] = not (np.any(c.alpha) or np.any(c.gain_v_old)
                                         or np.any(c.gain_x))
        self.fstate = np.zeros((3, n))
        self.istate = np.zeros((kn.N_ISTATE, n), dtype=np.int64)
        self.sched = np.zeros((2, kn.heap_capacity(n)), dtype=np.int64)
        self.bstate = np.zeros((2, n), dtype=np.uint8)
        self.counters = np.zeros(1, dtype=np.int64)
        self._update_always()
        self.reset_state()

    @property
    def v(self) -> np.ndarray:
        """Membrane potentials (a view of the packed state, so copies stay consistent)."""
        return self.fstate[0]

    @property
    def i(self) -> np.ndarray:
        """Synaptic currents (a view of the packed state)."""
        return self.fstate[1]

    @property
    def bias(self) -> np.ndarray:
        return self.coef_rows[kn.BIAS]

    @property
    def bias_rec(self) -> np.ndarray:
        return self.coef_rows[kn.BIAS_REC]

    def set_drive(self, bias: np.ndarray, bias_rec: np.ndarray, rec_start: int) -> None:
        self.coef_rows[kn.BIAS] = np.asarray(bias, dtype=np.float64).reshape(-1)
        self.coef_rows[kn.BIAS_REC] = np.asarray(bias_rec, dtype=np.float64).reshape(-1)
        self.flags[kn.REC_START] = int(rec_start)
        self._update_always()
        self.reset_state()

    def _update_always(self) -> None:
        c = self.coef
        always = (self.bias != 0) | (self.bias_rec != 0) | (c.leak != 0)
        if c.spiking:
            # a neuron at rest (v = 0) that fires or moves without input
            always |= c.threshold <= 0
        self.bstate[1] = always

    def reset_state(self) -> None:
        super().reset_state()
        self.fstate[:] = 0.0
        self.bstate[0] = 0
        self.istate[kn.LAST] = -1
        self.istate[kn.WAKE] = -1
        self.flags[kn.N_HEAP] = 0
        self.counters[0] = 0
        always = np.flatnonzero(self.bstate[1])  # due at step 0: they move without input
        self.istate[kn.DUE, : always.size] = always
        self.flags[kn.N_ACTIVE] = always.size

    def quiet(self) -> bool:
        """Nobody due at the next step (wake-ups scheduled later: ``next_wake``)."""
        return int(self.flags[kn.N_ACTIVE]) == 0

    def next_wake(self) -> int | None:
        """The earliest step a neuron is scheduled to fire at without input, if any."""
        w = int(kn.next_wake(self.sched, self.flags, self.istate[kn.WAKE]))
        return None if w < 0 else w

    def reschedule(self) -> None:
        """After the state was changed from outside (rounded to a precision): every
        scheduled neuron becomes due, so that its trajectory is computed again."""
        wake = self.istate[kn.WAKE]
        na = int(self.flags[kn.N_ACTIVE])
        due = np.union1d(self.istate[kn.DUE, :na], np.flatnonzero(wake >= 0))
        self.istate[kn.DUE, : due.size] = due
        self.flags[kn.N_ACTIVE] = due.size
        wake[:] = -1
        self.flags[kn.N_HEAP] = 0

    def advance(self, k0: int, k1: int, inp: Signal, dense: DenseStage | None = None) -> Signal:
        """Advance over [k0, k1); with ``dense``, ``inp`` is that dense layer's input and
        the two run fused (the dense layer's synops are counted on it)."""
        n = self.size
        cap = max(2 * n, 2 * inp.step.shape[0], 256)
        parts: list[Signal] = []
        k, pos = k0, 0
        before = int(self.counters[0])
        while k < k1:
            o_step, o_idx = np.empty(cap, np.int64), np.empty(cap, np.int64)
            o_val = np.empty(cap, np.float64)
            if dense is None:
                n_out, k, pos = kn.advance_neurons(
                    k, k1, inp.step, inp.idx, inp.val, pos, self.coef_rows, self.flags,
                    self.fstate, self.istate, self.bstate, self.sched, o_step, o_idx, o_val,
                    self.counters,
                )
            else:
                synops0 = int(dense.counters[0])
                n_out, k, pos = dense_into_neurons(
                    k, k1, inp.step, inp.idx, inp.val, pos, dense.weight_t, self.coef_rows,
                    self.flags, self.fstate, self.istate, self.bstate, self.sched, o_step,
                    o_idx, o_val, self.counters, dense.counters,
                )
                dense.synops += int(dense.counters[0]) - synops0
            parts.append(Signal(o_step[:n_out], o_idx[:n_out], o_val[:n_out]))
            cap *= 2
        self.updates += int(self.counters[0]) - before
        if len(parts) <= 1:
            return parts[0] if parts else empty_signal()
        return Signal(*(np.concatenate([getattr(p, f) for p in parts]) for f in Signal._fields))


STAGES: dict[str, type[Stage]] = {}


def register_stage(cls: type[Stage]) -> type[Stage]:
    """Register a stage class for each graph kind it declares in ``kinds``."""
    for kind in cls.kinds:
        STAGES[kind] = cls
    return cls


for _cls in (Stage, DenseStage, ScaleStage, DelayStage, NeuronStage):
    register_stage(_cls)
