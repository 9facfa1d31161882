"""Clock-driven reference: every layer, every step, dense numpy. Slow and obvious.

``run_reference(graph, profile, x)`` steps the whole graph over a
``(T, *input_shape)`` raster and returns every node's output per step,
``(T, *output_shape)``. It is the oracle the event-driven core is tested
against: nothing here is lazy, sparse or clever.

Each kind has one reference function in ``REFERENCE``:
``fn(layer, profile, state, x) -> y`` on flat float64 vectors for one step,
``state`` a dict it owns (empty at rest). A node's input is the sum of its
incoming edges; a recurrent edge delivers its source's previous step (at step
0: the source's rest output, i.e. its bias, if the profile adds the recurrent
bias at the first step, else zero).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .graph import KINDS, Graph, Layer
from .profiles import (
    RESET_SUBTRACT,
    RESET_ZERO,
    Profile,
    delay_steps,
    neuron_coefficients,
)

State = dict[str, Any]
ReferenceFn = Callable[[Layer, Profile, State, np.ndarray], np.ndarray]
REFERENCE: dict[str, ReferenceFn] = {}


def register_reference(*kinds: str) -> Callable[[ReferenceFn], ReferenceFn]:
    """Decorator: the reference step function of the given kinds."""

    def wrap(fn: ReferenceFn) -> ReferenceFn:
        for kind in kinds:
            REFERENCE[kind] = fn
        return fn

    return wrap


@register_reference("input", "output")
def identity_step(layer: Layer, profile: Profile, state: State, x: np.ndarray) -> np.ndarray:
    return x


@register_reference("affine")
def affine_step(layer: Layer, profile: Profile, state: State, x: np.ndarray) -> np.ndarray:
    return np.asarray(layer.params.weight) @ x + np.asarray(layer.params.bias)


@register_reference("linear")
def linear_step(layer: Layer, profile: Profile, state: State, x: np.ndarray) -> np.ndarray:
    return np.asarray(layer.params.weight) @ x


@register_reference("scale")
def scale_step(layer: Layer, profile: Profile, state: State, x: np.ndarray) -> np.ndarray:
    return np.asarray(layer.params.scale).reshape(-1) * x


@register_reference("delay")
def delay_step(layer: Layer, profile: Profile, state: State, x: np.ndarray) -> np.ndarray:
    d = delay_steps(layer.params.delay, profile)
    if "history" not in state:
        state["history"] = np.zeros((int(d.max()) + 1, x.size))
        state["k"] = 0
    hist, k = state["history"], state["k"]
    depth = hist.shape[0]
    hist[k % depth] = x
    y = hist[(k - d) % depth, np.arange(x.size)]
    y = np.where(k - d >= 0, y, 0.0)
    state["k"] = k + 1
    return y


@register_reference("threshold", "if", "li", "lif", "cuba_li", "cuba_lif", "integrator")
def neuron_step(layer: Layer, profile: Profile, state: State, x: np.ndarray) -> np.ndarray:
    """One clock step of every neuron of the layer (see ``models.profiles``)."""
    c = state.get("coef")
    if c is None:
        c = state["coef"] = neuron_coefficients(layer, profile)
        state["v"] = np.zeros(x.size)
        state["i"] = np.zeros(x.size)
    v, i_old, th = state["v"], state["i"], c.threshold
    i_new = c.alpha * i_old + c.gain_syn * x
    r = np.zeros(x.size)
    if c.spiking and c.reset_code not in (RESET_ZERO, RESET_SUBTRACT):
        r = ((v > th) | (c.spike_at_threshold & (v >= th))).astype(np.float64)
    v = c.beta * v + c.gain_v_old * i_old + c.gain_v * i_new + c.gain_x * x + c.leak
    v = np.where(r != 0.0, v - th, v)
    count = np.zeros(x.size)
    if c.spiking:
        with np.errstate(invalid="ignore", divide="ignore"):
            if c.multi_spike:
                count = np.where(v >= th, np.floor(v / th), 0.0)
            else:
                count = ((v > th) | (c.spike_at_threshold & (v >= th))).astype(np.float64)
            if c.reset_code == RESET_ZERO:
                v = np.where(count > 0, c.v_reset, v)
            elif c.reset_code == RESET_SUBTRACT:
                v = np.where(count > 0, v - count * th, v)
            else:
                v = np.where(count != r, v - (count - r) * th, v)
    v = np.where(v < c.v_min, c.v_min, v)
    state["v"], state["i"] = v, i_new
    return count if c.spiking else v.copy()


def rest_outputs(graph: Graph, profile: Profile) -> dict[str, np.ndarray]:
    """Each node's output at rest with zero input: biases carried through linear maps."""
    rest = {layer.name: np.zeros(layer.output_size) for layer in graph.layers}
    for _ in range(len(graph.layers)):
        for layer in graph.layers:
            kind = KINDS[layer.kind]
            if kind.is_neuron or layer.kind in ("input", "delay"):
                continue
            x = np.zeros(layer.input_size)
            for e in graph.incoming(layer.name):
                x = x + rest[e.source]
            rest[layer.name] = REFERENCE[layer.kind](layer, profile, {}, x)
    return rest


def run_reference(graph: Graph, profile: Profile, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's output for each step of the (T, *input_shape) raster ``x``."""
    x = np.asarray(x, dtype=np.float64)
    n_steps = x.shape[0]
    outputs = {layer.name: np.zeros((n_steps, layer.output_size)) for layer in graph.layers}
    states: dict[str, dict[str, Any]] = {layer.name: {} for layer in graph.layers}
    rest = rest_outputs(graph, profile)
    before_start = {
        name: (value if profile.recurrent_bias_first_step else np.zeros_like(value))
        for name, value in rest.items()
    }
    input_name = graph.inputs[0]
    for k in range(n_steps):
        for layer in graph.layers:
            if layer.name == input_name:
                outputs[input_name][k] = x[k].reshape(-1)
                continue
            total = np.zeros(layer.input_size)
            for e in graph.incoming(layer.name):
                if not e.recurrent:
                    total = total + outputs[e.source][k]
                elif k > 0:
                    total = total + outputs[e.source][k - 1]
                else:
                    total = total + before_start[e.source]
            fn = REFERENCE[layer.kind]
            outputs[layer.name][k] = fn(layer, profile, states[layer.name], total)
    return {
        layer.name: outputs[layer.name].reshape((n_steps, *layer.output_shape))
        for layer in graph.layers
    }
