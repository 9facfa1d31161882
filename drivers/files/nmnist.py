"""N-MNIST / N-Caltech101 ``.bin`` (Orchard et al., ATIS saccades): read, write.

Each event is 40 bits: byte 0 = x, byte 1 = y, then 24 big-endian bits whose
top bit is the polarity (1 = ON) and whose low 23 bits are the timestamp in
µs. A record with ``y == 240`` is a timestamp-overflow marker, not an event:
it adds 2**13 µs to every later timestamp (the dataset's reference reader,
which tonic follows). The sensor is 34×34 for N-MNIST.

There is no magic: the format is chosen by the ``.bin`` extension (or by
name), never by content.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
from numba import njit

from ..packet import EVENT_DTYPE, Geometry
from .base import FileHeader, RecordDecoder, RecordWriter, refuse_aedat_header

RECORD_BYTES = 5
OVERFLOW_Y = 240
OVERFLOW_STEP_US = 1 << 13
GEOMETRY = Geometry(34, 34)


@njit(cache=True, nogil=True)
def _decode_records(buf, overflows, out):
    """40-bit records → events in ``out``; returns (n_out, overflow count so far)."""
    n = buf.shape[0] // RECORD_BYTES
    k = 0
    for i in range(n):
        j = i * RECORD_BYTES
        if buf[j + 1] == OVERFLOW_Y:
            overflows += 1
            continue
        b2 = np.int64(buf[j + 2])
        o = out[k]
        o["t"] = ((b2 & 0x7F) << 16 | np.int64(buf[j + 3]) << 8 | np.int64(buf[j + 4])) + (
            overflows * OVERFLOW_STEP_US)
        o["x"] = buf[j]
        o["y"] = buf[j + 1]
        o["p"] = b2 >> 7
        k += 1
    return k, overflows


class NmnistDecoder(RecordDecoder):
    """Whole 5-byte records → events; the overflow count carries across chunks."""

    record_bytes = RECORD_BYTES

    def __init__(self, where: str) -> None:
        self._where = where
        self._overflows = 0

    def _decode_records(self, data: np.ndarray, out: np.ndarray) -> int:
        k, self._overflows = _decode_records(data, self._overflows, out)
        return k


class NmnistWriter(RecordWriter):
    """Events → 40-bit records (t < 2**23 µs, x and y < 256, y ≠ 240)."""

    def _encode(self, events: np.ndarray) -> bytes:
        t = events["t"]
        if int(t.min()) < 0 or int(t.max()) >= 1 << 23:
            raise ValueError("N-MNIST .bin stores t in 0 .. 2**23 - 1 µs")
        if int(events["x"].max()) > 255 or int(events["y"].max()) > 255 or bool(
            (events["y"] == OVERFLOW_Y).any()
        ):
            raise ValueError("N-MNIST .bin stores x, y in 0..255 and reserves y = 240")
        raw = np.empty((events.shape[0], RECORD_BYTES), dtype=np.uint8)
        raw[:, 0] = events["x"]
        raw[:, 1] = events["y"]
        raw[:, 2] = ((t >> 16) & 0x7F) | ((events["p"] != 0).astype(np.int64) << 7)
        raw[:, 3] = (t >> 8) & 0xFF
        raw[:, 4] = t & 0xFF
        return raw.tobytes()


class NmnistFormat:
    """N-MNIST 40-bit ``.bin``: by extension only."""

    name = "nmnist"
    label = "N-MNIST 40-bit .bin"
    extensions = (".bin",)

    def sniff(self, head: bytes) -> bool:
        return False  # no magic

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        start = refuse_aedat_header(f, where, "an N-MNIST .bin file")
        return FileHeader(self.name, start, GEOMETRY, {})

    def decoder(self, header: FileHeader, where: str) -> NmnistDecoder:
        return NmnistDecoder(where)

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> NmnistWriter:
        return NmnistWriter(f)


FORMAT = NmnistFormat()


def warm_up() -> None:
    """Compile the record kernel on a tiny input."""
    _decode_records(np.zeros(5, np.uint8), 0, np.empty(1, dtype=EVENT_DTYPE))
