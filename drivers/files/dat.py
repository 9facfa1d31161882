"""Prophesee ``.dat``: read.

A ``%`` text header, then two bytes (event type, event size), then records of
that size: u32 LE t (µs) and u32 LE data with x = bits 13..0, y = bits 27..14,
p = bits 31..28. Event types 0x00 (``Event2D``, N-CARS / ATIS) and 0x0C (``CD``)
share this 8-byte layout. The u32 clock wraps after 2^32 µs (71 min): a drop
of half the range or more counts one wrap.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
from numba import njit

from ..errors import FormatError
from ..packet import Geometry
from .base import FileHeader
from .percent_header import (
    evt_version,
    header_geometry,
    is_dat_header,
    read_percent_header,
    sniff_percent_header,
)
from .words import DONE, FULL, WordDecoder

EVENT_TYPES = {0x00: "Event2D", 0x0C: "CD"}
RECORD_BYTES = 8

_PREV, _WRAPS = range(2)


@njit(cache=True, nogil=True)
def _decode_kernel(words, pos, state, out_t, out_x, out_y, out_p):
    """``words`` are u32 pairs (t, data); ``pos`` counts pairs."""
    n = words.shape[0] // 2
    cap = out_t.shape[0]
    prev = state[_PREV]
    wraps = state[_WRAPS]
    n_out = 0
    status = DONE
    i = pos
    while i < n:
        if n_out >= cap:
            status = FULL
            break
        t = np.int64(words[2 * i])
        data = np.int64(words[2 * i + 1])
        if prev >= 0 and prev - t >= np.int64(1) << 31:
            wraps += 1
        prev = t
        out_t[n_out] = (wraps << 32) + t
        out_x[n_out] = data & 0x3FFF
        out_y[n_out] = (data >> 14) & 0x3FFF
        out_p[n_out] = (data >> 28) & 0xF
        n_out += 1
        i += 1
    state[_PREV] = prev
    state[_WRAPS] = wraps
    return n_out, i, status


class DatDecoder(WordDecoder):
    """Stateful DAT records → events (the clock wrap count carries across chunks)."""

    kernel = _decode_kernel
    record_bytes = RECORD_BYTES
    word_dtype = np.dtype("<u4")

    def __init__(self, where: str) -> None:
        self.where = where
        self.state = np.array([-1, 0], dtype=np.int64)
        self.params = (self.state,)


class DatFormat:
    name: str = "dat"
    extensions: tuple[str, ...] = (".dat",)
    label = "Prophesee DAT"

    def sniff(self, head: bytes) -> bool:
        header = sniff_percent_header(head)
        return header is not None and evt_version(header) is None and is_dat_header(header)

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        header = read_percent_header(f, where)
        f.seek(header.data_offset)
        type_size = f.read(2)
        if len(type_size) < 2:
            raise FormatError(f"{where}: byte {header.data_offset}: missing the DAT event "
                              "type and size bytes after the header")
        event_type, event_size = type_size[0], type_size[1]
        if event_type not in EVENT_TYPES:
            known = ", ".join(f"0x{k:02X}" for k in EVENT_TYPES)
            raise FormatError(f"{where}: byte {header.data_offset}: DAT event type "
                              f"0x{event_type:02X} is not supported (known: {known})")
        if event_size != RECORD_BYTES:
            raise FormatError(f"{where}: byte {header.data_offset + 1}: DAT event size "
                              f"{event_size} for type 0x{event_type:02X}, expected {RECORD_BYTES}")
        meta = dict(header.fields)
        meta["event_type"] = EVENT_TYPES[event_type]
        return FileHeader(self.name, header.data_offset + 2, header_geometry(header), meta)

    def decoder(self, header: FileHeader, where: str) -> DatDecoder:
        return DatDecoder(where)

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> None:
        return None


FORMAT = DatFormat()


def warm_up() -> None:
    """Compile the DAT kernel on a tiny input."""
    data = np.array([5, (1 << 28) | (3 << 14) | 2], dtype="<u4").tobytes()
    DatDecoder("warm-up").decode(memoryview(data), 0, True)
