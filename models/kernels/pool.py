"""Event-driven 2-D pooling: one input spike adds ``scale`` to every window that holds it.

SumPool2d has ``scale = 1``; AvgPool2d ``scale = 1 / (kh · kw)`` (PyTorch's
default: padded zeros count, no ceil mode). The geometry is a ``ConvGeometry``
with ``c_out = groups = c_in`` and dilation 1: an input at ``(c, iy, ix)``
reaches ``out[c, oy, ox]`` when ``oy·sy − py ≤ iy < oy·sy − py + kh`` (same along x).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .conv import ConvGeometry, ConvGeometryError, output_capacity


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


@njit(cache=True, nogil=True)
def _scatter_pool_one(src, amount, geom, scale, acc, dirty_flag, dirty_list, n_dirty):
    """Add ``amount · scale`` to each pooling window holding input ``src``.

    Returns ``(n_dirty, n_synops)``; see ``conv._scatter_conv_one`` for the dirty list.
    """
    h_in = geom[1]
    w_in = geom[2]
    h_out = geom[4]
    w_out = geom[5]
    kh = geom[6]
    kw = geom[7]
    sy = geom[8]
    sx = geom[9]
    py = geom[10]
    px = geom[11]
    c = src // (h_in * w_in)
    rem = src - c * (h_in * w_in)
    iy = rem // w_in
    ix = rem - iy * w_in
    n_synops = 0
    value = amount * scale
    # windows oy with 0 <= iy + py - oy*sy < kh
    oy_hi = (iy + py) // sy
    if oy_hi > h_out - 1:
        oy_hi = h_out - 1
    ox_hi = (ix + px) // sx
    if ox_hi > w_out - 1:
        ox_hi = w_out - 1
    oy = oy_hi
    while oy >= 0 and iy + py - oy * sy < kh:
        ox = ox_hi
        while ox >= 0 and ix + px - ox * sx < kw:
            j = (c * h_out + oy) * w_out + ox
            acc[j] += value
            n_synops += 1
            if dirty_flag[j] == 0:
                dirty_flag[j] = 1
                dirty_list[n_dirty] = j
                n_dirty += 1
            ox -= 1
        oy -= 1
    return n_dirty, n_synops


@njit(cache=True, nogil=True)
def _scatter_pool(src, amount, geom, scale, acc, dirty_flag, dirty_list):
    """Scatter a batch of input spikes; returns ``(n_dirty, n_synops)``."""
    n_dirty = 0
    n_synops = 0
    for i in range(src.shape[0]):
        n_dirty, s = _scatter_pool_one(
            src[i], amount[i], geom, scale, acc, dirty_flag, dirty_list, n_dirty
        )
        n_synops += s
    return n_dirty, n_synops


@njit(cache=True, nogil=True)
def scatter_pool_steps(in_step, in_idx, in_val, geom, scale, acc, mark, touched,
                       out_step, out_idx, out_val, counters):
    """Pooling counterpart of ``conv.scatter_conv_steps`` (same buffers and contract)."""
    n_in = in_step.shape[0]
    n_out = 0
    pos = 0
    synops = 0
    while pos < n_in:
        k = in_step[pos]
        nt = 0
        while pos < n_in and in_step[pos] == k:
            nt, s = _scatter_pool_one(in_idx[pos], in_val[pos], geom, scale, acc, mark,
                                      touched, nt)
            synops += s
            pos += 1
        for c in range(nt):
            j = touched[c]
            out_step[n_out] = k
            out_idx[n_out] = j
            out_val[n_out] = acc[j]
            n_out += 1
            acc[j] = 0.0
            mark[j] = 0
    counters[0] += synops
    return n_out


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
    src = np.ascontiguousarray(src, dtype=np.int64)
    if src.ndim != 1 or (src.size and (src.min() < 0 or src.max() >= geometry.n_in)):
        raise ConvGeometryError(f"pooling: input indices must lie in [0, {geometry.n_in})")
    if amount is None:
        amount = np.ones(src.shape[0], dtype=np.float64)
    amount = np.ascontiguousarray(amount, dtype=np.float64)
    if amount.shape != src.shape:
        raise ConvGeometryError(f"pooling: amount shape {amount.shape} != src {src.shape}")
    if acc is None:
        acc = np.zeros(geometry.n_out, dtype=np.float64)
    elif acc.shape != (geometry.n_out,) or acc.dtype != np.float64:
        raise ConvGeometryError(f"pooling: acc must be float64 of shape ({geometry.n_out},)")
    flag = np.zeros(geometry.n_out, dtype=np.uint8)
    touched = np.empty(geometry.n_out, dtype=np.int64)
    n_dirty, n_synops = _scatter_pool(
        src, amount, geometry.as_array(), float(scale), acc, flag, touched
    )
    return acc, touched[:n_dirty].copy(), int(n_synops)


def warm_up() -> None:
    """Compile the pooling kernels on a tiny input."""
    geometry = pool_geometry(1, 4, 4, 2, 2, 2, 2)
    scatter_pool(geometry, 1.0, np.array([0, 5], dtype=np.int64))
    step = np.array([0, 0, 2], dtype=np.int64)
    cap = output_capacity(geometry, step)
    scatter_pool_steps(step, np.array([0, 5, 9], dtype=np.int64), np.ones(3), geometry.as_array(),
                       1.0, np.zeros(geometry.n_out), np.zeros(geometry.n_out, np.uint8),
                       np.empty(geometry.n_out, np.int64), np.empty(cap, np.int64),
                       np.empty(cap, np.int64), np.empty(cap), np.zeros(1, np.int64))
