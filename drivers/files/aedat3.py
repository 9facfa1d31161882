"""AEDAT 3.1 (cAER / libcaer): read.

Header: ``#!AER-DAT3.1\\r\\n``, ``#`` text lines (``#Format: RAW``,
``#Source 1: DAVIS346B``...), closed by ``#!END-HEADER\\r\\n``. Then packets,
each a 28-byte little-endian header ``(i16 eventType, i16 eventSource, i32
eventSize, i32 eventTSOffset, i32 eventTSOverflow, i32 eventCapacity, i32
eventNumber, i32 eventValid)`` followed by ``eventCapacity × eventSize``
bytes. Polarity events (type 1) are 8 bytes: a u32 whose bit 0 is the valid
mark, bit 1 the polarity (1 = ON), bits 2..16 y and bits 17..31 x, then an
i32 timestamp; the full time is ``eventTSOverflow << 31 | timestamp`` µs.
Other event types (special, frames, IMU...) are skipped; invalid events too.
Coordinates are libcaer's, as stored.

The geometry comes from the source name (``DAVIS346`` → 346×260...) or a
``sizeX``/``sizeY`` pair in the header text; None when neither is there.
"""

from __future__ import annotations

import re
import struct
from typing import BinaryIO

import numpy as np
from numba import njit

from ..errors import FormatError
from ..packet import EVENT_DTYPE, Geometry
from .base import FileHeader

MAGIC = b"#!AER-DAT3.1"
END_HEADER = b"#!END-HEADER"
PACKET_HEADER = struct.Struct("<hhiiiiii")
POLARITY_EVENT = 1
POLARITY_BYTES = 8
MAX_HEADER_BYTES = 16 << 20
MAX_PACKET_BYTES = 256 << 20

# source-name pattern (lower case, letters and digits only) → geometry; specific first
SOURCES: tuple[tuple[str, Geometry], ...] = (
    ("dvxplorerlite", Geometry(320, 240)),
    ("dvxplorermini", Geometry(640, 480)),
    ("dvxplorer", Geometry(640, 480)),
    ("dvs132s", Geometry(132, 104)),
    ("davis346", Geometry(346, 260)),
    ("davis240", Geometry(240, 180)),
    ("davis640", Geometry(640, 480)),
    ("davis208", Geometry(208, 192)),
    ("davis128", Geometry(128, 128)),
    ("dvs128", Geometry(128, 128)),
)


def find_geometry(lines: list[str]) -> Geometry | None:
    """Sensor size from ``#Source`` lines, or from sizeX / sizeY values in the header."""
    for line in lines:
        body = line.lstrip("#").strip()
        if body.lower().startswith("source"):
            name = re.sub(r"[^a-z0-9]", "", body.split(":", 1)[-1].lower())
            for pattern, geometry in SOURCES:
                if pattern in name:
                    return geometry
    text = "\n".join(lines)
    sx = re.search(r"(?:dvs)?sizeX\D{0,40}?(\d+)", text, re.IGNORECASE)
    sy = re.search(r"(?:dvs)?sizeY\D{0,40}?(\d+)", text, re.IGNORECASE)
    if sx and sy and 0 < int(sx.group(1)) <= 65536 and 0 < int(sy.group(1)) <= 65536:
        return Geometry(int(sx.group(1)), int(sy.group(1)))
    return None


@njit(cache=True, nogil=True)
def _decode_polarity(buf, starts, counts, overflows, out):
    """Polarity packets (event bytes at ``starts``) → the valid events; returns n_out."""
    k = 0
    for p in range(starts.shape[0]):
        base = starts[p]
        high = overflows[p] << 31
        for i in range(counts[p]):
            j = base + 8 * i
            data = np.int64(buf[j]) | (np.int64(buf[j + 1]) << 8) | (
                np.int64(buf[j + 2]) << 16) | (np.int64(buf[j + 3]) << 24)
            if (data & 1) == 0:
                continue
            ts = np.int64(buf[j + 4]) | (np.int64(buf[j + 5]) << 8) | (
                np.int64(buf[j + 6]) << 16) | (np.int64(buf[j + 7] & 0x7F) << 24)
            o = out[k]
            o["t"] = ts | high
            o["x"] = data >> 17
            o["y"] = (data >> 2) & 0x7FFF
            o["p"] = (data >> 1) & 1
            k += 1
    return k


class Aedat3Decoder:
    """Whole packets → polarity events; other packet types skipped."""

    def __init__(self, where: str) -> None:
        self._where = where

    def decode(self, buf: memoryview, offset: int, final: bool) -> tuple[np.ndarray, int]:
        n = len(buf)
        pos = 0
        starts: list[int] = []
        counts: list[int] = []
        overflows: list[int] = []
        while pos + PACKET_HEADER.size <= n:
            at = offset + pos
            etype, _source, size, ts_offset, overflow, capacity, number, valid = (
                PACKET_HEADER.unpack_from(buf, pos)
            )
            if size <= 0 or capacity < 0 or not 0 <= valid <= number <= capacity:
                raise FormatError(
                    f"{self._where}: byte {at}: bad AEDAT 3.1 packet header (size {size}, "
                    f"capacity {capacity}, number {number}, valid {valid})"
                )
            if overflow < 0 or size * capacity > MAX_PACKET_BYTES:
                raise FormatError(f"{self._where}: byte {at}: packet of {size}×{capacity} "
                                  f"bytes (overflow {overflow}) out of range")
            end = pos + PACKET_HEADER.size + size * capacity
            if end > n:
                break
            if etype == POLARITY_EVENT:
                if size != POLARITY_BYTES or ts_offset != 4:
                    raise FormatError(f"{self._where}: byte {at}: polarity packet with event "
                                      f"size {size}, timestamp offset {ts_offset}")
                starts.append(pos + PACKET_HEADER.size)
                counts.append(number)
                overflows.append(overflow)
            pos = end
        out = np.empty(sum(counts), dtype=EVENT_DTYPE)
        if counts:
            k = _decode_polarity(
                np.frombuffer(buf, dtype=np.uint8, count=pos), np.array(starts, np.int64),
                np.array(counts, np.int64), np.array(overflows, np.int64), out,
            )
            out = out[:k]
        return out, pos


class Aedat3Format:
    """AEDAT 3.1, detected by its ``#!AER-DAT3.1`` line."""

    name = "aedat3"
    label = "AEDAT 3.1 (cAER)"
    extensions: tuple[str, ...] = ()  # detected by header only (.aedat is shared)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        start = f.tell()
        lines: list[str] = []
        pos = start
        while True:
            line = f.readline(MAX_HEADER_BYTES)
            if not line:
                raise FormatError(f"{where}: byte {pos}: AEDAT 3.1 header without #!END-HEADER")
            if not line.startswith(b"#") or not line.endswith(b"\n"):
                raise FormatError(f"{where}: byte {pos}: AEDAT 3.1 header line is not a "
                                  f"'#' text line")
            pos += len(line)
            if pos - start > MAX_HEADER_BYTES:
                raise FormatError(f"{where}: byte {pos}: AEDAT 3.1 header longer than 16 MiB")
            text = line.decode("latin-1").rstrip("\r\n")
            if not lines and not line.startswith(MAGIC):
                raise FormatError(f"{where}: byte {start}: not an AEDAT 3.1 file")
            if line.startswith(END_HEADER):
                break
            lines.append(text)
        formats = [ln.split(":", 1)[-1].strip() for ln in lines
                   if ln.lstrip("#").lower().startswith("format")]
        if formats and formats[0].upper() != "RAW":
            raise FormatError(f"{where}: byte {start}: AEDAT 3.1 format {formats[0]!r} is not "
                              f"supported (only RAW)")
        return FileHeader(self.name, pos, find_geometry(lines), {"version": "3.1"})

    def decoder(self, header: FileHeader, where: str) -> Aedat3Decoder:
        return Aedat3Decoder(where)

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> None:
        return None


FORMAT = Aedat3Format()


def warm_up() -> None:
    """Compile the polarity kernel on a tiny input."""
    one = np.ones(1, np.int64)
    _decode_polarity(np.zeros(8, np.uint8), 0 * one, one, 0 * one, np.empty(1, EVENT_DTYPE))
