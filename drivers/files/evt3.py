"""Prophesee EVT 3.0 ``.raw``: read and write.

16-bit little-endian words, the type in bits 15..12, decoded as OpenEB's
``EVT3Decoder`` (basic validator) does:

====  ============  ==========================================================
type  name          meaning
====  ============  ==========================================================
0x0   EVT_ADDR_Y    y = bits 11..0 (a CD row); events of rows ≥ height are dropped
0x1   (EM) ADDR_Y   a non-CD row: following X / vector words emit nothing
0x2   EVT_ADDR_X    one event: x = bits 10..0, polarity = bit 11
0x3   VECT_BASE_X   vector base x = bits 10..0 and polarity = bit 11
0x4   VECT_12       with the next two words (VECT_12, VECT_8): a 32-bit mask
                    (12 + 12 + 8 bits), one event at base + k per set bit k;
                    then base += 32. Dropped when base + 32 > width.
0x5   VECT_8        on its own: no event (state only)
0x6   EVT_TIME_LOW  low 12 bits of the 24-bit time base, taken as they are
0x8   EVT_TIME_HIGH high 12 bits; the low part resets to 0 only when the high
                    part changes; a drop of ≥ 2048 is a wrap (+2^24 µs)
0xA   EXT_TRIGGER   skipped
else  OTHERS, CONTINUED_4/12, ...: skipped
====  ============  ==========================================================

Words before the first EVT_TIME_HIGH are skipped. t = loop·2^24 + high·2^12 + low.
The writer emits ADDR_Y / ADDR_X words and VECT_BASE_X + VECT_12 + VECT_12 +
VECT_8 groups for runs of ≥ 5 events on one row; timestamps that do not fit
the 24-bit clock from 0 are written relative to ``% t_offset_us`` (a multiple
of 2^24 µs) which the reader adds back.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
from numba import njit

from ..packet import EVENT_DTYPE, Geometry
from .base import FileHeader, round_trip
from .percent_header import RawEvtFormat, header_t_offset_us
from .words import DONE, FULL, PARTIAL, WordDecoder, WordWriter, bit_index

MAX_COORD = 2048
"""EVT 3.0 addresses are 11 bits."""

_LOOP_US = 1 << 24
_TIME_HIGH_STEP = 1024
"""Largest EVT_TIME_HIGH step the writer makes (a wrap must look like a drop of ≥ 2048)."""
_VECTOR_MIN_RUN = 5

# decoder state slots
_STARTED, _LOOP, _HIGH, _LOW, _Y, _IS_CD, _BASE, _HAS_BASE = range(8)
_N_STATE = 8


@njit(cache=True, nogil=True)
def _decode_kernel(words, pos, state, width, height, t_offset, out_t, out_x, out_y, out_p):
    n = words.shape[0]
    cap = out_t.shape[0]
    n_out = 0
    started = state[_STARTED]
    loop = state[_LOOP]
    high = state[_HIGH]
    low = state[_LOW]
    y = state[_Y]
    is_cd = state[_IS_CD]
    base = state[_BASE]
    has_base = state[_HAS_BASE]
    status = DONE
    i = pos
    while started == 0 and i < n:  # words before the first EVT_TIME_HIGH are skipped
        w = np.int64(words[i])
        if (w >> 12) == 0x8:
            started = 1
            high = w & 0xFFF
            low = 0
        i += 1
    t = t_offset + (loop << 24) + (high << 12) + low
    valid = np.int64(is_cd != 0) & np.int64(y < height)
    while i < n and status == DONE:
        # a word makes at most 32/3 events: no room test inside a block
        block_end = min(n, i + (cap - n_out - 32) // 11)
        if block_end <= i:
            status = FULL
            break
        while i < block_end:
            w = np.int64(words[i])
            kind = w >> 12
            content = w & 0xFFF
            if (kind | 0x2) == 0x2:  # EVT_ADDR_X (0x2) or EVT_ADDR_Y (0x0), without a branch
                # an X word is an event when the row is a valid CD row; a Y word sets the row
                is_y = np.int64(kind == 0x0)
                out_t[n_out] = t
                out_x[n_out] = content & 0x7FF
                out_y[n_out] = y
                out_p[n_out] = content >> 11
                n_out += valid & (1 - is_y)
                y += is_y * (content - y)
                is_cd |= is_y
                valid = np.int64(is_cd != 0) & np.int64(y < height)
                i += 1
            elif kind == 0x6:  # EVT_TIME_LOW, taken as it is
                low = content
                t = t_offset + (loop << 24) + (high << 12) + low
                i += 1
            elif kind == 0x4:  # VECT_12, VECT_12, VECT_8
                if i + 3 > n:
                    status = PARTIAL
                    break
                if valid:
                    x0 = base & 0xF7FF
                    if has_base != 0 and x0 + 32 <= width:
                        mask = (
                            (w & 0xFFF)
                            | ((np.int64(words[i + 1]) & 0xFFF) << 12)
                            | ((np.int64(words[i + 2]) & 0xFF) << 24)
                        )
                        pol = (base >> 11) & 1
                        while mask != 0:
                            bit = mask & -mask
                            out_t[n_out] = t
                            out_x[n_out] = (x0 + bit_index(bit)) & 0xFFFF
                            out_y[n_out] = y
                            out_p[n_out] = pol
                            n_out += 1
                            mask ^= bit
                    else:
                        has_base = 0
                    base += 32
                i += 3
            elif kind == 0x8:  # EVT_TIME_HIGH
                if high >= 2048 + content:
                    loop += 1
                if high != content:
                    low = 0
                high = content
                t = t_offset + (loop << 24) + (high << 12) + low
                i += 1
            elif kind == 0x1:  # ADDR_Y of a non-CD (EM) event
                is_cd = 0
                valid = 0
                i += 1
            elif kind == 0x3:  # VECT_BASE_X
                base = content
                has_base = 1
                i += 1
            else:  # VECT_8 alone, EXT_TRIGGER, OTHERS, CONTINUED_4 / _12, reserved
                i += 1
    state[_STARTED] = started
    state[_LOOP] = loop
    state[_HIGH] = high
    state[_LOW] = low
    state[_Y] = y
    state[_IS_CD] = is_cd
    state[_BASE] = base
    state[_HAS_BASE] = has_base
    return n_out, i, status


# encoder state slots
_E_STARTED, _E_TH, _E_LOW, _E_Y = range(4)  # slots 0, 1 as WordWriter expects


@njit(cache=True, nogil=True)
def _encode_kernel(t, x, y, p, state, vector_width, out):
    """Encode events (t already relative to the file's offset, non-decreasing, ≥ 0).

    Returns ``(n_words, n_events)``; stops early when ``out`` may not hold the next event.
    """
    n = t.shape[0]
    cap = out.shape[0]
    n_words = 0
    started = state[_E_STARTED]
    cur_th = state[_E_TH]
    cur_low = state[_E_LOW]
    cur_y = state[_E_Y]
    i = 0
    while i < n:
        ti = t[i]
        th = ti >> 12
        tl = ti & 0xFFF
        steps = 0
        if started != 0 and th > cur_th:
            steps = (th - cur_th) // _TIME_HIGH_STEP
        if n_words + steps + 8 > cap:
            break
        if started == 0 or th != cur_th:
            if started != 0:
                while th - cur_th > _TIME_HIGH_STEP:
                    cur_th += _TIME_HIGH_STEP
                    out[n_words] = 0x8000 | (cur_th & 0xFFF)
                    n_words += 1
            out[n_words] = 0x8000 | (th & 0xFFF)
            out[n_words + 1] = 0x6000 | tl
            n_words += 2
            cur_th = th
            cur_low = tl
            started = 1
        elif tl != cur_low:
            out[n_words] = 0x6000 | tl
            n_words += 1
            cur_low = tl
        yi = np.int64(y[i])
        if yi != cur_y:
            out[n_words] = yi
            n_words += 1
            cur_y = yi
        xi = np.int64(x[i])
        pi = np.int64(p[i])
        # a run on this row at this time, x rising inside [xi, xi + 32): one vector
        j = i + 1
        if xi + 32 <= vector_width:
            while (
                j < n
                and t[j] == ti
                and np.int64(y[j]) == yi
                and np.int64(p[j]) == pi
                and np.int64(x[j]) > np.int64(x[j - 1])
                and np.int64(x[j]) < xi + 32
            ):
                j += 1
        if j - i >= _VECTOR_MIN_RUN:
            mask = np.int64(0)
            for k in range(i, j):
                mask |= np.int64(1) << (np.int64(x[k]) - xi)
            out[n_words] = 0x3000 | (pi << 11) | xi
            out[n_words + 1] = 0x4000 | (mask & 0xFFF)
            out[n_words + 2] = 0x4000 | ((mask >> 12) & 0xFFF)
            out[n_words + 3] = 0x5000 | ((mask >> 24) & 0xFF)
            n_words += 4
            i = j
        else:
            out[n_words] = 0x2000 | (pi << 11) | xi
            n_words += 1
            i += 1
    state[_E_STARTED] = started
    state[_E_TH] = cur_th
    state[_E_LOW] = cur_low
    state[_E_Y] = cur_y
    return n_words, i


class Evt3Decoder(WordDecoder):
    """Stateful EVT 3.0 words → events; the time base and row carry across chunks."""

    kernel = _decode_kernel
    record_bytes = 2
    word_dtype = np.dtype("<u2")
    max_per_word = 32
    truncated = "truncated EVT 3.0 vector (VECT_12 needs 3 words, {n_left} left)"

    def __init__(self, where: str, geometry: Geometry | None, t_offset_us: int = 0) -> None:
        self.where = where
        self.width = geometry.width if geometry else MAX_COORD
        self.height = geometry.height if geometry else MAX_COORD
        self.t_offset_us = t_offset_us
        self.state = np.zeros(_N_STATE, dtype=np.int64)
        self.params = (self.state, self.width, self.height, t_offset_us)


class Evt3Writer(WordWriter):
    """Events → an EVT 3.0 ``.raw`` file; the header is written with the first events."""

    version = "3.0"
    max_coord = MAX_COORD
    word_dtype = np.dtype("<u2")
    loop_us = _LOOP_US
    time_high_shift = 12
    time_high_step = _TIME_HIGH_STEP
    words_per_event = 4
    spare_words = 64
    n_state = 4

    def __init__(self, f: BinaryIO, geometry: Geometry | None, where: str | None = None) -> None:
        super().__init__(f, geometry, where)
        self.state[_E_Y] = -1
        self._vector_width = geometry.width if geometry else MAX_COORD

    def _encode(self, t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray,
                out: np.ndarray) -> tuple[int, int]:
        return _encode_kernel(
            t, x, y, p, self.state, self._vector_width, out)


class Evt3Format(RawEvtFormat):
    name: str = "evt3"
    version = "3.0"
    label = "Prophesee EVT 3.0"

    def decoder(self, header: FileHeader, where: str) -> Evt3Decoder:
        return Evt3Decoder(where, header.geometry, header_t_offset_us(header.meta, where))

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> Evt3Writer:
        return Evt3Writer(f, geometry)


FORMAT = Evt3Format()


def warm_up() -> None:
    """Compile the EVT 3.0 kernels on tiny inputs."""
    events = np.array([(5, 1, 2, 1), (5, 2, 2, 1), (5, 3, 2, 1), (5, 4, 2, 1), (5, 5, 2, 1),
                       (9, 7, 3, 0)], dtype=EVENT_DTYPE)
    round_trip(FORMAT, events, Geometry(64, 8))

