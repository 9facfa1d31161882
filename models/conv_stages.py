"""Run-time stages of Conv1d / Conv2d, SumPool2d / AvgPool2d and Flatten.

Each input event scatters its kernel (``kernels.conv``) or its pooling windows
(``kernels.pool``) onto exactly the outputs it reaches; a step's output holds
one entry per output touched. Biases are constants folded into the neurons
downstream (``map_constant``), as for dense layers. Flatten only renames
shapes: flat C-order indices pass through unchanged.
"""

from __future__ import annotations

import numpy as np

from .conv_kinds import ConvParams, PoolParams
from .graph import Layer
from .kernels.conv import output_capacity, scatter_batch, scatter_steps
from .profiles import Profile
from .signal import Signal, empty_signal
from .stages import Stage, register_stage


def _dense_map(layer: Layer, constant: np.ndarray) -> np.ndarray:
    """A constant input frame through a conv / pool layer (flat in, flat out)."""
    params = layer.params
    g = params.geometry
    src = np.flatnonzero(constant).astype(np.int64)
    amount = np.ascontiguousarray(constant.reshape(-1)[src], dtype=np.float64)
    acc = np.zeros(g.n_out)
    flag = np.zeros(g.n_out, np.uint8)
    touched = np.empty(g.n_out, np.int64)
    if isinstance(params, ConvParams):
        scatter_batch(src, amount, g.as_array(), params.weight.ravel(), acc, flag, touched)
        acc += params.bias_per_output
    else:
        scatter_batch(src, amount, g.as_array(), float(params.scale), acc, flag, touched)
    return acc


class _ScatterStage(Stage):
    def __init__(self, layer: Layer, profile: Profile) -> None:
        super().__init__(layer, profile)
        g = layer.params.geometry
        self.geom = g.as_array()
        self.acc = np.zeros(g.n_out)
        self.mark = np.zeros(g.n_out, np.uint8)
        self.touched = np.empty(g.n_out, np.int64)
        self.counters = np.zeros(1, np.int64)

    @staticmethod
    def map_constant(layer: Layer, constant: np.ndarray) -> np.ndarray:
        return _dense_map(layer, np.asarray(constant, dtype=np.float64))

    def reset_state(self) -> None:
        super().reset_state()
        self.counters[0] = 0

    @property
    def kernel(self) -> np.ndarray | float:
        """What ``scatter_steps`` scatters: the flat weights (conv) or the window scale (pool)."""
        raise NotImplementedError

    def advance(self, k0: int, k1: int, inp: Signal) -> Signal:
        if not len(inp):
            return empty_signal()
        cap = output_capacity(self.layer.params.geometry, inp.step)
        out = Signal(np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap))
        before = int(self.counters[0])
        n = scatter_steps(inp.step, inp.idx, inp.val, self.geom, self.kernel, self.acc,
                          self.mark, self.touched, out.step, out.idx, out.val, self.counters)
        self.synops += int(self.counters[0]) - before
        return Signal(out.step[:n], out.idx[:n], out.val[:n])


@register_stage
class ConvStage(_ScatterStage):
    """Conv1d / Conv2d: each input event scatters its kernel."""

    kinds = ("conv1d", "conv2d")

    def __init__(self, layer: Layer, profile: Profile) -> None:
        super().__init__(layer, profile)
        self.weight = np.ascontiguousarray(layer.params.weight, dtype=np.float64).ravel()

    @property
    def kernel(self) -> np.ndarray:
        return self.weight  # read at each call: the weight bank may swap the array


@register_stage
class PoolStage(_ScatterStage):
    """SumPool2d / AvgPool2d: each input event adds to the windows that hold it."""

    kinds = ("sum_pool2d", "avg_pool2d")

    def __init__(self, layer: Layer, profile: Profile) -> None:
        super().__init__(layer, profile)
        params: PoolParams = layer.params
        self.scale = float(params.scale)

    @property
    def kernel(self) -> float:
        return self.scale


@register_stage
class FlattenStage(Stage):
    """Flatten: the identity on flat indices."""

    kinds = ("flatten",)
