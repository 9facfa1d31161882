"""The weight layers of a running core, with their float originals: what precision and
pruning change.

A ``WeightBank`` finds every layer with synaptic weights in a core — a
``Network``'s dense (``weight_t``) and convolution (``weight``) stages, or the
demo ``TrackerNetwork``'s ``w`` — keeps a float64 copy of each as loaded, and
writes the *effective* weights back into the array the kernels read:

    effective = dequantise(quantise(original × mask, precision))

so pruning (``mask``, models/pruning.py) and precision (models/precision.py)
compose, and setting float32 with no mask restores the original exactly (up
to the storage dtype the stage already used). The bank also keeps the
quantised *stored form* (int8 codes + one scale per layer, float16 values):
that is what ``memory_bytes`` counts. The kernels themselves still run on
the stage's float array, so the process's RAM does not shrink; the saving is
the one a fixed-point accelerator or an exported model would get.

Not thread-safe: call it from the thread that owns the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

PRECISIONS: tuple[str, ...] = ("float32", "float16", "int16", "int8")
BYTES_PER_WEIGHT = {"float64": 8, "float32": 4, "float16": 2, "int16": 2, "int8": 1}


class KnobError(ValueError):
    """A precision or sparsity a layer cannot take, as a sentence naming the layer."""


@dataclass
class WeightLayer:
    """One layer's weights: where they live in the core, the original, the current form."""

    name: str
    owner: Any
    attr: str
    original: np.ndarray  # float64, the shape of the live array
    fan_in_axis: int | None  # the input axis of a dense matrix (None: a conv kernel)
    precision: str = "float32"
    mask: np.ndarray | None = None  # bool, True = synapse kept
    stored: np.ndarray | None = None  # the quantised codes / values
    scale: float = 1.0

    @property
    def live(self) -> np.ndarray:
        arr: np.ndarray = getattr(self.owner, self.attr)
        return arr

    @property
    def size(self) -> int:
        return int(self.original.size)

    @property
    def n_kept(self) -> int:
        return self.size if self.mask is None else int(np.count_nonzero(self.mask))

    def memory_bytes(self) -> int:
        """Bytes of the stored form: the kept weights at this precision, plus the scale
        (and, when pruned, a CSR index of 4 bytes per kept weight and per row)."""
        per = BYTES_PER_WEIGHT[self.precision]
        scale = 8 if self.precision.startswith("int") else 0
        if self.mask is None:
            return self.size * per + scale
        rows = self.original.shape[0] if self.original.ndim == 2 else 1
        return self.n_kept * (per + 4) + 4 * (rows + 1) + scale


@dataclass
class StateLayer:
    """One neuron layer's state arrays (``v``, and ``i`` where it has a synaptic current)
    and the precision they are rounded to after every core call.

    Fixed point uses one scale per layer from its threshold: the codes span
    ±4 θ (v saturates there), ``scale = 4 θ / (2^(b-1) − 1)``.
    """

    name: str
    owner: Any
    attrs: tuple[str, ...]
    size: int
    threshold: float
    precision: str = "float32"

    @property
    def scale(self) -> float:
        from .precision import _INT_BITS

        bits = _INT_BITS.get(self.precision, 16)
        return 4.0 * self.threshold / (2 ** (bits - 1) - 1)

    def memory_bytes(self) -> int:
        return self.size * len(self.attrs) * BYTES_PER_WEIGHT[self.precision]

    def arrays(self) -> list[np.ndarray]:
        """The state arrays the kernel reads now: rows of a packed ``fstate`` when the
        stage keeps one (its ``v``/``i`` attributes are views that a copy unties)."""
        packed = getattr(self.owner, "fstate", None)
        if isinstance(packed, np.ndarray) and packed.ndim == 2:
            return [packed[k] for k in range(len(self.attrs))]
        return [getattr(self.owner, attr) for attr in self.attrs]


@dataclass
class WeightBank:
    """Every weight layer (and neuron state) of ``core`` by name, in the core's order."""

    core: Any
    layers: dict[str, WeightLayer] = field(default_factory=dict)
    states: dict[str, StateLayer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.layers:
            self.layers = find_weight_layers(self.core)
        if not self.states:
            self.states = find_state_layers(self.core)

    @property
    def state_rounded(self) -> bool:
        """True when some layer's state is kept below float32 (then call ``round_state``)."""
        return any(s.precision != "float32" for s in self.states.values())

    def round_state(self) -> None:
        """Round every neuron state to its layer's precision (after a core call)."""
        for state in self.states.values():
            if state.precision == "float32":
                continue
            for arr in state.arrays():
                if state.precision == "float16":
                    arr[...] = arr.astype(np.float16)
                else:
                    from .precision import _INT_BITS

                    q_max = 2 ** (_INT_BITS[state.precision] - 1) - 1
                    arr[...] = np.clip(np.rint(arr / state.scale), -q_max, q_max) * state.scale
            reschedule = getattr(state.owner, "reschedule", None)
            if reschedule is not None:  # wake-ups computed from the unrounded state
                reschedule()

    def layer(self, name: str) -> WeightLayer:
        try:
            return self.layers[name]
        except KeyError:
            known = ", ".join(self.layers) or "none"
            raise KnobError(f"no weight layer named {name!r} (weight layers: {known})") from None

    def refresh(self, layer: WeightLayer) -> None:
        """Write ``layer``'s effective weights into the array its kernel reads."""
        from .precision import dequantise, quantise  # the one dependency the other way

        w = layer.original if layer.mask is None else layer.original * layer.mask
        if layer.precision == "float32" and layer.mask is None:
            layer.stored, layer.scale = None, 1.0
            effective = layer.original
        else:
            layer.stored, layer.scale = quantise(w, layer.precision, layer.name)
            effective = dequantise(layer.stored, layer.scale)
        live = layer.live
        if not live.flags.writeable:  # a stage may hold a read-only view of the graph's array
            live = live.copy()
            setattr(layer.owner, layer.attr, live)
        live[...] = effective.reshape(live.shape).astype(live.dtype, copy=False)
        hook = getattr(layer.owner, "weights_changed", None)
        if callable(hook):
            hook()

    def memory_bytes(self) -> dict[str, int]:
        """Stored-form bytes per weight layer."""
        return {name: layer.memory_bytes() for name, layer in self.layers.items()}

    def state_bytes(self) -> dict[str, int]:
        """Bytes of neuron state per layer at its precision."""
        return {name: state.memory_bytes() for name, state in self.states.items()}

    def float32_bytes(self) -> int:
        return sum(layer.size * 4 for layer in self.layers.values())


def bank_of(core: Any) -> WeightBank:
    """The core's ``WeightBank``, made on first use and kept on the core (as
    ``core.weight_bank``) so the float originals travel with it, copies included."""
    bank = getattr(core, "weight_bank", None)
    if not isinstance(bank, WeightBank):
        bank = WeightBank(core)
        core.weight_bank = bank
    return bank


def find_state_layers(core: Any) -> dict[str, StateLayer]:
    """The neuron layers of a ``Network`` (stages with coefficients) or of the tracker."""
    found: dict[str, StateLayer] = {}
    stages = getattr(core, "stages", None)
    if isinstance(stages, dict):
        for name, stage in stages.items():
            coef = getattr(stage, "coef", None)
            if coef is None or not isinstance(getattr(stage, "v", None), np.ndarray):
                continue
            finite = np.abs(coef.threshold[np.isfinite(coef.threshold)])
            theta = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
            found[name] = StateLayer(name, stage, ("v", "i"), int(stage.v.size), theta)
    elif isinstance(getattr(core, "v", None), np.ndarray):
        found["tracker_state"] = StateLayer("tracker_state", core, ("v",), int(core.v.size),
                                            float(getattr(core, "v_th", 1.0)))
    return found


def find_weight_layers(core: Any) -> dict[str, WeightLayer]:
    """The weight layers of a ``Network`` (dense and conv stages) or of the demo tracker."""
    found: dict[str, WeightLayer] = {}
    stages = getattr(core, "stages", None)
    if isinstance(stages, dict):
        for name, stage in stages.items():
            for attr, axis in (("weight_t", 0), ("weight", None)):
                arr = getattr(stage, attr, None)
                if isinstance(arr, np.ndarray) and arr.dtype.kind == "f":
                    found[name] = WeightLayer(name, stage, attr,
                                              np.array(arr, dtype=np.float64), axis)
                    break
    elif isinstance(getattr(core, "w", None), np.ndarray):
        found["tracker"] = WeightLayer("tracker", core, "w", np.array(core.w, np.float64), 0)
    return found
