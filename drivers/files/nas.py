"""Headerless NAS cochlea AEDAT (Neuromorphic Auditory Sensor, jAER AEDAT 1.0 style): read, write.

Each record is 6 bytes: a big-endian u16 address, then a big-endian u32
timestamp in 0.2 µs ticks. ``channel = address >> 1`` and the low bit is the
polarity, ON when it is 0 (``p = 1 - (address & 1)``). Events come out as
``x = channel``, ``y = 0``, ``t`` in µs = ``ticks // 5`` (floor: a tick
count that is not a multiple of 5 loses its sub-µs part; the writer stores
``t_us * 5``, so written files read back exactly). A u32 tick counter wraps
every ~859 s: a step back of more than 2**31 ticks is taken as a wrap.

Detection. The file has no header and no magic, so any bytes would "decode".
``nas`` is therefore chosen either by name (``format="nas"``, the reliable
way) or, by ``detect``, only for a ``.aedat`` file whose start matched no
registered header (AEDAT 2.0/3.1/4.0 all begin with ``#!AER-DAT``), and
``read_header`` then refuses a file that starts with ``#!AER-DAT`` or whose
size is not a multiple of 6. That rejects most foreign files (5 in 6 random
sizes) but not all: a headerless file is a guess, and the CLI states the
chosen format so a wrong one is visible.

The geometry is ``(channels, 1)``, channels = the largest channel in the file
+ 1, found by a constant-memory scan in ``read_header``.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
from numba import njit

from ..errors import FormatError
from ..packet import EVENT_DTYPE, Geometry
from .base import CHUNK_BYTES, FileHeader, RecordDecoder, RecordWriter, refuse_aedat_header

RECORD_BYTES = 6
TICKS_PER_US = 5
RECORD_DTYPE = np.dtype([("a", ">u2"), ("t", ">u4")])
_WRAP = 1 << 32


@njit(cache=True, nogil=True)
def _decode_records(buf, last_ticks, wraps, out):
    """(BE u16 address, BE u32 ticks) records → events; returns (n, last ticks, wraps)."""
    n = buf.shape[0] // RECORD_BYTES
    for i in range(n):
        j = i * RECORD_BYTES
        a = (np.int64(buf[j]) << 8) | np.int64(buf[j + 1])
        ticks = (np.int64(buf[j + 2]) << 24) | (np.int64(buf[j + 3]) << 16) | (
            np.int64(buf[j + 4]) << 8) | np.int64(buf[j + 5])
        if last_ticks >= 0 and last_ticks - ticks > 0x80000000:
            wraps += 1
        last_ticks = ticks
        o = out[i]
        o["t"] = (ticks + (wraps << 32)) // TICKS_PER_US
        o["x"] = a >> 1
        o["y"] = 0
        o["p"] = 1 - (a & 1)
    return n, last_ticks, wraps


class NasDecoder(RecordDecoder):
    """Whole 6-byte records → events; the tick wrap state carries across chunks."""

    record_bytes = RECORD_BYTES

    def __init__(self, where: str) -> None:
        self._where = where
        self._last_ticks = -1
        self._wraps = 0

    def _decode_records(self, data: np.ndarray, out: np.ndarray) -> int:
        n, self._last_ticks, self._wraps = _decode_records(data, self._last_ticks, self._wraps,
                                                           out)
        return n


class NasWriter(RecordWriter):
    """Events → headerless NAS records (x = channel, p = 1 is ON, t_us × 5 ticks)."""

    def _encode(self, events: np.ndarray) -> bytes:
        if int(events["x"].max()) > 0x7FFF or int(events["t"].min()) < 0:
            raise ValueError("NAS stores channels up to 32767 and non-negative times")
        raw = np.empty(events.shape[0], dtype=RECORD_DTYPE)
        raw["a"] = (events["x"].astype(np.uint16) << 1) | (events["p"] == 0)
        raw["t"] = (events["t"] * TICKS_PER_US) % _WRAP
        return raw.tobytes()


class NasFormat:
    """Headerless NAS cochlea AEDAT: by name, or ``.aedat`` with no header."""

    name = "nas"
    label = "NAS cochlea (headerless AEDAT, 0.2 µs ticks)"
    extensions = (".aedat",)

    def sniff(self, head: bytes) -> bool:
        return False  # no magic: never claimed from content alone

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        start = refuse_aedat_header(f, where, "a headerless NAS file")
        max_channel = -1
        size = 0
        carry = b""
        while True:
            data = f.read(CHUNK_BYTES)
            if not data:
                break
            size += len(data)
            buf = carry + data
            n = len(buf) // RECORD_BYTES
            if n:
                raw = np.frombuffer(buf, dtype=RECORD_DTYPE, count=n)
                max_channel = max(max_channel, int(raw["a"].max()) >> 1)
            carry = buf[n * RECORD_BYTES:]
        f.seek(start)
        if size % RECORD_BYTES:
            raise FormatError(
                f"{where}: byte {size - size % RECORD_BYTES}: size {size} is not a multiple of "
                f"{RECORD_BYTES} bytes: not a headerless NAS file (or truncated)"
            )
        geometry = Geometry(max_channel + 1, 1) if max_channel >= 0 else None
        return FileHeader(self.name, start, geometry, {"tick_us": "0.2"})

    def decoder(self, header: FileHeader, where: str) -> NasDecoder:
        return NasDecoder(where)

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> NasWriter:
        return NasWriter(f)


FORMAT = NasFormat()


def warm_up() -> None:
    """Compile the record kernel on a tiny input."""
    _decode_records(np.zeros(6, np.uint8), -1, 0, np.empty(1, dtype=EVENT_DTYPE))
