"""spikegate: an event-stream gateway for spiking neural networks.

The layers live in ``spikegate.drivers`` (sensors and sinks),
``spikegate.models`` (the event-driven SNN core) and ``spikegate.service``
(pipelines, REST, websockets, CLI).
"""

__version__ = "0.1.0"
