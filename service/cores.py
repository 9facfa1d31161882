"""A NIR ``Network`` behind the pipeline's core interface.

The sensor and the model rarely agree on geometry (a 64×64 DVS, a network
trained on 34×34 N-MNIST). ``ModelCore`` fits each event's address into the
model's input by scaling coordinates (``fit="scale"``) or by dropping what
falls outside (``fit="crop"``, counted), and merges polarities when the model
has one input channel. Output spikes come back as ``SPIKE_DTYPE`` with the
per-layer operation counts the energy meter reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numba import njit

from spikegate.drivers.packet import EVENT_DTYPE, SPIKE_DTYPE, Geometry
from spikegate.models import network as core_network
from spikegate.models.network import Network


@dataclass(slots=True)
class CoreStep:
    """One call's output: spikes, per-layer operation counts, steps run."""

    spikes: np.ndarray
    synops: dict[str, int] = field(default_factory=dict)
    neuron_updates: dict[str, int] = field(default_factory=dict)
    n_steps: int = 0

    @property
    def synops_total(self) -> int:
        return sum(self.synops.values())


def _axis_map(sensor: int, model: int, fit: str) -> np.ndarray:
    """Model coordinate of each sensor coordinate along one axis (−1: outside the model).
    ``scale``: c·model // sensor; ``crop``: c itself while below ``model``."""
    if fit == "scale":
        c = np.arange(max(sensor, 1), dtype=np.int64)
        mapped = c * model // max(sensor, 1)
    else:  # an address beyond the sensor but inside the model is kept, as it is
        mapped = np.arange(max(sensor, model, 1), dtype=np.int64)
    return np.where(mapped < model, mapped, -1)


@njit(cache=True, nogil=True)
def _fit_kernel(t, x, y, p, x_map, y_map, two_polarities, out):
    """Events through the axis maps into ``out`` (kept in order; coordinates beyond the
    maps, i.e. beyond the sensor, and mapped to −1 are dropped); returns how many."""
    k = 0
    for e in range(t.shape[0]):
        xe = np.int64(x[e])
        ye = np.int64(y[e])
        if xe >= x_map.shape[0] or ye >= y_map.shape[0]:
            continue
        mx = x_map[xe]
        my = y_map[ye]
        if mx < 0 or my < 0:
            continue
        out[k]["t"] = t[e]
        out[k]["x"] = mx
        out[k]["y"] = my
        out[k]["p"] = min(p[e], 1) if two_polarities else 0
        k += 1
    return k


class ModelCore:
    """Runs a ``Network`` on a source's events, fitted to the model's (P, H, W) input."""

    def __init__(self, network: Network, geometry: Geometry,
                 fit: Literal["scale", "crop"] = "scale", hold_last_step: bool = False) -> None:
        self.network = network
        self.geometry = geometry
        self.fit = fit
        # False: run through the last event's step now (lowest latency; an event
        # that arrives later for that step counts as late, ``n_late``). True: hold
        # that step until the next packet, so the spikes are exactly the
        # clock-driven ones whatever the packet boundaries.
        self.hold_last_step = hold_last_step
        self.late = 0
        self.n_p, self.n_y, self.n_x = network.event_shape
        self.outside = 0  # events dropped by ``crop``
        self.output_size = network.output_size
        self._x_map = _axis_map(geometry.width, self.n_x, fit)
        self._y_map = _axis_map(geometry.height, self.n_y, fit)

    @property
    def stages(self) -> dict[str, object]:
        """The network's stages (where precision and pruning find the weights)."""
        return self.network.stages

    def fit_events(self, events: np.ndarray) -> np.ndarray:
        """Source addresses → model input addresses (a new array)."""
        out = np.empty(events.shape[0], dtype=EVENT_DTYPE)
        n = _fit_kernel(events["t"], events["x"], events["y"], events["p"], self._x_map,
                        self._y_map, self.n_p == 2, out)
        if n < out.shape[0]:
            self.outside += out.shape[0] - n
            out = out[:n]
        return out

    def step(self, events: np.ndarray) -> CoreStep:
        result = self.network.step(self.fit_events(events), flush=not self.hold_last_step)
        self.late += int(result.n_late)
        spikes = np.empty(result.events.shape[0], dtype=SPIKE_DTYPE)
        spikes["t"] = result.events["t"]
        spikes["neuron"] = result.events["x"]
        return CoreStep(spikes, dict(result.synops), dict(result.neuron_updates),
                        int(result.n_steps))

    def reset_state(self) -> None:
        self.network.reset_state()

    def warm_up(self) -> None:
        """Compile the core's kernels, then run this network once from rest."""
        core_network.warm_up()
        # one event and two: numba types a one-event packet's columns as contiguous,
        # longer ones as strided, and compiles each kind once
        for n in (1, 2):
            self.step(np.zeros(n, dtype=EVENT_DTYPE))
            self.network.reset_state()
        self.late = self.outside = 0
