"""Clock-driven reference of convolution, pooling and flatten: dense numpy, slow and obvious.

Each function maps one dense input frame ``(c, h, w)`` (or ``(c, l)`` for 1-D)
to its output frame, with NIR's / PyTorch's conventions (cross-correlation,
zero padding, floor mode, average pooling counts padded zeros).
"""

from __future__ import annotations

import numpy as np

from .graph import Layer
from .profiles import Profile
from .reference import State, register_reference


def correlate2d(
    x: np.ndarray,
    weight: np.ndarray,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] | tuple[int, int, int, int] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """Conv2d of one frame ``x (c_in, h, w)`` with ``weight (c_out, c_in/groups, kh, kw)``.

    ``padding`` is ``(py, px)`` or ``(top, bottom, left, right)``.
    """
    c_in, h, w = x.shape
    c_out, cg_in, kh, kw = weight.shape
    pt, pb, pl, pr = padding if len(padding) == 4 else (padding[0], padding[0],
                                                         padding[1], padding[1])
    xp = np.zeros((c_in, h + pt + pb, w + pl + pr), dtype=np.float64)
    xp[:, pt:pt + h, pl:pl + w] = x
    sy, sx = stride
    dy, dx = dilation
    h_out = (h + pt + pb - dy * (kh - 1) - 1) // sy + 1
    w_out = (w + pl + pr - dx * (kw - 1) - 1) // sx + 1
    cg_out = c_out // groups
    out = np.zeros((c_out, h_out, w_out), dtype=np.float64)
    for o in range(c_out):
        g = o // cg_out
        for oy in range(h_out):
            for ox in range(w_out):
                patch = xp[g * cg_in:(g + 1) * cg_in,
                           oy * sy:oy * sy + dy * (kh - 1) + 1:dy,
                           ox * sx:ox * sx + dx * (kw - 1) + 1:dx]
                out[o, oy, ox] = np.sum(patch * weight[o])
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)[:, None, None]
    return out


def correlate1d(
    x: np.ndarray,
    weight: np.ndarray,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int = 1,
    groups: int = 1,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """Conv1d of one frame ``x (c_in, l)`` with ``weight (c_out, c_in/groups, k)``."""
    lo, hi = (padding, padding) if isinstance(padding, int) else padding
    out = correlate2d(x[:, None, :], weight[:, :, None, :], (1, stride), (0, 0, lo, hi),
                      (1, dilation), groups, bias)
    return out[:, 0, :]


def sum_pool2d(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Sum over each window of one frame ``x (c, h, w)`` (zero padding, floor mode)."""
    c, h, w = x.shape
    kh, kw = kernel
    sy, sx = stride
    py, px = padding
    xp = np.zeros((c, h + 2 * py, w + 2 * px), dtype=np.float64)
    xp[:, py:py + h, px:px + w] = x
    h_out = (h + 2 * py - kh) // sy + 1
    w_out = (w + 2 * px - kw) // sx + 1
    out = np.zeros((c, h_out, w_out), dtype=np.float64)
    for oy in range(h_out):
        for ox in range(w_out):
            out[:, oy, ox] = xp[:, oy * sy:oy * sy + kh, ox * sx:ox * sx + kw].sum(axis=(1, 2))
    return out


def avg_pool2d(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Mean over each window, padded zeros counted (PyTorch's ``count_include_pad=True``)."""
    return sum_pool2d(x, kernel, stride, padding) / (kernel[0] * kernel[1])


def flatten(x: np.ndarray, start_dim: int = 0, end_dim: int = -1) -> np.ndarray:
    """Merge dims ``start_dim..end_dim`` of one frame (no batch axis; C order)."""
    shape = x.shape
    end = end_dim % len(shape)
    merged = int(np.prod(shape[start_dim:end + 1]))
    return x.reshape(*shape[:start_dim], merged, *shape[end + 1:])


# ---------------------------------------------------------------- graph layers
# One-step reference functions for ``models.reference.run_reference``.


@register_reference("conv1d", "conv2d")
def conv_step(layer: Layer, profile: Profile, state: State, x: np.ndarray) -> np.ndarray:
    """A Conv1d / Conv2d layer on one flat input frame (bias included)."""
    p = layer.params
    g = p.geometry
    frame = np.asarray(x, dtype=np.float64).reshape(g.c_in, g.h_in, g.w_in)
    # trailing padding: whatever the output size needs (NIR's 'same' pads more after)
    pb = max(0, (g.h_out - 1) * g.sy + g.dy * (g.kh - 1) + 1 - g.h_in - g.py)
    pr = max(0, (g.w_out - 1) * g.sx + g.dx * (g.kw - 1) + 1 - g.w_in - g.px)
    out = correlate2d(frame, p.weight, (g.sy, g.sx), (g.py, pb, g.px, pr), (g.dy, g.dx),
                      g.groups, p.bias)
    return out[:, : g.h_out, : g.w_out].reshape(-1)


@register_reference("sum_pool2d", "avg_pool2d")
def pool_step(layer: Layer, profile: Profile, state: State, x: np.ndarray) -> np.ndarray:
    """A SumPool2d / AvgPool2d layer on one flat input frame."""
    p = layer.params
    g = p.geometry
    frame = np.asarray(x, dtype=np.float64).reshape(g.c_in, g.h_in, g.w_in)
    pool = avg_pool2d if layer.kind == "avg_pool2d" else sum_pool2d
    return pool(frame, p.kernel_size, p.stride, p.padding).reshape(-1)


@register_reference("flatten")
def flatten_step(layer: Layer, profile: Profile, state: State, x: np.ndarray) -> np.ndarray:
    """Flatten: the identity on flat frames."""
    return x
