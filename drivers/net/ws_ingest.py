"""Our own websocket ingest: binary frames carrying the packet dtype.

A frame is ``n × 13`` bytes: ``n`` packed ``EVENT_DTYPE`` records (t int64 µs,
x uint16, y uint16, p uint8, little-endian), nothing else. The web layer
receives frames and hands each to ``IngestSource.feed``; the source checks it
(whole records, p ≤ 1, x and y inside the geometry, time never going
backwards — inside the frame and, by default, against the frames before) and
turns what is pending into one ``EventPacket`` per wake-up.

A malformed frame is dropped whole: a counted, logged drop naming the source,
the frame and the byte offset of the first bad record. The source keeps running.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator

import numpy as np

from ..errors import FormatError
from ..packet import EVENT_DTYPE, EventPacket, Geometry
from ..sources import SourceStats

logger = logging.getLogger(__name__)

RECORD_BYTES = EVENT_DTYPE.itemsize
MAX_FRAME_BYTES = RECORD_BYTES * (1 << 20)
"""Largest frame accepted (about 1 M events); the web layer should cap messages the same."""


def decode_ingest_frame(
    frame: bytes | memoryview,
    geometry: Geometry | None,
    where: str,
    t_min_us: int | None = None,
) -> np.ndarray:
    """A frame → its events (a copy), or ``FormatError`` naming ``where`` and the byte offset."""
    n_bytes = len(frame)
    if n_bytes > MAX_FRAME_BYTES:
        raise FormatError(f"{where}: byte 0: frame of {n_bytes} bytes is over {MAX_FRAME_BYTES}")
    if n_bytes % RECORD_BYTES:
        whole = n_bytes - n_bytes % RECORD_BYTES
        raise FormatError(
            f"{where}: byte {whole}: {n_bytes % RECORD_BYTES} trailing bytes do not make a "
            f"{RECORD_BYTES}-byte event record"
        )
    events = np.frombuffer(frame, dtype=EVENT_DTYPE).copy()
    if events.shape[0] == 0:
        return events
    bad = events["p"] > 1
    if geometry is not None:
        bad |= events["x"] >= geometry.width
        bad |= events["y"] >= geometry.height
    t = events["t"]
    backwards = np.zeros(events.shape[0], dtype=bool)
    backwards[1:] = t[1:] < t[:-1]
    if t_min_us is not None:
        backwards[0] = t[0] < t_min_us
    bad |= backwards
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        e = events[i]
        if e["p"] > 1:
            what = f"polarity {int(e['p'])}"
        elif backwards[i]:
            what = f"time {int(e['t'])} µs goes backwards"
        else:
            what = f"address ({int(e['x'])}, {int(e['y'])}) outside {geometry}"
        raise FormatError(f"{where}: byte {i * RECORD_BYTES}: event {i}: {what}")
    return events


def encode_ingest_frame(events: np.ndarray) -> bytes:
    """Events → one ingest frame (what a client sends)."""
    if events.dtype != EVENT_DTYPE:
        raise FormatError(f"ingest frame: events dtype {events.dtype} is not {EVENT_DTYPE}")
    return np.ascontiguousarray(events).tobytes()


class IngestSource:
    """Events pushed by websocket clients (``feed(frame)``) → ``EventPacket``s.

    Frames wait in a bounded buffer (``max_pending_frames``; more are dropped
    as "overflow"). With ``time_order`` (default) a frame older than the last
    accepted event is malformed, so packets stay in time order whoever sends.
    """

    def __init__(
        self,
        geometry: Geometry,
        *,
        name: str = "ingest",
        max_pending_frames: int = 1024,
        time_order: bool = True,
    ) -> None:
        if max_pending_frames < 1:
            raise ValueError(f"{name}: max_pending_frames must be at least 1")
        self.geometry = geometry
        self.name = name
        self.max_pending_frames = max_pending_frames
        self.time_order = time_order
        self.stats = SourceStats()
        self.frames = 0
        self._t_last_us: int | None = None
        self._pending: deque[np.ndarray] = deque()
        self._wake = asyncio.Event()
        self._closed = False
        self._seq = 0

    def feed(self, frame: bytes | memoryview, client: str = "client") -> bool:
        """Take one binary frame; False when it was dropped (counted). Never raises."""
        index = self.frames
        self.frames += 1
        where = f"{self.name}: frame {index} from {client}"
        if self._closed:
            self.stats.count_drop("closed", f"{where}: byte 0: source closed",
                                  n_bytes=len(frame), logger=logger)
            return False
        if len(self._pending) >= self.max_pending_frames:
            self.stats.count_drop("overflow", f"{where}: byte 0: dropped, consumer behind",
                                  n_bytes=len(frame), logger=logger)
            return False
        t_min = self._t_last_us if self.time_order else None
        try:
            events = decode_ingest_frame(frame, self.geometry, where, t_min)
        except FormatError as exc:
            self.stats.count_drop("malformed", str(exc), n_bytes=len(frame), logger=logger)
            return False
        if events.shape[0]:
            self._t_last_us = int(events["t"][-1])
            self._pending.append(events)
            self._wake.set()
        return True

    def close(self) -> None:
        """Stop: ``packets()`` ends after what is pending."""
        self._closed = True
        self._wake.set()

    async def packets(self) -> AsyncIterator[EventPacket]:
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            parts = list(self._pending)
            self._pending.clear()
            events = parts[0] if len(parts) == 1 else np.concatenate(parts)
            self.stats.count_packet(int(events.shape[0]))
            yield EventPacket(events, source=self.name, geometry=self.geometry, seq=self._seq)
            self._seq += 1
