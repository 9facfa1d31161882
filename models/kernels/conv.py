"""Event-driven convolution: one input spike scatters its kernel onto the outputs it reaches.

NIR's Conv1d / Conv2d are cross-correlations (PyTorch's convention)::

    out[o, y, x] = bias[o] + Σ_{c ∈ group(o), ky, kx}
                   w[o, c, ky, kx] · in[c, y·sy − py + ky·dy, x·sx − px + kx·dx]

so an input spike at ``(c, iy, ix)`` reaches ``out[o, oy, ox]`` for every
``ky`` with ``iy + py − ky·dy = oy·sy`` (and the same along x), for the output
channels ``o`` of ``c``'s group. A Conv1d is a Conv2d with ``h = kh = 1``.

Geometry travels as one int64 array (``GEOM_*`` indices) so kernels take
arrays and scalars only. Tensors are flat, C order: ``(c, y, x)``.

Pooling (``kernels.pool``) runs through the same kernels, ``scatter_batch`` and
``scatter_steps``: a float window scale in place of the weights selects its window walk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, types
from numba.extending import overload

GEOM_C_IN, GEOM_H_IN, GEOM_W_IN = 0, 1, 2
GEOM_C_OUT, GEOM_H_OUT, GEOM_W_OUT = 3, 4, 5
GEOM_KH, GEOM_KW = 6, 7
GEOM_SY, GEOM_SX = 8, 9
GEOM_PY, GEOM_PX = 10, 11
GEOM_DY, GEOM_DX = 12, 13
GEOM_GROUPS = 14
GEOM_SIZE = 15


class ConvGeometryError(ValueError):
    """A convolution whose shapes, strides, paddings or groups don't fit together."""


def conv_output_size(
    n_in: int, kernel: int, stride: int, pad_lo: int, pad_hi: int, dil: int
) -> int:
    """Output length along one axis (PyTorch's formula, padding possibly asymmetric)."""
    return (n_in + pad_lo + pad_hi - dil * (kernel - 1) - 1) // stride + 1


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes and hyper-parameters of one 2-D (or 1-D, ``h = kh = 1``) convolution.

    ``py`` / ``px`` are the leading (top / left) paddings; trailing padding only
    matters through ``h_out`` / ``w_out``.
    """

    c_in: int
    h_in: int
    w_in: int
    c_out: int
    h_out: int
    w_out: int
    kh: int
    kw: int
    sy: int = 1
    sx: int = 1
    py: int = 0
    px: int = 0
    dy: int = 1
    dx: int = 1
    groups: int = 1

    def __post_init__(self) -> None:
        for name in ("c_in", "h_in", "w_in", "c_out", "h_out", "w_out", "kh", "kw",
                     "sy", "sx", "dy", "dx", "groups"):
            if int(getattr(self, name)) < 1:
                raise ConvGeometryError(f"convolution: {name} = {getattr(self, name)} must be ≥ 1")
        for name in ("py", "px"):
            if int(getattr(self, name)) < 0:
                raise ConvGeometryError(f"convolution: {name} = {getattr(self, name)} must be ≥ 0")
        if self.c_in % self.groups or self.c_out % self.groups:
            raise ConvGeometryError(
                f"convolution: groups = {self.groups} must divide c_in = {self.c_in} "
                f"and c_out = {self.c_out}"
            )

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.c_out, self.c_in // self.groups, self.kh, self.kw)

    @property
    def n_in(self) -> int:
        return self.c_in * self.h_in * self.w_in

    @property
    def n_out(self) -> int:
        return self.c_out * self.h_out * self.w_out

    @property
    def max_fan_out(self) -> int:
        """An upper bound on the outputs one input spike reaches."""
        return (self.c_out // self.groups) * self.kh * self.kw

    def as_array(self) -> np.ndarray:
        return np.array(
            [self.c_in, self.h_in, self.w_in, self.c_out, self.h_out, self.w_out,
             self.kh, self.kw, self.sy, self.sx, self.py, self.px, self.dy, self.dx,
             self.groups],
            dtype=np.int64,
        )


@njit(cache=True, nogil=True, inline="always")
def _tap_target(i, pad, tap, dil, stride, n_out):
    """The output coordinate that kernel tap ``tap`` links input coordinate ``i`` to along
    one axis: ≥ 0; −1 none; −2 none for this tap or any later one."""
    n = i + pad - tap * dil
    if n < 0:
        return -2
    if n % stride != 0:
        return -1
    o = n // stride
    if o >= n_out:
        return -1
    return o


@njit(cache=True, nogil=True, inline="always")
def _read_geometry(geom):
    """The ``GEOM_*`` entries of ``geom`` as a tuple, in index order."""
    return (geom[GEOM_C_IN], geom[GEOM_H_IN], geom[GEOM_W_IN], geom[GEOM_C_OUT],
            geom[GEOM_H_OUT], geom[GEOM_W_OUT], geom[GEOM_KH], geom[GEOM_KW], geom[GEOM_SY],
            geom[GEOM_SX], geom[GEOM_PY], geom[GEOM_PX], geom[GEOM_DY], geom[GEOM_DX],
            geom[GEOM_GROUPS])


@njit(cache=True, nogil=True, inline="always")
def _input_position(src, h_in, w_in):
    """Channel, row and column of flat input index ``src``."""
    c = src // (h_in * w_in)
    rem = src - c * (h_in * w_in)
    iy = rem // w_in
    return c, iy, rem - iy * w_in


@njit(cache=True, nogil=True, inline="always")
def _scatter_conv_one(src, amount, geom, weight, acc, dirty_flag, dirty_list, n_dirty):
    """Add ``amount`` × the kernel of input ``src`` into ``acc``.

    Every output touched for the first time (``dirty_flag == 0``) is flagged and
    appended to ``dirty_list``. Returns ``(n_dirty, n_synops)``.
    """
    (c_in, h_in, w_in, c_out, h_out, w_out, kh, kw, sy, sx, py, px, dy, dx,
     groups) = _read_geometry(geom)
    cg_in = c_in // groups
    cg_out = c_out // groups
    c, iy, ix = _input_position(src, h_in, w_in)
    g = c // cg_in
    cl = c - g * cg_in
    o0 = g * cg_out
    n_synops = 0
    for ky in range(kh):
        oy = _tap_target(iy, py, ky, dy, sy, h_out)
        if oy == -2:
            break
        if oy < 0:
            continue
        for kx in range(kw):
            ox = _tap_target(ix, px, kx, dx, sx, w_out)
            if ox == -2:
                break
            if ox < 0:
                continue
            for o in range(o0, o0 + cg_out):
                j = (o * h_out + oy) * w_out + ox
                acc[j] += amount * weight[((o * cg_in + cl) * kh + ky) * kw + kx]
                n_synops += 1
                if dirty_flag[j] == 0:
                    dirty_flag[j] = 1
                    dirty_list[n_dirty] = j
                    n_dirty += 1
    return n_dirty, n_synops


@njit(cache=True, nogil=True, inline="always")
def _scatter_window_one(src, amount, geom, scale, acc, dirty_flag, dirty_list, n_dirty):
    """Pooling (see ``kernels.pool``): add ``amount · scale`` to each window holding input
    ``src``; returns ``(n_dirty, n_synops)`` like ``_scatter_conv_one``."""
    _, h_in, w_in, _, h_out, w_out, kh, kw, sy, sx, py, px, _, _, _ = _read_geometry(geom)
    c, iy, ix = _input_position(src, h_in, w_in)
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


def _scatter_one(src, amount, geom, kernel, acc, dirty_flag, dirty_list, n_dirty):
    """One input spike through a convolution (``kernel``: its flat weights) or a pooling
    layer (``kernel``: the window scale, a float); returns ``(n_dirty, n_synops)``.

    Compiled code picks the branch by the type of ``kernel`` (``@overload`` below), at
    no cost per call; this body serves ``NUMBA_DISABLE_JIT=1``.
    """
    if isinstance(kernel, np.ndarray):
        return _scatter_conv_one(src, amount, geom, kernel, acc, dirty_flag, dirty_list, n_dirty)
    return _scatter_window_one(src, amount, geom, kernel, acc, dirty_flag, dirty_list, n_dirty)


@overload(_scatter_one, inline="always")
def _overload_scatter_one(src, amount, geom, kernel, acc, dirty_flag, dirty_list, n_dirty):
    if isinstance(kernel, types.Array):
        def scatter_conv_one(src, amount, geom, kernel, acc, dirty_flag, dirty_list, n_dirty):
            return _scatter_conv_one(src, amount, geom, kernel, acc, dirty_flag, dirty_list,
                                     n_dirty)
        return scatter_conv_one
    if isinstance(kernel, types.Float):
        def scatter_window_one(src, amount, geom, kernel, acc, dirty_flag, dirty_list, n_dirty):
            return _scatter_window_one(src, amount, geom, kernel, acc, dirty_flag, dirty_list,
                                       n_dirty)
        return scatter_window_one
    return None


@njit(cache=True, nogil=True)
def scatter_batch(src, amount, geom, kernel, acc, dirty_flag, dirty_list):
    """Scatter a batch of spikes (``src[i]`` × ``amount[i]``) through a convolution or a
    pooling layer (``kernel`` as for ``_scatter_one``); returns ``(n_dirty, n_synops)``."""
    n_dirty = 0
    n_synops = 0
    for i in range(src.shape[0]):
        n_dirty, s = _scatter_one(
            src[i], amount[i], geom, kernel, acc, dirty_flag, dirty_list, n_dirty
        )
        n_synops += s
    return n_dirty, n_synops


@njit(cache=True, nogil=True)
def scatter_steps(in_step, in_idx, in_val, geom, kernel, acc, mark, touched,
                  out_step, out_idx, out_val, counters):
    """Scatter sorted-by-step input events through a convolution (``kernel``: its flat
    weights) or a pooling layer (``kernel``: the window scale), step by step.

    For each step with input, writes one output event ``(step, j, Σ)`` per
    output ``j`` the step's inputs reached (first-touch order). ``acc`` and
    ``mark`` (length n_out) must be zero and are left zero. Capacity needed:
    ``output_capacity(...)``. Returns the number written; ``counters[0]`` +=
    synaptic operations.
    """
    n_in = in_step.shape[0]
    n_out = 0
    pos = 0
    synops = 0
    while pos < n_in:
        k = in_step[pos]
        nt = 0
        while pos < n_in and in_step[pos] == k:
            nt, s = _scatter_one(in_idx[pos], in_val[pos], geom, kernel, acc, mark, touched, nt)
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


def output_capacity(geometry: ConvGeometry, in_step: np.ndarray) -> int:
    """An upper bound on the output events of ``scatter_steps``."""
    n_events = int(in_step.shape[0])
    if n_events == 0:
        return 0
    n_steps = int(np.count_nonzero(np.diff(in_step))) + 1
    return min(n_events * geometry.max_fan_out, n_steps * geometry.n_out)


def scatter_conv(
    geometry: ConvGeometry,
    weight: np.ndarray,
    src: np.ndarray,
    amount: np.ndarray | None = None,
    acc: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Scatter input spikes at flat indices ``src`` through a convolution.

    Returns ``(acc, touched, n_synops)``: the flat output accumulator (added to
    in place when given), the flat indices of the outputs touched (first-touch
    order) and the number of synaptic operations.
    """
    weight = np.ascontiguousarray(weight, dtype=np.float64)
    if weight.shape != geometry.weight_shape:
        raise ConvGeometryError(
            f"convolution: weight shape {weight.shape} != expected {geometry.weight_shape}"
        )
    return scatter_checked("convolution", geometry, weight.ravel(), src, amount, acc)


def scatter_checked(
    layer: str,
    geometry: ConvGeometry,
    kernel: np.ndarray | float,
    src: np.ndarray,
    amount: np.ndarray | None,
    acc: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``scatter_batch`` after checking ``src``, ``amount`` and ``acc`` (errors name
    ``layer``); returns ``(acc, touched, n_synops)`` as ``scatter_conv`` does."""
    src = np.ascontiguousarray(src, dtype=np.int64)
    if src.ndim != 1 or (src.size and (src.min() < 0 or src.max() >= geometry.n_in)):
        raise ConvGeometryError(f"{layer}: input indices must lie in [0, {geometry.n_in})")
    if amount is None:
        amount = np.ones(src.shape[0], dtype=np.float64)
    amount = np.ascontiguousarray(amount, dtype=np.float64)
    if amount.shape != src.shape:
        raise ConvGeometryError(f"{layer}: amount shape {amount.shape} != src {src.shape}")
    if acc is None:
        acc = np.zeros(geometry.n_out, dtype=np.float64)
    elif acc.shape != (geometry.n_out,) or acc.dtype != np.float64:
        raise ConvGeometryError(f"{layer}: acc must be float64 of shape ({geometry.n_out},)")
    flag = np.zeros(geometry.n_out, dtype=np.uint8)
    touched = np.empty(geometry.n_out, dtype=np.int64)
    n_dirty, n_synops = scatter_batch(src, amount, geometry.as_array(), kernel, acc, flag,
                                      touched)
    return acc, touched[:n_dirty].copy(), int(n_synops)


def warm_up() -> None:
    """Compile the convolution kernels on a tiny input."""
    geometry = ConvGeometry(c_in=2, h_in=3, w_in=3, c_out=2, h_out=3, w_out=3, kh=3, kw=3,
                            py=1, px=1, groups=2)
    weight = np.ones(geometry.weight_shape)
    scatter_conv(geometry, weight, np.array([0, 4], dtype=np.int64))
    step = np.array([0, 0, 2], dtype=np.int64)
    cap = output_capacity(geometry, step)
    scatter_steps(step, np.array([0, 4, 9], dtype=np.int64), np.ones(3), geometry.as_array(),
                  weight.ravel(), np.zeros(geometry.n_out), np.zeros(geometry.n_out, np.uint8),
                  np.empty(geometry.n_out, np.int64), np.empty(cap, np.int64),
                  np.empty(cap, np.int64), np.empty(cap), np.zeros(1, np.int64))
