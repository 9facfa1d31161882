"""Event Stream ``.es`` (version 2.x, neuromorphic-paris spec): read.

Header: ``Event Stream`` (12 ASCII bytes), major, minor, patch version bytes,
then a type byte: 0 generic, 1 DVS, 2 ATIS, 3 display, 4 color. DVS, ATIS and
color streams then give width and height as u16 LE. The body is a byte state
machine where each event stores the time since the previous event:

- DVS: in the idle state ``0xFF`` adds 127 µs (overflow) and ``0xFE`` is a
  reset (ignored); otherwise an event is 5 bytes: ``t_delta << 1 | is_increase``,
  x u16 LE, y u16 LE.
- ATIS: ``0b111111oo`` is an overflow adding ``oo × 63`` µs (``oo = 0`` is a
  reset); otherwise 5 bytes: ``t_delta << 2 | polarity << 1 | is_tc``, x, y.
  Threshold crossings (``is_tc = 1``, exposure measurements) advance time
  but are not change events, so they are skipped; DVS events keep their
  polarity.

Coordinates are returned as stored: no y flip. Generic, display and color
streams carry no ON/OFF events and are refused with a clear error.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
from numba import njit

from ..errors import FormatError
from ..packet import EVENT_DTYPE, Geometry
from .base import FileHeader

MAGIC = b"Event Stream"
TYPES = {0: "generic", 1: "dvs", 2: "atis", 3: "display", 4: "color"}
HEADER_BYTES = 20
EVENT_BYTES = 5


@njit(cache=True, nogil=True, inline="always")
def _read_address(buf, i):
    """x and y (u16 LE each) of the 5-byte DVS or ATIS event at ``buf[i]``."""
    return (np.int64(buf[i + 1]) | (np.int64(buf[i + 2]) << 8),
            np.int64(buf[i + 3]) | (np.int64(buf[i + 4]) << 8))


@njit(cache=True, nogil=True)
def _decode_dvs(buf, t0, width, height, out_t, out_x, out_y, out_p):
    """DVS state machine over whole events; returns (n_out, consumed, t, bad_index)."""
    n = buf.shape[0]
    i = 0
    k = 0
    t = t0
    while i < n:
        b = buf[i]
        if b == 0xFF:
            t += 127
            i += 1
            continue
        if b == 0xFE:
            i += 1
            continue
        if i + EVENT_BYTES > n:
            break
        x, y = _read_address(buf, i)
        if x >= width or y >= height:
            return k, i, t, i
        t += np.int64(b) >> 1
        out_t[k] = t
        out_x[k] = x
        out_y[k] = y
        out_p[k] = b & 1
        k += 1
        i += EVENT_BYTES
    return k, i, t, -1


@njit(cache=True, nogil=True)
def _decode_atis(buf, t0, width, height, out_t, out_x, out_y, out_p):
    """ATIS state machine; DVS events only (threshold crossings skipped)."""
    n = buf.shape[0]
    i = 0
    k = 0
    t = t0
    while i < n:
        b = buf[i]
        if (b & 0xFC) == 0xFC:
            t += 63 * np.int64(b & 3)
            i += 1
            continue
        if i + EVENT_BYTES > n:
            break
        x, y = _read_address(buf, i)
        if x >= width or y >= height:
            return k, i, t, i
        t += np.int64(b) >> 2
        if (b & 1) == 0:
            out_t[k] = t
            out_x[k] = x
            out_y[k] = y
            out_p[k] = (b >> 1) & 1
            k += 1
        i += EVENT_BYTES
    return k, i, t, -1


_KERNELS = {"dvs": _decode_dvs, "atis": _decode_atis}


class EventStreamDecoder:
    """Bytes → events with the running timestamp carried across chunks."""

    def __init__(self, kind: str, geometry: Geometry, where: str) -> None:
        self._kernel = _KERNELS[kind]
        self._geometry = geometry
        self._where = where
        self._t = 0

    def decode(self, buf: memoryview, offset: int, final: bool) -> tuple[np.ndarray, int]:
        data = np.frombuffer(buf, dtype=np.uint8)
        cap = data.shape[0] // EVENT_BYTES
        t = np.empty(cap, np.int64)
        x = np.empty(cap, np.uint16)
        y = np.empty(cap, np.uint16)
        p = np.empty(cap, np.uint8)
        k, used, self._t, bad = self._kernel(
            data, self._t, self._geometry.width, self._geometry.height, t, x, y, p
        )
        if bad >= 0:
            raise FormatError(
                f"{self._where}: byte {offset + bad}: event outside the "
                f"{self._geometry.width}×{self._geometry.height} sensor"
            )
        out = np.empty(k, dtype=EVENT_DTYPE)
        out["t"] = t[:k]
        out["x"] = x[:k]
        out["y"] = y[:k]
        out["p"] = p[:k]
        return out, int(used)


class EventStreamFormat:
    """Event Stream 2.x, detected by its ``Event Stream`` signature."""

    name = "eventstream"
    label = "Event Stream 2.x (.es)"
    extensions = (".es",)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        start = f.tell()
        head = f.read(HEADER_BYTES)
        if not head.startswith(MAGIC):
            raise FormatError(f"{where}: byte {start}: no 'Event Stream' signature")
        if len(head) < 16:
            raise FormatError(f"{where}: byte {start + len(head)}: truncated Event Stream header")
        major, minor, patch, kind_byte = head[12], head[13], head[14], head[15]
        if major != 2:
            raise FormatError(f"{where}: byte {start + 12}: Event Stream version "
                              f"{major}.{minor}.{patch} is not supported (2.x only)")
        kind = TYPES.get(kind_byte)
        if kind is None:
            raise FormatError(f"{where}: byte {start + 15}: unknown Event Stream type {kind_byte}")
        if kind not in _KERNELS:
            raise FormatError(f"{where}: byte {start + 15}: Event Stream type {kind!r} carries "
                              f"no ON/OFF pixel events (dvs and atis are read)")
        if len(head) < HEADER_BYTES:
            raise FormatError(f"{where}: byte {start + len(head)}: truncated sensor size")
        width = int.from_bytes(head[16:18], "little")
        height = int.from_bytes(head[18:20], "little")
        meta = {"version": f"{major}.{minor}.{patch}", "type": kind}
        return FileHeader(self.name, start + HEADER_BYTES, Geometry(width, height), meta)

    def decoder(self, header: FileHeader, where: str) -> EventStreamDecoder:
        if header.geometry is None:
            raise FormatError(f"{where}: Event Stream header without a sensor size")
        return EventStreamDecoder(header.meta["type"], header.geometry, where)

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> None:
        return None


FORMAT = EventStreamFormat()


def warm_up() -> None:
    """Compile both kernels on a tiny input."""
    data = np.array([0xFF, 2, 1, 0, 1, 0], dtype=np.uint8)
    for kernel in _KERNELS.values():
        out = (np.empty(1, np.int64), np.empty(1, np.uint16), np.empty(1, np.uint16),
               np.empty(1, np.uint8))
        kernel(data, 0, 4, 4, *out)
