"""The one packet type: a batch of address-events plus a small header.

Every layer moves ``EventPacket``s. Events are a numpy structured array with
the fields of ``EVENT_DTYPE`` in this order: ``t`` (int64, µs, the sensor's
clock), ``x`` (uint16), ``y`` (uint16), ``p`` (uint8, 1 = ON). A 1-D sensor (a
cochlea channel, an actuator channel) uses ``x`` as the channel and ``y = 0``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from .errors import FormatError

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
"""(t µs int64, x uint16, y uint16, p uint8): 13 bytes packed, little-endian."""


class Geometry(NamedTuple):
    """Sensor geometry: width (x range), height (y range), number of polarities."""

    width: int
    height: int
    polarities: int = 2

    @property
    def n_addresses(self) -> int:
        return self.width * self.height * self.polarities


def empty_events(n: int = 0) -> np.ndarray:
    """A zeroed event array of length ``n``."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def make_events(
    t: np.ndarray | list[int],
    x: np.ndarray | list[int],
    y: np.ndarray | list[int] | int = 0,
    p: np.ndarray | list[int] | int = 1,
) -> np.ndarray:
    """Build an event array from columns (scalars broadcast)."""
    t_arr = np.asarray(t, dtype=np.int64)
    events = np.empty(t_arr.shape[0], dtype=EVENT_DTYPE)
    events["t"] = t_arr
    events["x"] = x
    events["y"] = y
    events["p"] = p
    return events


def as_events(array: np.ndarray, where: str = "events") -> np.ndarray:
    """Return ``array`` as a contiguous ``EVENT_DTYPE`` array, converting fields by name.

    Accepts any structured array that has the fields t, x, y, p (any order,
    any integer width); raises ``FormatError`` naming ``where`` otherwise.
    """
    if array.dtype == EVENT_DTYPE:
        return np.ascontiguousarray(array)
    names = array.dtype.names or ()
    missing = [f for f in EVENT_DTYPE.names or () if f not in names]
    if missing:
        raise FormatError(f"{where}: missing event field(s) {', '.join(missing)}")
    out = np.empty(array.shape[0], dtype=EVENT_DTYPE)
    for name in EVENT_DTYPE.names or ():
        out[name] = array[name]
    return out


@dataclass(slots=True)
class EventPacket:
    """A batch of events from one source, in time order, with its header.

    ``seq`` counts packets per source from 0: a gap means packets were lost
    upstream. ``ingress_ns`` is ``time.monotonic_ns()`` when the packet entered
    the gateway, the start of end-to-end latency.
    """

    events: np.ndarray
    source: str
    geometry: Geometry
    seq: int = 0
    ingress_ns: int = field(default_factory=time.monotonic_ns)

    def __post_init__(self) -> None:
        if self.events.dtype != EVENT_DTYPE:
            raise FormatError(
                f"{self.source}: packet {self.seq}: events dtype {self.events.dtype} "
                f"is not {EVENT_DTYPE}"
            )

    def __len__(self) -> int:
        return int(self.events.shape[0])

    @property
    def t_first_us(self) -> int:
        return int(self.events["t"][0]) if len(self) else 0

    @property
    def t_last_us(self) -> int:
        return int(self.events["t"][-1]) if len(self) else 0

    def with_events(self, events: np.ndarray) -> EventPacket:
        """The same header with other events (what pure packet operations return)."""
        return replace(self, events=events)


SPIKE_DTYPE = np.dtype([("t", "<i8"), ("neuron", "<u4")])
"""An output spike: time (µs, the input clock) and output neuron index."""


@dataclass(slots=True)
class OutputPacket:
    """What the core made of one ``EventPacket``: output spikes and decoded commands.

    ``commands`` are small JSON-able dicts such as ``{"command": "turn", "value": -0.4}``.
    ``seq`` and ``ingress_ns`` are the input packet's, so sinks can measure
    end-to-end latency.
    """

    pipeline: str
    seq: int
    ingress_ns: int
    t_us: int
    spikes: np.ndarray
    commands: list[dict[str, object]] = field(default_factory=list)
    synops: int = 0
    events_in: int = 0

    def to_json(self) -> dict[str, object]:
        """The JSON message sinks send (spikes as counts; binary frames carry arrays).

        ``ingress_ns`` is the gateway's monotonic clock: comparable only on
        the gateway's host (benchmarks, co-located clients).
        """
        return {
            "pipeline": self.pipeline,
            "seq": self.seq,
            "t_us": self.t_us,
            "ingress_ns": self.ingress_ns,
            "events_in": self.events_in,
            "spikes": int(self.spikes.shape[0]),
            "synops": self.synops,
            "commands": self.commands,
        }
