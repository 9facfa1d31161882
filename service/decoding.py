"""Output spikes → actuator commands.

A decoder keeps a short memory of output activity (spike counts with an
exponential decay, ``ActivityMemory``) and, once per ``command_interval_us``
of sensor time, turns it into commands such as
``{"command": "turn", "value": -0.4}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np


class Decoder(Protocol):
    def decode(self, spikes: np.ndarray, t_us: int) -> list[dict[str, object]]: ...


class ActivityMemory:
    """Decaying spike counts per output neuron, and the command clock."""

    def __init__(self, n_out: int, command_interval_us: int, memory_us: int) -> None:
        if command_interval_us <= 0 or memory_us <= 0:
            raise ValueError("decoder: command interval and memory must be positive")
        self.counts = np.zeros(n_out)
        self.command_interval_us = command_interval_us
        self.memory_us = memory_us
        self.t_us = 0
        self.next_command_us: int | None = None

    def update(self, spikes: np.ndarray, t_us: int) -> bool:
        """Add ``spikes`` seen up to ``t_us``; True when a command is due."""
        self.counts *= math.exp(-max(t_us - self.t_us, 0) / self.memory_us)
        self.t_us = t_us
        np.add.at(self.counts, spikes["neuron"].astype(np.int64), 1.0)
        if self.next_command_us is None:
            self.next_command_us = t_us + self.command_interval_us
        if t_us < self.next_command_us:
            return False
        missed = (t_us - self.next_command_us) // self.command_interval_us
        self.next_command_us += (missed + 1) * self.command_interval_us
        return True


class TrackerDecoder:
    """Steering from a position read-out: ``turn`` (x) and ``tilt`` (y), each in [-1, 1].

    ``locate`` maps decayed counts to a position in [-1, 1]², or None when
    nothing fired; then the command is ``stop``.
    """

    def __init__(self, n_out: int,
                 locate: Callable[[np.ndarray], tuple[float, float] | None],
                 command_interval_us: int = 50_000, memory_us: int = 50_000) -> None:
        self.memory = ActivityMemory(n_out, command_interval_us, memory_us)
        self.locate = locate

    def decode(self, spikes: np.ndarray, t_us: int) -> list[dict[str, object]]:
        if not self.memory.update(spikes, t_us):
            return []
        where = self.locate(self.memory.counts)
        if where is None:
            return [{"command": "stop", "value": 0.0}]
        return [{"command": "turn", "value": round(where[0], 3)},
                {"command": "tilt", "value": round(where[1], 3)}]


class ArgmaxDecoder:
    """For classifiers: the output neuron with most recent spikes, as ``class``."""

    def __init__(self, n_out: int, command_interval_us: int = 50_000,
                 memory_us: int = 100_000) -> None:
        self.memory = ActivityMemory(n_out, command_interval_us, memory_us)

    def decode(self, spikes: np.ndarray, t_us: int) -> list[dict[str, object]]:
        if not self.memory.update(spikes, t_us):
            return []
        counts = self.memory.counts
        total = counts.sum()
        if total <= 0:
            return []
        k = int(np.argmax(counts))
        return [{"command": "class", "value": k, "confidence": round(float(counts[k] / total), 3)}]
