"""Event-driven 2-D pooling: one input spike adds ``scale`` to every window that holds it.

SumPool2d has ``scale = 1``; AvgPool2d ``scale = 1 / (kh · kw)`` (PyTorch's
default: padded zeros count, no ceil mode). The geometry is a ``ConvGeometry``
with ``c_out = groups = c_in`` and dilation 1: an input at ``(c, iy, ix)``
reaches ``out[c, oy, ox]`` when ``oy·sy − py ≤ iy < oy·sy − py + kh`` (same along x).

The kernels are ``conv.scatter_batch`` / ``conv.scatter_steps`` with the window scale
(a float) in place of the weights; the window walk is ``conv._scatter_window_one``.
"""

from __future__ import annotations

import numpy as np

from .conv import (
    ConvGeometry,
    ConvGeometryError,
    output_capacity,
    scatter_checked,
    scatter_steps,
)


def pool_geometry(
    c: int, h_in: int, w_in: int, kh: int, kw: int, sy: int, sx: int, py: int = 0, px: int = 0
) -> ConvGeometry:
    """The geometry of a pooling layer (symmetric padding, floor mode)."""
    if kh < 1 or kw < 1 or sy < 1 or sx < 1:
        raise ConvGeometryError(f"pooling: kernel {kh}×{kw} and stride {sy}×{sx} must be ≥ 1")
    h_out = (h_in + 2 * py - kh) // sy + 1
    w_out = (w_in + 2 * px - kw) // sx + 1
    if h_out < 1 or w_out < 1:
        raise ConvGeometryError(
            f"pooling: kernel {kh}×{kw} larger than padded input {h_in + 2 * py}×{w_in + 2 * px}"
        )
    return ConvGeometry(c_in=c, h_in=h_in, w_in=w_in, c_out=c, h_out=h_out, w_out=w_out,
                        kh=kh, kw=kw, sy=sy, sx=sx, py=py, px=px, groups=c)


def scatter_pool(
    geometry: ConvGeometry,
    scale: float,
    src: np.ndarray,
    amount: np.ndarray | None = None,
    acc: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Scatter input spikes at flat indices ``src`` through a pooling layer.

    Returns ``(acc, touched, n_synops)`` like ``conv.scatter_conv``.
    """
    return scatter_checked("pooling", geometry, float(scale), src, amount, acc)


def warm_up() -> None:
    """Compile the pooling kernels on a tiny input."""
    geometry = pool_geometry(1, 4, 4, 2, 2, 2, 2)
    scatter_pool(geometry, 1.0, np.array([0, 5], dtype=np.int64))
    step = np.array([0, 0, 2], dtype=np.int64)
    cap = output_capacity(geometry, step)
    scatter_steps(step, np.array([0, 5, 9], dtype=np.int64), np.ones(3), geometry.as_array(),
                  1.0, np.zeros(geometry.n_out), np.zeros(geometry.n_out, np.uint8),
                  np.empty(geometry.n_out, np.int64), np.empty(cap, np.int64),
                  np.empty(cap, np.int64), np.empty(cap), np.zeros(1, np.int64))
