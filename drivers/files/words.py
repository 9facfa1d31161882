"""The output loop shared by the word-oriented decoders (EVT 2.0, 2.1, 3.0, DAT).

A decode kernel walks a word array from ``pos``, writes events into
caller-allocated column buffers and stops when it runs out of words
(``DONE``), out of room (``FULL``) or in the middle of a multi-word record
(``PARTIAL``). ``collect_events`` allocates the buffers, calls the kernel until
the words are used up and joins the parts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit

from ..errors import FormatError
from ..packet import EVENT_DTYPE, Geometry

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


KernelStep = Callable[
    [int, np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[int, int, int]
]
"""``step(pos, out_t, out_x, out_y, out_p) -> (n_out, next_pos, status)``."""


def collect_events(
    step: KernelStep, n_words: int, events_per_word: float, max_per_word: int
) -> tuple[np.ndarray, int, int]:
    """Run ``step`` over ``n_words`` words; return ``(events, words_used, status)``.

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
        n_out, new_pos, status = step(pos, out["t"], out["x"], out["y"], out["p"])
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
