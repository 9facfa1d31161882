"""Replay an event file as a source of ``EventPacket``s.

The file is read chunk by chunk in a worker thread (``asyncio.to_thread``) so
the event loop stays free; each chunk is cut into packets of at most
``packet_events`` events, numbered per source from 0. With ``speed`` set, the
sensor clock is mapped to the wall clock: a packet is released when the wall
time since the first packet reaches (its last event's t − the first t) /
speed, so ``speed=1.0`` is real time and ``2.0`` twice as fast; ``None``
replays as fast as the consumer takes packets. With ``loop`` the file
replays forever, each pass shifted so timestamps keep increasing (the next
pass starts 1 µs after the previous one's last event).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import FormatError
from ..packet import EventPacket, Geometry
from ..sources import SourceStats
from . import detect, get_format, open_events
from .base import CHUNK_BYTES, Format, describe
from .tools import inspect_file


class FileSource:
    """Replays ``path`` (format detected, or ``format``) as packets; see the module docstring.

    ``geometry`` overrides the file's; a file whose header names no geometry
    is scanned once at construction (streaming) for its x/y extent. ``clock``
    and ``sleep`` default to the running loop's clock and ``asyncio.sleep``
    (tests pass fakes).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        name: str = "file",
        format: str | None = None,
        speed: float | None = None,
        loop: bool = False,
        packet_events: int = 4096,
        geometry: Geometry | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if packet_events < 1:
            raise ValueError(f"file source {name}: packet_events must be ≥ 1, "
                             f"got {packet_events}")
        if speed is not None and not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"file source {name}: speed must be > 0 or None, got {speed}")
        self.path = Path(path)
        self.name = name
        self.speed = speed
        self.loop = loop
        self.packet_events = packet_events
        self.chunk_bytes = chunk_bytes
        self.clock = clock
        self.sleep = sleep
        self.stats = SourceStats()
        self.format: Format = get_format(format) if format else detect(self.path)
        self.passes = 0
        with open(self.path, "rb") as f:
            header, _ = open_events(f, describe(self.path), self.format, chunk_bytes)
        self._geometry = geometry or header.geometry or self._scan_geometry()

    @property
    def geometry(self) -> Geometry:
        return self._geometry

    def _scan_geometry(self) -> Geometry:
        info = inspect_file(self.path, self.format.name)
        if not info["count"]:
            return Geometry(1, 1)
        return Geometry(int(info["x_max"]) + 1, int(info["y_max"]) + 1)

    def _open(self) -> tuple[BinaryIO, Iterator[np.ndarray]]:
        f = open(self.path, "rb")  # noqa: SIM115 - closed by packets() when the pass ends
        try:
            _, chunks = open_events(f, describe(self.path), self.format, self.chunk_bytes)
        except BaseException:
            f.close()
            raise
        return f, chunks

    async def packets(self) -> AsyncIterator[EventPacket]:
        """Packets of at most ``packet_events`` events, paced by ``speed``, looping if asked."""
        clock = self.clock or asyncio.get_running_loop().time
        seq = 0
        offset_us = 0
        wall_start: float | None = None
        t_start_us = 0
        while True:
            f, chunks = await asyncio.to_thread(self._open)
            pass_first_us: int | None = None
            pass_max_us = 0
            try:
                while True:
                    events = await asyncio.to_thread(next, chunks, None)
                    if events is None:
                        break
                    if len(events) == 0:
                        continue
                    if not events.flags.writeable:  # npy records: a view of the read
                        events = events.copy()  # packets downstream own their events
                    if offset_us:
                        events["t"] += offset_us
                    if pass_first_us is None:
                        pass_first_us = int(events["t"][0])
                    pass_max_us = max(pass_max_us, int(events["t"].max()))
                    for start in range(0, len(events), self.packet_events):
                        part = events[start : start + self.packet_events]
                        if self.speed is None:
                            await asyncio.sleep(0)
                        else:
                            t_last = int(part["t"][-1])
                            if wall_start is None:
                                wall_start, t_start_us = clock(), int(part["t"][0])
                            due = wall_start + (t_last - t_start_us) / (self.speed * 1e6)
                            delay = due - clock()
                            if delay > 0:
                                await self.sleep(delay)
                        packet = EventPacket(part, source=self.name, geometry=self._geometry,
                                             seq=seq)
                        seq += 1
                        self.stats.count_packet(len(part))
                        yield packet
            except FormatError as exc:
                self.stats.last_error = str(exc)
                raise
            finally:
                f.close()
            self.passes += 1
            if not self.loop or pass_first_us is None:
                return
            offset_us += pass_max_us - pass_first_us + 1
