"""NIR Conv1d, Conv2d, SumPool2d, AvgPool2d and Flatten as graph kinds: params, import, export.

Importing this module registers the kinds with ``graph.register_kind``. Shapes
follow NIR: no batch axis, ``(c, h, w)`` / ``(c, l)``; a Conv1d is held as a
Conv2d with ``h = kh = 1``. ``padding`` may be an int, a pair, or
``"same"`` / ``"valid"`` (``"same"`` needs stride 1; the extra pad goes after,
as in PyTorch). Pooling nodes carry no input shape in a NIR file:
``fill_pool_shapes`` (a ``graph.SHAPE_HOOKS`` entry) gives them their
predecessor's output shape at load.

Flatten is the identity on flat C-order arrays: only its shape changes. Its
``start_dim`` / ``end_dim`` index the shape without batch (Sinabs writes 0);
a ``start_dim`` one past the last axis is read as counting a batch axis
(PyTorch's ``Flatten(1)`` written as is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nir
import numpy as np

from .graph import (
    SHAPE_HOOKS,
    GraphError,
    Kind,
    Layer,
    _declared_shape,
    as_param,
    register_kind,
)
from .kernels.conv import ConvGeometry, ConvGeometryError, conv_output_size
from .kernels.pool import pool_geometry


@dataclass(frozen=True)
class ConvParams:
    """A convolution: ``weight (c_out, c_in/groups, kh, kw)``, ``bias (c_out,)``, geometry.

    ``ndim`` is 1 for a NIR Conv1d (``kh = 1``), 2 for a Conv2d; ``padding`` is
    the NIR value as read (kept for export).
    """

    weight: np.ndarray
    bias: np.ndarray
    geometry: ConvGeometry
    ndim: int
    padding: Any

    @property
    def bias_per_output(self) -> np.ndarray:
        """The bias broadcast to every output neuron, flat ``(c_out · h_out · w_out,)``."""
        g = self.geometry
        return np.repeat(np.asarray(self.bias, dtype=np.float64), g.h_out * g.w_out)


@dataclass(frozen=True)
class PoolParams:
    """Sum or average pooling: every input adds ``scale`` to each window holding it."""

    geometry: ConvGeometry
    scale: float
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]


@dataclass(frozen=True)
class FlattenParams:
    """Identity on flat arrays; NIR's dims kept for export."""

    start_dim: int
    end_dim: int


MAX_LAYER_ELEMENTS = 2**25
"""Largest input or output (elements) of a conv / pool / flatten node: their shapes
come from length fields in the file, and the core allocates state per element."""


def _check_size(name: str, kind: str, *shapes: tuple[int, ...]) -> None:
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.float64))
        if size > MAX_LAYER_ELEMENTS:
            raise GraphError(
                f"node {name!r}: {kind} of shape {tuple(shape)} has {size} elements, "
                f"more than the core's limit of {MAX_LAYER_ELEMENTS}"
            )


def _pair(name: str, field: str, value: Any, ndim: int) -> tuple[int, ...]:
    """An int or a sequence of ``ndim`` ints (NIR allows both)."""
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, ndim)
    if arr.size != ndim or not np.issubdtype(arr.dtype, np.number):
        raise GraphError(f"node {name!r}: field {field!r} = {value!r} is not {ndim} integer(s)")
    if not np.all(arr == np.round(arr)):
        raise GraphError(f"node {name!r}: field {field!r} = {value!r} is not integral")
    return tuple(int(v) for v in arr)


def _read_conv(ndim: int):
    def read(name: str, node: Any) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
        weight = as_param(name, "weight", node.weight)
        if weight.ndim != ndim + 2:
            raise GraphError(
                f"node {name!r}: Conv{ndim}d weight must be {ndim + 2}-D, got {weight.shape}"
            )
        c_out, cg_in = weight.shape[:2]
        kernel = weight.shape[2:]
        stride = _pair(name, "stride", node.stride, ndim)
        dilation = _pair(name, "dilation", node.dilation, ndim)
        groups = _pair(name, "groups", node.groups, 1)[0]
        for field, values in (("stride", stride), ("dilation", dilation), ("kernel", kernel),
                              ("weight channels", (c_out, cg_in))):
            if min(values) < 1:
                raise GraphError(f"node {name!r}: {field} {tuple(values)} must be ≥ 1")
        if groups < 1 or c_out % groups:
            raise GraphError(f"node {name!r}: groups = {groups} must divide c_out = {c_out}")
        c_in = cg_in * groups
        spatial = None
        if node.input_shape is not None:
            spatial = _pair(name, "input_shape", node.input_shape, ndim)
        declared = _declared_shape(node, "input_type")
        if spatial is None and declared is not None and len(declared) == ndim + 1:
            spatial = declared[1:]
        if spatial is None:
            raise GraphError(f"node {name!r}: Conv{ndim}d has no input_shape")
        # nir's own Conv __post_init__ writes weight.shape[1] (c_in / groups) as the channels
        if declared is not None and declared[0] not in (c_in, cg_in):
            raise GraphError(
                f"node {name!r}: input has {declared[0]} channels, weight expects "
                f"{c_in} (= {cg_in} × groups {groups})"
            )
        padding = node.padding
        if isinstance(padding, bytes):
            padding = padding.decode()
        if isinstance(padding, str):
            if padding == "valid":
                lo = hi = (0,) * ndim
            elif padding == "same":
                if any(s != 1 for s in stride):
                    raise GraphError(f"node {name!r}: padding 'same' needs stride 1, got {stride}")
                total = [d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
                lo = tuple(t // 2 for t in total)
                hi = tuple(t - t // 2 for t in total)
            else:
                raise GraphError(f"node {name!r}: padding {padding!r} is not 'same' or 'valid'")
        else:
            lo = hi = _pair(name, "padding", padding, ndim)
        if min(lo) < 0:
            raise GraphError(f"node {name!r}: negative padding {lo}")
        out = tuple(
            conv_output_size(n, k, s, a, b, d)
            for n, k, s, a, b, d in zip(spatial, kernel, stride, lo, hi, dilation, strict=True)
        )
        _check_size(name, f"Conv{ndim}d", (c_in, *spatial), (c_out, *out))
        if min(out) < 1:
            raise GraphError(
                f"node {name!r}: kernel {tuple(kernel)} (dilation {dilation}) does not fit "
                f"the padded input {spatial}"
            )
        bias = as_param(name, "bias", node.bias if node.bias is not None else 0.0)
        if bias.size == 1:
            bias = np.full(c_out, float(bias.reshape(-1)[0]))
            bias.setflags(write=False)
        if bias.shape != (c_out,):
            raise GraphError(f"node {name!r}: bias shape {bias.shape} != ({c_out},)")
        if ndim == 1:
            sp2, k2, s2, lo2, d2, o2 = ((1, *spatial), (1, *kernel), (1, *stride), (0, *lo),
                                        (1, *dilation), (1, *out))
            weight4 = weight.reshape(c_out, cg_in, 1, kernel[0])
        else:
            sp2, k2, s2, lo2, d2, o2 = spatial, kernel, stride, lo, dilation, out
            weight4 = weight
        try:
            geometry = ConvGeometry(c_in, sp2[0], sp2[1], c_out, o2[0], o2[1], k2[0], k2[1],
                                    s2[0], s2[1], lo2[0], lo2[1], d2[0], d2[1], groups)
        except ConvGeometryError as exc:
            raise GraphError(f"node {name!r}: {exc}") from None
        weight4 = np.array(weight4, dtype=np.float64)
        weight4.setflags(write=False)
        params = ConvParams(weight4, bias, geometry, ndim, padding)
        return params, (c_in, *spatial), (c_out, *out)

    return read


def _write_conv(layer: Layer) -> Any:
    p: ConvParams = layer.params
    g = p.geometry
    weight = np.array(p.weight)
    padding = p.padding if isinstance(p.padding, str) else np.asarray(p.padding)
    if p.ndim == 1:
        return nir.Conv1d(input_shape=g.w_in, weight=weight[:, :, 0, :], stride=g.sx,
                          padding=padding if isinstance(padding, str) else int(g.px),
                          dilation=g.dx, groups=g.groups, bias=np.array(p.bias))
    return nir.Conv2d(input_shape=(g.h_in, g.w_in), weight=weight, stride=(g.sy, g.sx),
                      padding=padding if isinstance(padding, str) else (g.py, g.px),
                      dilation=(g.dy, g.dx), groups=g.groups, bias=np.array(p.bias))


def _read_pool(average: bool):
    kind = "AvgPool2d" if average else "SumPool2d"

    def read(name: str, node: Any) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
        kernel = _pair(name, "kernel_size", node.kernel_size, 2)
        stride = _pair(name, "stride", node.stride, 2)
        padding = _pair(name, "padding", node.padding, 2)
        declared = _declared_shape(node, "input_type")
        if declared is None or len(declared) != 3:
            raise GraphError(
                f"node {name!r}: {kind} needs input_type (c, h, w), got {declared} "
                "(nir.NIRGraph.infer_types fills it in)"
            )
        c, h, w = declared
        _check_size(name, kind, declared)
        if min(padding) < 0 or any(2 * p > k for p, k in zip(padding, kernel, strict=True)):
            raise GraphError(f"node {name!r}: padding {padding} must be in [0, kernel/2]")
        try:
            geometry = pool_geometry(c, h, w, *kernel, *stride, *padding)
        except ConvGeometryError as exc:
            raise GraphError(f"node {name!r}: {exc}") from None
        scale = 1.0 / (kernel[0] * kernel[1]) if average else 1.0
        params = PoolParams(geometry, scale, kernel, stride, padding)
        return params, (c, h, w), (c, geometry.h_out, geometry.w_out)

    return read


def _write_pool(average: bool):
    cls = nir.AvgPool2d if average else nir.SumPool2d

    def write(layer: Layer) -> Any:
        p: PoolParams = layer.params
        node = cls(kernel_size=np.array(p.kernel_size), stride=np.array(p.stride),
                   padding=np.array(p.padding))
        node.input_type = {"input": np.array(layer.input_shape)}
        node.output_type = {"output": np.array(layer.output_shape)}
        return node

    return write


def _read_flatten(name: str, node: Any) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
    declared_in = _declared_shape(node, "input_type")
    if declared_in is None:
        raise GraphError(f"node {name!r}: Flatten needs input_type")
    _check_size(name, "Flatten", declared_in)
    start = _pair(name, "start_dim", node.start_dim, 1)[0]
    end = _pair(name, "end_dim", node.end_dim, 1)[0]
    rank = len(declared_in)
    if start >= rank and start - 1 < rank:  # dims counted with a batch axis (PyTorch's habit)
        start, end = start - 1, end - 1 if end > 0 else end
    if not (-rank <= start < rank and -rank <= end < rank) or start % rank > end % rank:
        raise GraphError(
            f"node {name!r}: Flatten dims {start}..{end} don't fit input shape {declared_in}"
        )
    s, e = start % rank, end % rank
    merged = int(np.prod(declared_in[s:e + 1]))
    out = (*declared_in[:s], merged, *declared_in[e + 1:])
    declared_out = _declared_shape(node, "output_type")
    if declared_out is not None and int(np.prod(declared_out)) != int(np.prod(declared_in)):
        raise GraphError(
            f"node {name!r}: Flatten output_type {declared_out} has a different size "
            f"than its input {declared_in}"
        )
    return FlattenParams(start, end), tuple(declared_in), tuple(out)


def _write_flatten(layer: Layer) -> Any:
    p: FlattenParams = layer.params
    node = nir.Flatten(input_type={"input": np.array(layer.input_shape)},
                       start_dim=p.start_dim, end_dim=p.end_dim)
    node.output_type = {"output": np.array(layer.output_shape)}
    return node


register_kind(Kind("conv1d", nir.Conv1d, _read_conv(1), _write_conv))
register_kind(Kind("conv2d", nir.Conv2d, _read_conv(2), _write_conv))
register_kind(Kind("sum_pool2d", nir.SumPool2d, _read_pool(False), _write_pool(False)))
register_kind(Kind("avg_pool2d", nir.AvgPool2d, _read_pool(True), _write_pool(True)))
register_kind(Kind("flatten", nir.Flatten, _read_flatten, _write_flatten))


def fill_pool_shapes(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> None:
    """Give pooling nodes without an ``input_type`` their predecessor's output shape.

    NIR files store no shape for SumPool2d / AvgPool2d; nir's own reader infers
    it from the graph. Runs to a fixed point so chains of pools resolve.
    """
    for _ in range(len(nodes)):
        changed = False
        for name, node in nodes.items():
            if not isinstance(node, nir.SumPool2d | nir.AvgPool2d):
                continue
            if _declared_shape(node, "input_type") is not None:
                continue
            for a, b in edges:
                if b != name or a not in nodes:
                    continue
                shape = _declared_shape(nodes[a], "output_type")
                if shape is None or len(shape) != 3:
                    continue
                kernel = _pair(name, "kernel_size", node.kernel_size, 2)
                stride = _pair(name, "stride", node.stride, 2)
                padding = _pair(name, "padding", node.padding, 2)
                out = [(n + 2 * p - k) // s + 1
                       for n, k, s, p in zip(shape[1:], kernel, stride, padding, strict=True)]
                node.input_type = {"input": np.array(shape)}
                node.output_type = {"output": np.array([shape[0], *out])}
                changed = True
                break
        if not changed:
            return


SHAPE_HOOKS.append(fill_pool_shapes)
