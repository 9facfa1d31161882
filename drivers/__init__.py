"""Sources and sinks of ``EventPacket``s: files, network ingest, audio, actuators."""

from .errors import FormatError
from .packet import EVENT_DTYPE, EventPacket, Geometry, as_events, empty_events, make_events

__all__ = [
    "EVENT_DTYPE",
    "EventPacket",
    "FormatError",
    "Geometry",
    "as_events",
    "empty_events",
    "make_events",
]
