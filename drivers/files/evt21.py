"""Prophesee EVT 2.1 ``.raw``: read.

64-bit words. The upper 32 bits hold the type (bits 63..60) and, for CD
words, t low (59..54), x base (53..43) and y (42..32); the lower 32 bits are a
validity mask: one event at (x base + k, y) per set bit k, in rising k.

====  =============  =======================================================
type  name           meaning
====  =============  =======================================================
0x0   EVT_NEG        CD events, p = 0
0x1   EVT_POS        CD events, p = 1
0x8   EVT_TIME_HIGH  bits 59..32: t bits 33..6
0xA   EXT_TRIGGER    skipped
0xE   OTHERS         skipped
0xF   CONTINUED      skipped
====  =============  =======================================================

Byte order: ``% format EVT21`` is one little-endian 64-bit word (GenX320: the
mask comes first in the file); ``% format EVT21;endianness=legacy`` and
files that only say ``% evt 2.1`` (IMX636 recordings) store the upper 32-bit
half first, each half little-endian. Words before the first TIME_HIGH are
skipped; a TIME_HIGH that drops by half its range or more is a wrap of the
34-bit clock (+2^34 µs).
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
from numba import njit

from ..packet import Geometry
from .base import FileHeader
from .percent_header import (
    evt_version,
    format_options,
    read_raw_header,
    sniff_percent_header,
)
from .words import DONE, FULL, WordDecoder, bit_index

WORD_BYTES = 8
_HIGH_RANGE = 1 << 28

_STARTED, _HIGH, _LOOP = range(3)


@njit(cache=True, nogil=True)
def _decode_kernel(halves, pos, upper_first, state, out_t, out_x, out_y, out_p):
    """``halves`` are u32 pairs; ``pos`` counts 64-bit words."""
    n = halves.shape[0] // 2
    cap = out_t.shape[0]
    started = state[_STARTED]
    high = state[_HIGH]
    loop = state[_LOOP]
    n_out = 0
    status = DONE
    i = pos
    while i < n:
        if upper_first:
            upper = np.int64(halves[2 * i])
            mask = np.int64(halves[2 * i + 1])
        else:
            mask = np.int64(halves[2 * i])
            upper = np.int64(halves[2 * i + 1])
        kind = upper >> 28
        if kind == 0x8:
            new_high = upper & 0x0FFFFFFF
            if started != 0 and high - new_high >= _HIGH_RANGE // 2:
                loop += 1
            high = new_high
            started = 1
        elif kind <= 0x1 and started != 0:
            if n_out + 32 > cap:
                status = FULL
                break
            t = (loop << 34) + (high << 6) + ((upper >> 22) & 0x3F)
            x0 = (upper >> 11) & 0x7FF
            y = upper & 0x7FF
            while mask != 0:
                bit = mask & -mask
                out_t[n_out] = t
                out_x[n_out] = x0 + bit_index(bit)
                out_y[n_out] = y
                out_p[n_out] = kind
                n_out += 1
                mask ^= bit
        i += 1
    state[_STARTED] = started
    state[_HIGH] = high
    state[_LOOP] = loop
    return n_out, i, status


class Evt21Decoder(WordDecoder):
    """Stateful EVT 2.1 words → events; the time base carries across chunks."""

    kernel = _decode_kernel
    record_bytes = WORD_BYTES
    word_dtype = np.dtype("<u4")
    events_per_word = 4.0
    max_per_word = 32

    def __init__(self, where: str, upper_first: bool) -> None:
        self.where = where
        self.upper_first = upper_first
        self.state = np.zeros(3, dtype=np.int64)
        self.params = (upper_first, self.state)


class Evt21Format:
    name: str = "evt21"
    extensions: tuple[str, ...] = (".raw",)
    label = "Prophesee EVT 2.1"

    def sniff(self, head: bytes) -> bool:
        header = sniff_percent_header(head)
        return header is not None and evt_version(header) == "2.1"

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        found, header = read_raw_header(f, where, self.name, "2.1")
        name, options = format_options(header)
        endianness = options.get("endianness", "legacy" if name is None else "")
        found.meta["word_order"] = "upper-first" if endianness == "legacy" else "mask-first"
        return found

    def decoder(self, header: FileHeader, where: str) -> Evt21Decoder:
        return Evt21Decoder(where, header.meta.get("word_order") == "upper-first")

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> None:
        return None


FORMAT = Evt21Format()


def warm_up() -> None:
    """Compile the EVT 2.1 kernel on a tiny input."""
    words = np.array([0x8000_0001, 0, 0x1000_0803, 0b101], dtype="<u4").tobytes()
    Evt21Decoder("warm-up", True).decode(memoryview(words), 0, True)
