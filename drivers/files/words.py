"""The parts shared by the word-oriented formats (EVT 2.0, 2.1, 3.0, DAT).

A decode kernel walks a word array from ``pos``, writes events into
caller-allocated column buffers and stops when it runs out of words
(``DONE``), out of room (``FULL``) or in the middle of a multi-word record
(``PARTIAL``). ``collect_events`` allocates the buffers, calls the kernel until
the words are used up and joins the parts; ``WordDecoder`` is the ``Decoder``
around one kernel. ``WordWriter`` is the writer loop of the time-high formats
(EVT 2.0, 3.0): header with the first events, filler time words, one encode
kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO, ClassVar

import numpy as np
from numba import njit

from ..errors import FormatError
from ..packet import EVENT_DTYPE, Geometry, as_events
from .percent_header import raw_evt_header

DONE = 0
FULL = 1
PARTIAL = 2

_DE_BRUIJN_32 = 0x077CB531
_BIT_INDEX = np.zeros(32, dtype=np.int64)
for _k in range(32):
    _BIT_INDEX[(((1 << _k) * _DE_BRUIJN_32) >> 27) & 31] = _k


@njit(cache=True, nogil=True, inline="always")
def bit_index(bit: int) -> int:
    """Index of a single set bit below 2^32 (a de Bruijn multiply, no branch)."""
    return _BIT_INDEX[((bit * _DE_BRUIJN_32) >> 27) & 31]


DecodeKernel = Callable[..., tuple[int, int, int]]
"""``kernel(words, pos, *params, out_t, out_x, out_y, out_p) -> (n_out, next_pos, status)``."""


def collect_events(
    kernel: DecodeKernel,
    words: np.ndarray,
    params: tuple[Any, ...],
    n_words: int,
    events_per_word: float,
    max_per_word: int,
) -> tuple[np.ndarray, int, int]:
    """Run ``kernel`` over ``n_words`` words; return ``(events, words_used, status)``.

    ``events_per_word`` sizes the first buffer (a guess); ``max_per_word`` is the
    most events one record can produce (the kernel stops when fewer slots are left).
    """
    parts: list[np.ndarray] = []
    pos = 0
    status = DONE
    ratio = events_per_word
    while True:
        remaining = n_words - pos
        capacity = int(remaining * ratio) + 2 * max_per_word + 16
        out = np.empty(capacity, dtype=EVENT_DTYPE)
        n_out, new_pos, status = kernel(words, pos, *params,
                                        out["t"], out["x"], out["y"], out["p"])
        parts.append(out[:n_out] if n_out * 2 >= capacity else out[:n_out].copy())
        used = new_pos - pos
        pos = new_pos
        if status != FULL:
            break
        # denser than guessed: size the next buffer from what this one saw
        ratio = max(ratio * 2.0, n_out / max(used, 1) * 1.25)
    if len(parts) == 1:
        return parts[0], pos, status
    return np.concatenate(parts), pos, status


class WordDecoder:
    """Stateful words → events through one kernel (a ``Decoder``).

    A subclass names the layout in class attributes and sets ``where`` and ``params``
    (the kernel arguments after ``pos``, the state array among them) in ``__init__``.
    """

    kernel: ClassVar[DecodeKernel]
    record_bytes: ClassVar[int]
    """Bytes per kernel position (a word, or a record of several words)."""
    word_dtype: ClassVar[np.dtype]
    events_per_word: ClassVar[float] = 1.0
    max_per_word: ClassVar[int] = 1
    truncated: ClassVar[str] = "truncated record ({n_left} words left)"
    """The error for a ``PARTIAL`` stop at the end of the file."""
    where: str
    params: tuple[Any, ...]

    def decode(self, buf: memoryview, offset: int, final: bool) -> tuple[np.ndarray, int]:
        n_records = len(buf) // self.record_bytes
        words = np.frombuffer(buf, dtype=self.word_dtype,
                              count=n_records * self.record_bytes // self.word_dtype.itemsize)
        events, used, status = collect_events(type(self).kernel, words, self.params, n_records,
                                              self.events_per_word, self.max_per_word)
        if status == PARTIAL and final:
            raise FormatError(f"{self.where}: byte {offset + self.record_bytes * used}: "
                              + self.truncated.format(n_left=n_records - used))
        return events, self.record_bytes * used


MAX_TIME_STEPS = 1 << 20
"""Most filler time words a writer emits for one gap (bounds output for absurd gaps)."""


def time_steps(
    t_high: np.ndarray, first_high: int | None, step: int, where: str, n_before: int
) -> int:
    """Filler TIME_HIGH words needed so no jump between events exceeds ``step`` units."""
    prepend = () if first_high is None else (np.int64(first_high),)
    gaps = np.diff(np.concatenate((np.asarray(prepend, dtype=np.int64), t_high)))
    if gaps.size == 0:
        return 0
    steps = gaps // step
    worst = int(steps.max())
    if worst > MAX_TIME_STEPS:
        k = int(np.argmax(steps))
        raise FormatError(f"{where}: event {n_before + k + (first_high is None)}: a time gap "
                          f"of {worst} time-high steps is too long to encode")
    return int(steps.sum())


def check_writable(
    events: np.ndarray,
    geometry: Geometry | None,
    max_coord: int,
    where: str,
    n_before: int,
    t_last_us: int,
) -> None:
    """Raise ``FormatError`` unless events are time-ordered, t ≥ 0, p ∈ {0, 1}, in range."""
    t = events["t"]
    if t[0] < max(t_last_us, 0):
        raise FormatError(f"{where}: event {n_before}: t {int(t[0])} µs is before the "
                          f"previous event ({t_last_us} µs) or negative")
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        k = int(back[0]) + 1
        raise FormatError(f"{where}: event {n_before + k}: t {int(t[k])} µs goes backwards "
                          "(the format needs events in time order)")
    width = geometry.width if geometry else max_coord
    height = geometry.height if geometry else max_coord
    for name, limit in (("x", min(width, max_coord)), ("y", min(height, max_coord)), ("p", 2)):
        bad = np.flatnonzero(events[name] >= limit)
        if bad.size:
            k = int(bad[0])
            raise FormatError(f"{where}: event {n_before + k}: {name} = {int(events[name][k])} "
                              f"is out of range (< {limit})")


class WordWriter:
    """Events → a Prophesee ``.raw`` file of a time-high format; the header is written
    with the first events, times relative to ``% t_offset_us`` (a multiple of the loop).

    A subclass names the layout and defines ``_encode``; state slots 0 and 1 of the
    encoder are "started" and the current time-high value.
    """

    version: ClassVar[str]
    max_coord: ClassVar[int]
    word_dtype: ClassVar[np.dtype]
    loop_us: ClassVar[int]
    time_high_shift: ClassVar[int]
    """t bits below the time-high field."""
    time_high_step: ClassVar[int]
    """Largest time-high step the writer makes (a wrap must look like a larger drop)."""
    words_per_event: ClassVar[int]
    spare_words: ClassVar[int]
    n_state: ClassVar[int]

    def __init__(self, f: BinaryIO, geometry: Geometry | None, where: str | None = None) -> None:
        self.f = f
        self.geometry = geometry
        self.where = where or f"evt{self.version[0]} writer"
        self.state = np.zeros(self.n_state, dtype=np.int64)
        self.t_offset_us: int | None = None
        self.t_last_us = -1
        self.n_events = 0

    def _encode(self, t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray,
                out: np.ndarray) -> tuple[int, int]:
        """Encode into ``out``; return ``(n_words, n_events)``."""
        raise NotImplementedError

    def _write_header(self, t_offset_us: int) -> None:
        self.f.write(raw_evt_header(self.version, self.geometry, t_offset_us))
        self.t_offset_us = t_offset_us

    def write(self, events: np.ndarray) -> None:
        events = as_events(events, self.where)
        if len(events) == 0:
            return
        t = events["t"]
        check_writable(events, self.geometry, self.max_coord, self.where, self.n_events,
                       self.t_last_us)
        if self.t_offset_us is None:
            self._write_header((int(t[0]) // self.loop_us) * self.loop_us)
        rel_t = t - self.t_offset_us
        first_high = int(self.state[1]) if self.state[0] else None
        n_steps = time_steps(rel_t >> self.time_high_shift, first_high, self.time_high_step,
                             self.where, self.n_events)
        x, y, p = events["x"], events["y"], events["p"]
        done = 0
        while done < len(events):
            out = np.empty(self.words_per_event * (len(events) - done) + n_steps
                           + self.spare_words, dtype=self.word_dtype)
            n_words, n_used = self._encode(rel_t[done:], x[done:], y[done:], p[done:], out)
            self.f.write(out[:n_words].tobytes())
            done += n_used
        self.n_events += len(events)
        self.t_last_us = int(t[-1])

    def close(self) -> None:
        if self.t_offset_us is None:
            self._write_header(0)
        self.f.flush()
