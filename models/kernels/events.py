"""Input events → (step, flat input index): one pass over the packet's columns; and
the output spikes → output events stamped with their cause times."""

from __future__ import annotations

import numpy as np
from numba import njit

from ...drivers.packet import EVENT_DTYPE

_SAFE_US = 2**61
"""Times and origins below this in magnitude: a step's bounds can be formed without overflow."""


@njit(cache=True, nogil=True)
def bin_events(t, x, y, p, origin_us, dt_us, k0, n_p, n_y, n_x, out_step, out_idx):
    """Bin events into steps of ``dt_us`` from ``origin_us`` and flatten addresses.

    index = (p·n_y + y)·n_x + x (p read as 0 when n_p = 1). Steps before ``k0``
    (already run) are moved to ``k0``. Returns (bad, field, n_late, last_step,
    sorted): ``bad`` is the index of the first event whose ``field`` (0 x,
    1 y, 2 p) is out of range, or -1.
    """
    n = t.shape[0]
    n_late = 0
    last = k0
    ordered = True
    prev = k0
    # the current step's window [lo, hi): most events fall in the step of the one
    # before, and a 64-bit division costs tens of cycles, so divide only on leaving it
    # (the window stays empty when the times are too large to add safely)
    cur = k0
    lo, hi = 1, 0
    safe = abs(origin_us) < _SAFE_US and dt_us < _SAFE_US
    for e in range(n):
        xe = x[e]
        ye = y[e]
        pe = p[e] if n_p > 1 else 0
        if xe >= n_x:
            return e, 0, n_late, last, ordered
        if ye >= n_y:
            return e, 1, n_late, last, ordered
        if pe >= n_p:
            return e, 2, n_late, last, ordered
        te = t[e]
        if lo <= te and te < hi:
            k = cur
        else:
            k = (te - origin_us) // dt_us
            if safe and abs(te) < _SAFE_US:
                cur = k
                lo = origin_us + k * dt_us
                hi = lo + dt_us
        if k < k0:
            k = k0
            n_late += 1
        if k < prev:
            ordered = False
        prev = k
        if k > last:
            last = k
        out_step[e] = k
        out_idx[e] = (pe * n_y + ye) * n_x + xe
    return -1, 0, n_late, last, ordered


@njit(cache=True, nogil=True)
def cause_times(steps, t, out_steps, out_t):
    """For each distinct step of the sorted ``steps``: the latest input time ``t``.

    Writes (step, time) pairs into the caller's buffers; returns how many.
    """
    m = -1
    for e in range(steps.shape[0]):
        if m < 0 or steps[e] != out_steps[m]:
            m += 1
            out_steps[m] = steps[e]
            out_t[m] = t[e]
        elif t[e] > out_t[m]:
            out_t[m] = t[e]
    return m + 1


@njit(cache=True, nogil=True)
def bin_events_with_causes(t, x, y, p, origin_us, dt_us, k0, n_p, n_y, n_x, out_step, out_idx,
                           cause_step, cause_t):
    """``bin_events``, and when the steps come out in order also ``cause_times`` of them in
    the same call (returned count; −1 when out of order or on a bad event: the caller sorts
    and calls ``cause_times``). Returns (bad, field, n_late, last_step, sorted, causes)."""
    bad, field, n_late, last, ordered = bin_events(t, x, y, p, origin_us, dt_us, k0, n_p,
                                                   n_y, n_x, out_step, out_idx)
    if bad >= 0 or not ordered:
        return bad, field, n_late, last, ordered, -1
    return bad, field, n_late, last, ordered, cause_times(out_step, t, cause_step, cause_t)


@njit(cache=True, nogil=True)
def output_events(step, idx, val, spiking, max_rep, origin_us, dt_us, cause_step, cause_t):
    """The output signal (step, index, value) as ``EVENT_DTYPE`` events: a spiking layer's
    entry gives one event per spike (at most ``max_rep``; the rest are counted), any other
    one event. t = the time of the latest input event of the step (``cause_step`` /
    ``cause_t``, sorted), else the step's start. Returns (events, their steps, spikes
    beyond ``max_rep``)."""
    n = step.shape[0]
    reps = np.ones(n, np.int64)
    truncated = 0
    if spiking:
        for e in range(n):
            count = np.int64(np.rint(val[e]))
            reps[e] = min(count, max_rep)
            truncated += count - reps[e]
    total = 0
    for e in range(n):
        total += max(reps[e], 0)
    events = np.zeros(total, dtype=EVENT_DTYPE)
    steps = np.empty(total, np.int64)
    c = 0
    m = 0
    for e in range(n):
        k = step[e]
        while c < cause_step.shape[0] and cause_step[c] < k:
            c += 1
        t = cause_t[c] if c < cause_step.shape[0] and cause_step[c] == k else origin_us + k * dt_us
        for _ in range(reps[e]):
            events[m]["t"] = t
            events[m]["x"] = idx[e]
            events[m]["p"] = 1
            steps[m] = k
            m += 1
    return events, steps, truncated
