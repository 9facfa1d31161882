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

    @property
    def stages(self) -> dict[str, object]:
        """The network's stages (where precision and pruning find the weights)."""
        return self.network.stages

    def fit_events(self, events: np.ndarray) -> np.ndarray:
        """Source addresses → model input addresses (a new array)."""
        out = np.empty(events.shape[0], dtype=EVENT_DTYPE)
        out["t"] = events["t"]
        x = events["x"].astype(np.int64)
        y = events["y"].astype(np.int64)
        if self.fit == "scale":
            x = x * self.n_x // max(self.geometry.width, 1)
            y = y * self.n_y // max(self.geometry.height, 1)
        keep = (x < self.n_x) & (y < self.n_y)  # scale: only events beyond the sensor
        out["x"] = np.where(keep, x, 0)
        out["y"] = np.where(keep, y, 0)
        out["p"] = np.minimum(events["p"], 1) if self.n_p == 2 else 0
        if not keep.all():
            self.outside += int(np.count_nonzero(~keep))
            out = out[keep]
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
        probe = np.zeros(1, dtype=EVENT_DTYPE)
        self.step(probe)
        self.network.reset_state()
