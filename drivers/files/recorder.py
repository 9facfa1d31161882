"""The recorder sink: ``EventPacket``s in, an event file out that replays to the same events.

It uses whichever writer the format registry has (``Format.writer(f, geometry)``):
AEDAT 4.0, EVT 3.0, EVT 2.0, ``.npy`` … chosen by name or by the file's
extension. The file opens at the first packet (whose geometry it records
unless one was given). Writes run in a worker thread, one at a time, so the
event loop never blocks on the disk. A packet the format cannot hold (say,
time going backwards for EVT 3.0) is a counted, logged drop; recording goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from ..errors import FormatError
from ..packet import EventPacket, Geometry
from ..sources import SourceStats
from . import formats, get_format
from .base import Format, Writer

logger = logging.getLogger(__name__)


def writable_format(path: str | Path, format: str | None = None) -> Format:
    """The format to record ``path`` in: ``format`` by name, else the first writable
    format claiming the extension (``.raw`` → EVT 3.0)."""
    if format is not None:
        return get_format(format)
    suffix = Path(path).suffix.lower()
    for fmt in formats().values():
        if suffix in fmt.extensions and _can_write(fmt):
            return fmt
    raise FormatError(f"{Path(path).name}: no writable event format for extension {suffix!r}")


def _can_write(fmt: Format) -> bool:
    import io

    try:
        return fmt.writer(io.BytesIO(), Geometry(8, 8)) is not None
    except (FormatError, ValueError):
        return False


class Recorder:
    """Writes packets to ``path``; ``await write(packet)`` or ``await consume(packets)``,
    then ``await close()`` (or use ``async with``)."""

    def __init__(
        self,
        path: str | Path,
        format: str | None = None,
        geometry: Geometry | None = None,
        *,
        name: str = "recorder",
    ) -> None:
        self.path = Path(path)
        self.format = writable_format(self.path, format)
        self.geometry = geometry
        self.name = name
        self.stats = SourceStats()
        self._file: BinaryIO | None = None
        self._writer: Writer | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    def _open(self, geometry: Geometry | None) -> Writer:
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        writer = self.format.writer(self._file, self.geometry or geometry)
        if writer is None:
            self._file.close()
            raise FormatError(f"{self.path.name}: format {self.format.name} cannot be written")
        self._writer = writer
        return writer

    def _write_sync(self, packet: EventPacket) -> None:
        writer = self._writer or self._open(packet.geometry)
        writer.write(packet.events)

    async def write(self, packet: EventPacket) -> None:
        """Append one packet's events (empty packets are skipped)."""
        if self._closed:
            raise RuntimeError(f"{self.name}: write after close")
        if len(packet) == 0:
            return
        async with self._lock:
            try:
                await asyncio.to_thread(self._write_sync, packet)
            except FormatError as exc:
                if self._writer is None:
                    raise
                self.stats.count_drop(
                    "unwritable",
                    f"{self.name}: packet {packet.seq} of {packet.source}: {exc}",
                    n_bytes=0, logger=logger,
                )
                return
            self.stats.count_packet(len(packet))

    async def consume(self, packets: AsyncIterable[EventPacket]) -> SourceStats:
        """Write every packet of ``packets``, then close; returns the counters."""
        try:
            async for packet in packets:
                await self.write(packet)
        finally:
            await self.close()
        return self.stats

    async def close(self) -> None:
        """Finish the file (writers fill in counts and trailers here)."""
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            await asyncio.to_thread(self._close_sync)

    def _close_sync(self) -> None:
        try:
            writer = self._writer or self._open(None)  # no packets: still a valid, empty file
            writer.close()
        finally:
            if self._file is not None:
                self._file.close()

    async def __aenter__(self) -> Recorder:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
