"""Prophesee EVT 2.0 ``.raw``: read and write.

32-bit little-endian words, the type in bits 31..28:

====  =============  =========================================================
type  name           meaning
====  =============  =========================================================
0x0   CD_OFF         t low = bits 27..22, x = bits 21..11, y = bits 10..0, p = 0
0x1   CD_ON          the same, p = 1
0x8   EVT_TIME_HIGH  bits 27..0: t bits 33..6
0xA   EXT_TRIGGER    skipped
0xE   OTHERS         skipped
0xF   CONTINUED      skipped
====  =============  =========================================================

Words before the first EVT_TIME_HIGH are skipped (as OpenEB does). The
34-bit clock wraps every 2^34 µs (4 h 46 min): a TIME_HIGH that drops by
half the range or more counts one wrap. The writer stores timestamps that
do not fit relative to ``% t_offset_us`` (a multiple of 2^34 µs).
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
from numba import njit

from ..packet import EVENT_DTYPE, Geometry
from .base import FileHeader, round_trip
from .percent_header import RawEvtFormat, header_t_offset_us
from .words import DONE, FULL, WordDecoder, WordWriter

MAX_COORD = 2048
"""EVT 2.0 addresses are 11 bits."""

_HIGH_RANGE = 1 << 28
_LOOP_US = 1 << 34
_TIME_HIGH_STEP = 1 << 26
"""Largest EVT_TIME_HIGH step the writer makes (a wrap must look like a drop of ≥ 2^27)."""

_STARTED, _HIGH, _LOOP = range(3)


@njit(cache=True, nogil=True)
def _decode_kernel(words, pos, state, t_offset, out_t, out_x, out_y, out_p):
    n = words.shape[0]
    started = state[_STARTED]
    high = state[_HIGH]
    loop = state[_LOOP]
    n_out = 0
    i = pos
    while started == 0 and i < n:  # words before the first EVT_TIME_HIGH are skipped
        w = np.int64(words[i])
        if (w >> 28) == 0x8:
            high = w & 0x0FFFFFFF
            started = 1
        i += 1
    # one word makes at most one event: stop where the output would be full
    end = min(n, i + out_t.shape[0])
    t_base = t_offset + (loop << 34) + (high << 6)
    while i < end:
        w = np.int64(words[i])
        kind = w >> 28
        if kind == 0x8:
            new_high = w & 0x0FFFFFFF
            if high - new_high >= _HIGH_RANGE // 2:
                loop += 1
            high = new_high
            t_base = t_offset + (loop << 34) + (high << 6)
        else:  # written always, kept for CD_OFF / CD_ON (EXT_TRIGGER, OTHERS...: skipped)
            out_t[n_out] = t_base + ((w >> 22) & 0x3F)
            out_x[n_out] = (w >> 11) & 0x7FF
            out_y[n_out] = w & 0x7FF
            out_p[n_out] = kind & 1
            n_out += kind <= 1
        i += 1
    state[_STARTED] = started
    state[_HIGH] = high
    state[_LOOP] = loop
    return n_out, i, DONE if i == n else FULL


_E_STARTED, _E_HIGH = range(2)  # slots 0, 1 as WordWriter expects


@njit(cache=True, nogil=True)
def _encode_kernel(t, x, y, p, state, out):
    """Encode time-ordered events (t relative to the file offset); returns (n_words, n_events)."""
    n = t.shape[0]
    cap = out.shape[0]
    n_words = 0
    started = state[_E_STARTED]
    cur_high = state[_E_HIGH]
    i = 0
    while i < n:
        ti = t[i]
        th = ti >> 6
        steps = 0
        if started != 0 and th > cur_high:
            steps = (th - cur_high) // _TIME_HIGH_STEP
        if n_words + steps + 2 > cap:
            break
        if started == 0 or th != cur_high:
            if started != 0:
                while th - cur_high > _TIME_HIGH_STEP:
                    cur_high += _TIME_HIGH_STEP
                    out[n_words] = (np.int64(0x8) << 28) | (cur_high & 0x0FFFFFFF)
                    n_words += 1
            out[n_words] = (np.int64(0x8) << 28) | (th & 0x0FFFFFFF)
            n_words += 1
            cur_high = th
            started = 1
        out[n_words] = (
            (np.int64(p[i]) << 28)
            | ((ti & 0x3F) << 22)
            | (np.int64(x[i]) << 11)
            | np.int64(y[i])
        )
        n_words += 1
        i += 1
    state[_E_STARTED] = started
    state[_E_HIGH] = cur_high
    return n_words, i


class Evt2Decoder(WordDecoder):
    """Stateful EVT 2.0 words → events; the time base carries across chunks."""

    kernel = _decode_kernel
    record_bytes = 4
    word_dtype = np.dtype("<u4")

    def __init__(self, where: str, t_offset_us: int = 0) -> None:
        self.where = where
        self.t_offset_us = t_offset_us
        self.state = np.zeros(3, dtype=np.int64)
        self.params = (self.state, t_offset_us)


class Evt2Writer(WordWriter):
    """Events → an EVT 2.0 ``.raw`` file; the header is written with the first events."""

    version = "2.0"
    max_coord = MAX_COORD
    word_dtype = np.dtype("<u4")
    loop_us = _LOOP_US
    time_high_shift = 6
    time_high_step = _TIME_HIGH_STEP
    words_per_event = 2
    spare_words = 16
    n_state = 2

    def _encode(self, t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray,
                out: np.ndarray) -> tuple[int, int]:
        return _encode_kernel(t, x, y, p, self.state, out)


class Evt2Format(RawEvtFormat):
    name: str = "evt2"
    version = "2.0"
    label = "Prophesee EVT 2.0"

    def decoder(self, header: FileHeader, where: str) -> Evt2Decoder:
        return Evt2Decoder(where, header_t_offset_us(header.meta, where))

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> Evt2Writer:
        return Evt2Writer(f, geometry)


FORMAT = Evt2Format()


def warm_up() -> None:
    """Compile the EVT 2.0 kernels on tiny inputs."""
    round_trip(FORMAT, np.array([(5, 1, 2, 1), (70, 7, 3, 0)], dtype=EVENT_DTYPE), Geometry(64, 8))
