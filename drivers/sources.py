"""What every live source shares: its counters and the error it raises when it cannot start.

A live source is a class with ``async def packets(self) -> AsyncIterator[EventPacket]``
and a ``stats`` attribute (``SourceStats``) that the service exposes. Bad input on
a live source is never an exception: it is a counted drop, logged with the
source's name and the byte offset, and the source keeps running.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

LOG_INTERVAL_S = 1.0
"""At most one drop log line per source and reason in this interval (floods stay quiet)."""


class SourceUnavailableError(RuntimeError):
    """A live source cannot start (missing optional package, no device): a one-line sentence."""


@dataclass(slots=True)
class SourceStats:
    """Counters of one live source.

    ``dropped`` counts dropped datagrams / frames / samples by reason;
    ``dropped_bytes`` the bytes they held (where bytes make sense);
    ``last_error`` is the last drop or connection message.
    """

    packets: int = 0
    events: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    dropped_bytes: int = 0
    last_error: str = ""
    _last_log: dict[str, float] = field(default_factory=dict, repr=False)

    def count_packet(self, n_events: int) -> None:
        self.packets += 1
        self.events += n_events

    def count_drop(
        self,
        reason: str,
        message: str,
        *,
        n: int = 1,
        n_bytes: int = 0,
        logger: logging.Logger | None = None,
    ) -> None:
        """Count ``n`` drops for ``reason``; remember and (rate-limited) log ``message``."""
        self.dropped[reason] = self.dropped.get(reason, 0) + n
        self.dropped_bytes += n_bytes
        self.last_error = message
        if logger is not None:
            now = time.monotonic()
            if now - self._last_log.get(reason, -1e9) >= LOG_INTERVAL_S:
                self._last_log[reason] = now
                logger.warning("%s (%d %s drops so far)", message, self.dropped[reason], reason)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def as_dict(self) -> dict[str, object]:
        """JSON-able counters (for REST and metrics)."""
        return {
            "packets": self.packets,
            "events": self.events,
            "dropped": dict(self.dropped),
            "dropped_total": self.dropped_total,
            "dropped_bytes": self.dropped_bytes,
            "last_error": self.last_error,
        }
