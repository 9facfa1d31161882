"""Connectivity at run time: prune synapses by magnitude, restore them, live.

``set_sparsity(core, s)`` removes, in every weight layer, the fraction ``s``
of synapses with the smallest |w| (``prune_below(core, threshold)`` removes
those under a magnitude); ``set_sparsity(core, None)`` restores them all. The
float originals stay in the core's ``WeightBank``, so pruning composes with
precision and is undone exactly.

Dense layers of a ``Network`` then run as CSR (``kernels/sparse.py``) when
that is faster: both kernels are timed on the same synthetic input of the
layer and the quicker one is kept (``formats``). Under CSR an input event
costs only its row's kept synapses, and the counted synaptic operations drop
with them. Convolution layers and the demo tracker keep their dense kernels
with zeroed weights: their counted operations do not drop (reported as such).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .kernels.dense import scatter_dense
from .kernels.sparse import scatter_csr, to_csr
from .signal import Signal
from .stages import DenseStage
from .weights import KnobError, WeightBank, bank_of

__all__ = ["CsrDenseStage", "KnobError", "prune_below", "set_sparsity", "sparsity_status"]


class CsrDenseStage(DenseStage):
    """A dense layer run from the CSR form of its (pruned) weights."""

    kinds = ()  # type: ignore[assignment]  # not registered: swapped in by ``_swap``
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    mark: np.ndarray | None = None
    touched: np.ndarray

    def weights_changed(self) -> None:
        self.indptr, self.indices, self.data = to_csr(self.weight_t)
        n = self.size
        if self.mark is None or self.mark.shape[0] != n:
            self.mark = np.zeros(n, np.uint8)
            self.touched = np.empty(n, np.int64)

    def _scatter(self, inp: Signal, out: Signal) -> int:
        return scatter_csr(inp.step, inp.idx, inp.val, self.indptr, self.indices, self.data,
                           self.acc, self.mark, self.touched, out.step, out.idx, out.val,
                           self.counters)


def _swap(core: Any, bank: WeightBank, name: str, cls: type[DenseStage]) -> DenseStage:
    """Replace stage ``name`` by an object of ``cls`` sharing its arrays and counters."""
    old = core.stages[name]
    if type(old) is cls:
        return old
    new = object.__new__(cls)
    new.__dict__.update(old.__dict__)
    if isinstance(new, CsrDenseStage):
        new.weights_changed()
    core.stages[name] = new
    bank.layers[name].owner = new
    return new


def _time_kernels(stage: DenseStage, n_events: int = 4000, n_steps: int = 40,
                  seed: int = 0) -> tuple[float, float]:
    """Seconds of the dense and of the CSR kernel on the same synthetic input."""
    rng = np.random.default_rng(seed)
    n_in, n_out = stage.weight_t.shape
    step = np.sort(rng.integers(0, n_steps, n_events)).astype(np.int64)
    idx = rng.integers(0, n_in, n_events).astype(np.int64)
    val = np.ones(n_events)
    cap = n_steps * n_out
    out = (np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap))
    acc = np.zeros(n_out)
    counters = np.zeros(1, np.int64)
    indptr, indices, data = to_csr(stage.weight_t)
    mark = np.zeros(n_out, np.uint8)
    touched = np.empty(n_out, np.int64)
    best = [np.inf, np.inf]
    for _ in range(3):
        t0 = time.perf_counter()
        scatter_dense(step, idx, val, stage.weight_t, acc, *out, counters)
        t1 = time.perf_counter()
        scatter_csr(step, idx, val, indptr, indices, data, acc, mark, touched, *out, counters)
        t2 = time.perf_counter()
        best = [min(best[0], t1 - t0), min(best[1], t2 - t1)]
    return best[0], best[1]


def _apply_masks(core: Any, bank: WeightBank, masks: dict[str, np.ndarray | None]
                 ) -> dict[str, Any]:
    """Set the masks, refresh the weights, pick dense or CSR per dense layer (timed)."""
    report: dict[str, Any] = {}
    for name, mask in masks.items():
        layer = bank.layers[name]
        layer.mask = mask
        bank.refresh(layer)
        entry: dict[str, Any] = {"kept": layer.n_kept, "synapses": layer.size}
        stages = getattr(core, "stages", None)
        if isinstance(stages, dict) and isinstance(stages.get(name), DenseStage):
            if mask is None:
                _swap(core, bank, name, DenseStage)
                entry["format"] = "dense"
            else:
                dense_s, csr_s = _time_kernels(stages[name])
                use = CsrDenseStage if csr_s < dense_s else DenseStage
                _swap(core, bank, name, use)
                entry.update(format="csr" if use is CsrDenseStage else "dense",
                             dense_kernel_us=round(dense_s * 1e6, 1),
                             csr_kernel_us=round(csr_s * 1e6, 1))
        else:
            entry["format"] = "dense (zeroed weights)"
        report[name] = entry
    return report


def _magnitude_mask(w: np.ndarray, sparsity: float) -> np.ndarray | None:
    if sparsity <= 0.0:
        return None
    n_cut = round(sparsity * w.size)
    if n_cut == 0:
        return None
    order = np.argsort(np.abs(w), axis=None, kind="stable")
    mask = np.ones(w.size, dtype=bool)
    mask[order[:n_cut]] = False
    return mask.reshape(w.shape)


def check_sparsity(core: Any, sparsity: float | None) -> None:
    """Raise ``KnobError`` when ``sparsity`` cannot be set on ``core``."""
    if sparsity is None:
        return
    if not 0.0 <= sparsity < 1.0:
        raise KnobError(f"sparsity must be in [0, 1), not {sparsity!r}")
    if not bank_of(core).layers:
        raise KnobError("this model has no weight layers to prune")


def set_sparsity(core: Any, sparsity: float | None) -> dict[str, Any]:
    """Prune the fraction ``sparsity`` of smallest-|w| synapses in every weight layer
    (None or 0: restore all); return, per layer, kept synapses and the kernel format."""
    check_sparsity(core, sparsity)
    bank = bank_of(core)
    masks = {name: None if sparsity is None else _magnitude_mask(layer.original, sparsity)
             for name, layer in bank.layers.items()}
    return _apply_masks(core, bank, masks)


def prune_below(core: Any, threshold: float) -> dict[str, Any]:
    """Prune every synapse with |w| < ``threshold`` (of the float originals)."""
    if not np.isfinite(threshold) or threshold < 0:
        raise KnobError(f"prune threshold must be finite and ≥ 0, not {threshold!r}")
    bank = bank_of(core)
    masks: dict[str, np.ndarray | None] = {}
    for name, layer in bank.layers.items():
        mask = np.abs(layer.original) >= threshold
        masks[name] = None if mask.all() else mask
    return _apply_masks(core, bank, masks)


def sparsity_status(core: Any) -> dict[str, Any]:
    """Kept synapses per layer and overall, and each dense layer's kernel format."""
    bank = bank_of(core)
    stages = getattr(core, "stages", {})
    layers: dict[str, dict[str, Any]] = {}
    total = kept = 0
    for name, layer in bank.layers.items():
        stage = stages.get(name) if isinstance(stages, dict) else None
        fmt = "csr" if isinstance(stage, CsrDenseStage) else "dense"
        layers[name] = {"kept": layer.n_kept, "synapses": layer.size, "format": fmt}
        total += layer.size
        kept += layer.n_kept
    return {"synapses": total, "kept": kept,
            "sparsity": round(1 - kept / total, 4) if total else 0.0, "layers": layers}


def warm_up() -> None:
    """Compile the CSR kernel."""
    w = np.array([[0.0, 1.0], [2.0, 0.0]])
    indptr, indices, data = to_csr(w)
    one = np.zeros(1, np.int64)
    out = (np.empty(2, np.int64), np.empty(2, np.int64), np.empty(2))
    scatter_csr(one, one, np.ones(1), indptr, indices, data, np.zeros(2), np.zeros(2, np.uint8),
                np.empty(2, np.int64), *out, np.zeros(1, np.int64))
