"""Precision per layer — weights and neuron state — float32, float16, int16 or int8 fixed
point, switched live.

Fixed point is symmetric with one scale per layer, calibrated from the float
weights: ``scale = max|w| / (2^(b-1) − 1)``, codes ``q = round(w / scale)``
clipped to ``[−(2^(b-1) − 1), 2^(b-1) − 1]``; the kernels then run on
``q · scale`` (see models/weights.py for what that means for memory). float16
rounds each weight to the nearest half-precision value.

Neuron state (``v``, and ``i`` for current-based neurons) is rounded to its
layer's precision after every core call (every packet in the pipeline), not
after every update inside the kernel: the kernels compute in float64 within a
call. Fixed-point state uses a per-layer scale from the threshold (codes span
±4 θ, see ``weights.StateLayer``).

A layer refuses a precision it cannot take (``KnobError``): float16 when a
weight is beyond ±65504, a fixed-point format that would round to zero weights
carrying more than a quarter of the layer's total |w| (its dynamic range is
too wide), and any precision for a name that is not a weight or neuron layer.

``spike_agreement`` measures the effect: the same recent input through a
float32 copy and through a copy at the given precision, compared per output
neuron and time bin.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .weights import PRECISIONS, KnobError, WeightBank, bank_of

__all__ = [
    "PRECISIONS",
    "KnobError",
    "agreement",
    "check_precision",
    "dequantise",
    "output_spikes",
    "quantise",
    "set_precision",
    "spike_agreement",
]

_INT_BITS = {"int8": 8, "int16": 16}
FLOAT16_MAX = float(np.finfo(np.float16).max)


def quantise(w: np.ndarray, precision: str, layer: str = "weights") -> tuple[np.ndarray, float]:
    """The stored form of ``w`` at ``precision`` and its scale (1.0 for floats)."""
    if precision not in PRECISIONS:
        raise KnobError(f"layer {layer!r}: precision {precision!r} is not one of "
                        f"{', '.join(PRECISIONS)}")
    if precision == "float32":
        return w.astype(np.float32), 1.0
    if precision == "float16":
        big = float(np.max(np.abs(w))) if w.size else 0.0
        if big > FLOAT16_MAX:
            raise KnobError(f"layer {layer!r}: a weight of {big:.3g} does not fit float16 "
                            f"(max {FLOAT16_MAX:.0f})")
        return w.astype(np.float16), 1.0
    bits = _INT_BITS[precision]
    q_max = 2 ** (bits - 1) - 1
    big = float(np.max(np.abs(w))) if w.size else 0.0
    scale = big / q_max if big > 0 else 1.0
    if scale == 0.0:  # subnormal weights: one step is the largest
        scale = big
    codes = np.clip(np.rint(w / scale), -q_max, q_max).astype(np.int8 if bits == 8 else np.int16)
    return codes, scale


def dequantise(stored: np.ndarray, scale: float) -> np.ndarray:
    """Float64 weights from a stored form."""
    return stored.astype(np.float64) * scale


def check_precision(w: np.ndarray, precision: str, layer: str) -> None:
    """Raise ``KnobError`` when layer ``layer`` cannot take ``precision``."""
    stored, _ = quantise(w, precision, layer)
    if precision in _INT_BITS:
        mass = float(np.abs(w).sum())
        lost = float(np.abs(w[stored == 0]).sum())
        if mass > 0 and lost > 0.25 * mass:
            raise KnobError(
                f"layer {layer!r}: {precision} would round weights carrying "
                f"{100 * lost / mass:.0f} % of its total |w| to zero (dynamic range too "
                "wide); use a wider format")


def resolve(bank: WeightBank, spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """Precision per layer — weight layers and neuron (state) layers — from a spec: one
    name for all, a {layer: name} map (others stay float32), or None (all float32)."""
    names = [*bank.layers, *bank.states]
    if spec is None:
        return dict.fromkeys(names, "float32")
    if isinstance(spec, str):
        if spec not in PRECISIONS:
            raise KnobError(f"precision {spec!r} is not one of {', '.join(PRECISIONS)}")
        return dict.fromkeys(names, spec)
    out = dict.fromkeys(names, "float32")
    for name, precision in spec.items():
        if name not in out:
            raise KnobError(f"no weight or neuron layer named {name!r} (layers: "
                            f"{', '.join(names) or 'none'})")
        if precision not in PRECISIONS:
            raise KnobError(f"layer {name!r}: precision {precision!r} is not one of "
                            f"{', '.join(PRECISIONS)}")
        out[name] = precision
    return out


def check_precisions(bank: WeightBank, spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """Check every layer against ``spec`` (changing nothing); the resolved map."""
    if not bank.layers and spec is not None:
        raise KnobError("this model has no weight layers to set a precision for")
    wanted = resolve(bank, spec)
    for name, precision in wanted.items():
        layer = bank.layers.get(name)
        if layer is None:  # a neuron layer: any precision (its state saturates at ±4 θ)
            continue
        w = layer.original if layer.mask is None else layer.original * layer.mask
        check_precision(w, precision, name)
    return wanted


def set_precision(bank: WeightBank, spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """Switch every layer to ``spec`` (checked first: a refusal changes nothing)."""
    wanted = check_precisions(bank, spec)
    for name, precision in wanted.items():
        if name in bank.states:
            bank.states[name].precision = precision
            continue
        layer = bank.layers[name]
        if layer.precision != precision:
            layer.precision = precision
            bank.refresh(layer)
    bank.round_state()
    return wanted


def output_spikes(result: Any) -> np.ndarray:
    """A step result's output spikes as (t, neuron) columns (tracker or ``Network``)."""
    spikes = getattr(result, "spikes", None)
    if spikes is not None:
        return np.asarray(spikes)
    events = result.events
    out = np.empty(len(events), dtype=[("t", "<i8"), ("neuron", "<u4")])
    out["t"] = events["t"]
    out["neuron"] = events["x"]
    return out


def spike_agreement(core: Any, events: np.ndarray, configure: Callable[[Any], None],
                    spikes_of: Callable[[Any], np.ndarray] = output_spikes,
                    bin_us: int = 10_000,
                    reference: Callable[[Any], None] | None = None,
                    chunk_us: int = 5_000) -> dict[str, Any]:
    """Run ``events`` through two fresh copies of ``core``: one set by ``reference`` (default:
    float32, unpruned), one by ``configure``; compare output spikes per (neuron, time bin).

    ``spikes_of(result)`` gives a step result's spikes as (t µs, neuron) columns.
    Agreement = Σ min(a, b) / max(Σa, Σb) over bins (1.0 when both are silent).
    Also returns both runs' spike counts and counted synaptic operations. When a
    neuron layer's state is kept below float32, the events run in ``chunk_us``
    chunks with the state rounded after each, as the pipeline does per packet.
    """
    synops: list[int] = []

    def run(setup: Callable[[Any], None]) -> np.ndarray:
        twin = copy.deepcopy(core)
        reset = getattr(twin, "reset_state", None)
        if callable(reset):
            reset()
        setup(twin)
        bank = bank_of(twin)
        if not bank.state_rounded or not len(events):
            result = twin.step(events)
            counted = result.synops
            synops.append(int(sum(counted.values()) if isinstance(counted, dict) else counted))
            return spikes_of(result)
        # rounded state: as the pipeline runs it, one call per chunk, rounded after each
        parts, total = [], 0
        start = int(events["t"][0]) // chunk_us * chunk_us  # chunks on a grid of chunk_us
        edges = np.searchsorted(events["t"], np.arange(start + chunk_us,
                                                       int(events["t"][-1]) + chunk_us,
                                                       chunk_us))
        for chunk in np.split(events, edges):
            if not len(chunk):
                continue
            result = twin.step(chunk)
            bank.round_state()
            counted = result.synops
            total += int(sum(counted.values()) if isinstance(counted, dict) else counted)
            parts.append(spikes_of(result))
        synops.append(total)
        return np.concatenate(parts)

    def full(twin: Any) -> None:
        bank = bank_of(twin)
        for layer in bank.layers.values():
            layer.precision, layer.mask = "float32", None
            bank.refresh(layer)
        for state in bank.states.values():
            state.precision = "float32"

    a = run(reference or full)
    b = run(configure)
    t0 = int(events["t"][0]) if len(events) else 0
    counts = {"spikes_reference": len(a), "spikes": len(b),
              "synops_reference": synops[0], "synops": synops[1]}
    return {"agreement": round(agreement(a, b, t0, bin_us), 4), **counts}


def agreement(a: np.ndarray, b: np.ndarray, t0_us: int = 0, bin_us: int = 10_000) -> float:
    """Σ min(a, b) / max(Σa, Σb) over (neuron, time bin) spike counts; 1.0 when both
    are silent. ``a`` and ``b`` have (t, neuron) columns."""
    total = max(len(a), len(b))
    if total == 0:
        return 1.0
    ua, ca = np.unique(_bins(a, t0_us, bin_us), return_counts=True)
    ub, cb = np.unique(_bins(b, t0_us, bin_us), return_counts=True)
    _, ia, ib = np.intersect1d(ua, ub, return_indices=True)
    return int(np.minimum(ca[ia], cb[ib]).sum()) / total


def _bins(spikes: np.ndarray, t0: int, bin_us: int) -> np.ndarray:
    t = spikes["t"].astype(np.int64)
    n = spikes["neuron"].astype(np.int64)
    return ((t - t0) // bin_us) * (1 << 20) + n
