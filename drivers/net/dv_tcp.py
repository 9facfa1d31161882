"""TCP client for dv-processing's ``NetworkWriter`` (the AEDAT 4.0 stream body).

On connect the server sends a u32 little-endian length and an IOHeader
flatbuffer, then packets: ``(i32 stream id, i32 size)`` and ``size`` bytes of
a size-prefixed flatbuffer (compressed as the IOHeader says). Packets of the
events (``EVTS``) stream become ``EventPacket``s; other streams are skipped.

A packet whose payload does not decode is a counted drop (its framing was
intact, the stream goes on). A framing error (a negative or huge size, a bad
IOHeader) or the server going away closes the connection; the source then
reconnects with exponential backoff, keeping its ``seq`` numbering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator

from ..errors import FormatError
from ..files.aedat4 import (
    MAX_HEADER_BYTES,
    MAX_PACKET_BYTES,
    Aedat4Header,
    decode_packet_payload,
    parse_ioheader,
)
from ..packet import EventPacket, Geometry
from ..sources import SourceStats

logger = logging.getLogger(__name__)

_PACKET_HEADER = struct.Struct("<ii")

UNKNOWN_GEOMETRY = Geometry(32768, 32768)
"""What packets say when neither the caller nor the server gave a sensor size."""


class DvTcpSource:
    """Events from a dv-processing ``NetworkWriter`` server at ``host:port``.

    ``max_connections`` bounds how many connections are made (None: forever);
    after the last one ends, ``packets()`` returns.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7777,
        *,
        name: str = "dv-tcp",
        geometry: Geometry | None = None,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        max_connections: int | None = None,
        connect_timeout_s: float = 5.0,
    ) -> None:
        if backoff_initial_s <= 0 or backoff_max_s < backoff_initial_s:
            raise ValueError(f"{name}: backoff needs 0 < initial ≤ max")
        if max_connections is not None and max_connections < 1:
            raise ValueError(f"{name}: max_connections must be at least 1")
        self.host = host
        self.port = port
        self.name = name
        self._geometry = geometry
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_connections = max_connections
        self.connect_timeout_s = connect_timeout_s
        self.stats = SourceStats()
        self.connections = 0
        self.header: Aedat4Header | None = None
        self._seq = 0
        self._offset = 0
        self._closed = False
        self._writer: asyncio.StreamWriter | None = None

    @property
    def geometry(self) -> Geometry:
        """The given geometry, else the server's IOHeader's (once connected), else
        ``UNKNOWN_GEOMETRY``: pass ``geometry`` when it must be known before connecting."""
        if self._geometry is not None:
            return self._geometry
        if self.header is not None and self.header.geometry is not None:
            return self.header.geometry
        return UNKNOWN_GEOMETRY

    def close(self) -> None:
        """Stop: the connection closes and ``packets()`` ends."""
        self._closed = True
        if self._writer is not None:
            self._writer.close()

    def _where(self) -> str:
        return f"{self.name} ({self.host}:{self.port}, connection {self.connections})"

    async def packets(self) -> AsyncIterator[EventPacket]:
        """Packets of the events stream, reconnecting when the server goes away."""
        backoff_s = self.backoff_initial_s
        while not self._closed:
            if self.max_connections is not None and self.connections >= self.max_connections:
                return
            self.connections += 1
            self.header = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.connect_timeout_s
                )
            except (OSError, TimeoutError) as exc:
                self._note_connection_error(f"{self._where()}: cannot connect: {exc}")
            else:
                self._writer = writer
                try:
                    async for packet in self.read_connection(reader):
                        yield packet
                finally:
                    self._writer = None
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
            if self._closed:
                return
            if self.max_connections is not None and self.connections >= self.max_connections:
                return
            if self.header is not None:  # this connection worked: start over gently
                backoff_s = self.backoff_initial_s
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, self.backoff_max_s)

    async def read_connection(self, reader: asyncio.StreamReader) -> AsyncIterator[EventPacket]:
        """Packets of one connection's byte stream; how it ends is noted, never raised."""
        try:
            async for packet in self._read_stream(reader):
                yield packet
        except asyncio.IncompleteReadError as exc:
            self._note_connection_error(
                f"{self._where()}: byte {self._offset}: stream ended "
                f"({len(exc.partial)} of {exc.expected} bytes read)"
            )
        except FormatError as exc:
            self.stats.count_drop("framing", str(exc), logger=logger)
        except OSError as exc:
            self._note_connection_error(f"{self._where()}: connection lost: {exc}")

    def _note_connection_error(self, message: str) -> None:
        self.stats.last_error = message
        logger.warning("%s", message)

    async def _read_stream(self, reader: asyncio.StreamReader) -> AsyncIterator[EventPacket]:
        self._offset = 0
        where = self._where()
        (size,) = struct.unpack("<I", await reader.readexactly(4))
        if size > MAX_HEADER_BYTES:
            raise FormatError(f"{where}: byte 0: IOHeader length {size} is too large")
        self._offset = 4
        header = parse_ioheader(await reader.readexactly(size), f"{where}: IOHeader at byte 4")
        self._offset += size
        events_id = header.event_stream_id
        if events_id is None:
            raise FormatError(f"{where}: byte 4: the IOHeader declares no EVTS stream")
        self.header = header
        geometry = self.geometry
        while not self._closed:
            head = await reader.readexactly(_PACKET_HEADER.size)
            stream_id, size = _PACKET_HEADER.unpack(head)
            if size < 0 or size > MAX_PACKET_BYTES:
                raise FormatError(
                    f"{where}: byte {self._offset}: packet size {size} is out of range"
                )
            payload_offset = self._offset + _PACKET_HEADER.size
            payload = await reader.readexactly(size)
            self._offset = payload_offset + size
            if stream_id != events_id:
                continue
            try:
                events = decode_packet_payload(
                    payload, header.compression, where, payload_offset
                )
            except FormatError as exc:
                self.stats.count_drop("payload", str(exc), n_bytes=size, logger=logger)
                continue
            if events is None or events.shape[0] == 0:
                continue
            self.stats.count_packet(int(events.shape[0]))
            packet = EventPacket(events, source=self.name, geometry=geometry, seq=self._seq)
            self._seq += 1
            yield packet
