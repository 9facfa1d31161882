"""``Signal``: what moves between layers inside the core during one call.

A signal is three flat arrays of equal length, sorted by step: ``step``
(int64, the time step), ``idx`` (int64, the flat target index within the
layer's output) and ``val`` (float64: a spike count, or a real value for
linear maps and non-spiking neurons). Entries of one step may repeat an
index; they are summed by the consumer.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Signal(NamedTuple):
    step: np.ndarray
    idx: np.ndarray
    val: np.ndarray

    def __len__(self) -> int:
        return int(self.step.shape[0])

    def between(self, k0: int, k1: int) -> Signal:
        """The entries with k0 ≤ step < k1 (a view)."""
        a, b = np.searchsorted(self.step, [k0, k1], side="left")
        return Signal(self.step[a:b], self.idx[a:b], self.val[a:b])


def empty_signal() -> Signal:
    return Signal(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))


def merge_signals(parts: list[Signal]) -> Signal:
    """Concatenate signals and stable-sort by step (order within a step kept)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_signal()
    if len(parts) == 1:
        return parts[0]
    step = np.concatenate([p.step for p in parts])
    idx = np.concatenate([p.idx for p in parts])
    val = np.concatenate([p.val for p in parts])
    order = np.argsort(step, kind="stable")
    return Signal(step[order], idx[order], val[order])


def signal_to_raster(signal: Signal, k0: int, n_steps: int, size: int) -> np.ndarray:
    """Dense (n_steps, size) float64 raster of a signal's values (summed per cell)."""
    raster = np.zeros((n_steps, size), dtype=np.float64)
    if len(signal):
        np.add.at(raster, (signal.step - k0, signal.idx), signal.val)
    return raster


def raster_to_signal(raster: np.ndarray, k0: int = 0) -> Signal:
    """Nonzero cells of a (T, ...) raster as a signal (C order of the trailing axes)."""
    flat = raster.reshape(raster.shape[0], -1)
    steps, idx = np.nonzero(flat)
    return Signal(
        steps.astype(np.int64) + k0, idx.astype(np.int64), flat[steps, idx].astype(np.float64)
    )
