"""Event-driven neuron kernel: every neuron kind (IF, LI, LIF, CubaLI, CubaLIF,
Integrator, Threshold) as one per-step update with per-neuron coefficients
(see ``models.profiles``)::

    i_new = alpha·i + gain_syn·x
    v_new = beta·v + gain_v_old·i + gain_v·i_new + gain_x·x + leak ; spike, reset, clamp

Only *candidate* neurons are updated at a step: those that received input,
and those woken up. A neuron left out for some steps is caught up lazily when
next touched, by replaying the same update with zero input until its state
stops changing, so the result is bit-for-bit the clock-driven one.

Wake-ups. After its update a neuron that could still move on its own (a
constant drive, a nonzero leak target, or a state that could cross threshold
without input: the bound ``max(v, 0) + (|gain_v_old| + |gain_v|)·|i| / (1 −
alpha) ≥ θ``) is *due* at the next step. If no input reaches it there, a
spiking neuron's input-free trajectory is computed ahead with the same update
(up to ``LOOK_AHEAD`` steps) and the neuron is scheduled, in a heap of
(step, neuron), at the step where it fires, or dropped when it settles or
can no longer reach θ. Steps where no input arrives and nobody is due or
scheduled are not visited at all. Non-spiking layers emit v at every step
they move, so their moving neurons stay due step by step.
"""

from __future__ import annotations

import numpy as np
from numba import njit

RESET_ZERO = 0
RESET_SUBTRACT = 1
RESET_SUBTRACT_SNNTORCH = 2


@njit(cache=True, nogil=True, inline="always")
def _update(x, v, i, alpha, gain_syn, beta, gain_v_old, gain_v, gain_x, leak, th, v_reset,
            v_min, spiking, multi, reset_code, at_threshold):
    """One step of one neuron (scalars only) with input ``x``; returns (v, i, spikes)."""
    i_new = alpha * i + gain_syn * x
    r = 0.0
    if (spiking and reset_code == RESET_SUBTRACT_SNNTORCH
            and (v > th or (at_threshold and v >= th))):
        r = 1.0
    vv = beta * v + gain_v_old * i + gain_v * i_new + gain_x * x + leak
    if r != 0.0:
        vv = vv - th
    count = 0.0
    if spiking:
        if multi:
            if vv >= th:
                count = np.floor(vv / th)
        elif vv > th or (at_threshold and vv >= th):
            count = 1.0
        if reset_code == RESET_ZERO:
            if count > 0.0:
                vv = v_reset
        elif reset_code == RESET_SUBTRACT:
            if count > 0.0:
                vv = vv - count * th
        elif count != r:
            vv = vv - (count - r) * th
    if vv < v_min:
        vv = v_min
    return vv, i_new, count


# rows of the packed coefficient array ``coef`` (n_rows, n)
# (WAKE_GAIN = (|gain_v_old| + |gain_v|) / (1 − alpha), +inf when alpha ≥ 1: the wake-up bound)
ALPHA, GAIN_SYN, BETA, GAIN_V_OLD, GAIN_V, GAIN_X, LEAK, THRESHOLD, V_RESET, V_MIN, BIAS, \
    BIAS_REC, WAKE_GAIN = range(13)
N_COEF = 13
# entries of ``flags`` (int64): configuration, and the sizes of the due list and the heap.
# NO_CURRENT: every neuron has alpha = gain_v_old = gain_x = 0 (no synaptic current: the
# input passes straight through ``i``; IF, LIF, Threshold), for ``step_all``'s short pass.
SPIKING, MULTI, RESET_CODE, AT_THRESHOLD, REC_START, N_ACTIVE, NO_CURRENT, N_HEAP = range(8)
N_FLAGS = 8
# rows of ``istate`` (int64, (4, n)): last updated step, due list (neurons due at the next
# step; ``flags[N_ACTIVE]`` of them), candidates of the step, scheduled wake step (−1: none)
LAST, DUE, CAND, WAKE = range(4)
N_ISTATE = 4
LOOK_AHEAD = 4096
"""Steps a quiet neuron's trajectory is computed ahead in one go (then re-checked)."""


def heap_capacity(n: int) -> int:
    """Entries of a layer's wake-up heap ``sched`` (2, capacity): room for stale ones."""
    return 2 * n + 8


@njit(cache=True, nogil=True, inline="always")
def _heap_less(sched, a, b):
    return sched[0, a] < sched[0, b] or (sched[0, a] == sched[0, b] and sched[1, a] < sched[1, b])


@njit(cache=True, nogil=True)
def _heap_sift_down(sched, size, a):
    while True:
        low = a
        left = 2 * a + 1
        if left < size and _heap_less(sched, left, low):
            low = left
        if left + 1 < size and _heap_less(sched, left + 1, low):
            low = left + 1
        if low == a:
            return
        for r in range(2):
            sched[r, a], sched[r, low] = sched[r, low], sched[r, a]
        a = low


@njit(cache=True, nogil=True)
def heap_push(sched, flags, wake, step, j):
    """Schedule neuron ``j`` at ``step`` (an earlier schedule of it turns stale)."""
    size = flags[N_HEAP]
    if size == sched.shape[1]:  # full: drop the stale entries (at most one valid per neuron)
        kept = 0
        for a in range(size):
            if wake[sched[1, a]] == sched[0, a]:
                sched[0, kept] = sched[0, a]
                sched[1, kept] = sched[1, a]
                kept += 1
        size = kept
        for a in range(size // 2 - 1, -1, -1):
            _heap_sift_down(sched, size, a)
    wake[j] = step
    a = size
    sched[0, a] = step
    sched[1, a] = j
    while a > 0:
        parent = (a - 1) // 2
        if not _heap_less(sched, a, parent):
            break
        for r in range(2):
            sched[r, a], sched[r, parent] = sched[r, parent], sched[r, a]
        a = parent
    flags[N_HEAP] = size + 1


@njit(cache=True, nogil=True)
def heap_pop(sched, flags):
    """Remove the earliest entry (the caller read it at ``sched[:, 0]``)."""
    size = flags[N_HEAP] - 1
    sched[0, 0] = sched[0, size]
    sched[1, 0] = sched[1, size]
    flags[N_HEAP] = size
    _heap_sift_down(sched, size, 0)


@njit(cache=True, nogil=True)
def pop_wake_ups(k, sched, flags, wake, mark, cand, nt):
    """Add the neurons scheduled at or before step k to the ``nt`` candidates in ``cand``
    (marked in ``mark``; stale entries dropped); returns the new count."""
    while flags[N_HEAP] > 0 and sched[0, 0] <= k:
        w = sched[0, 0]
        j = sched[1, 0]
        heap_pop(sched, flags)
        if wake[j] != w:
            continue  # stale: the neuron was updated since
        wake[j] = -1
        if mark[j] == 0:
            mark[j] = 1
            cand[nt] = j
            nt += 1
    return nt


@njit(cache=True, nogil=True)
def next_wake(sched, flags, wake):
    """The earliest valid scheduled step (stale entries on top are dropped), or −1."""
    while flags[N_HEAP] > 0:
        if wake[sched[1, 0]] == sched[0, 0]:
            return sched[0, 0]
        heap_pop(sched, flags)
    return -1


@njit(cache=True, nogil=True)
def next_busy_step(k, k1, in_step, pos, flags, sched, wake):
    """The first step in [k, k1) with input, a due neuron or a wake-up; k1 if none."""
    if flags[N_ACTIVE] > 0:
        return k
    nxt = k1
    if pos < in_step.shape[0] and in_step[pos] < nxt:
        nxt = in_step[pos]
    w = next_wake(sched, flags, wake)
    if w >= 0 and w < nxt:
        nxt = w
    return max(nxt, k)


@njit(cache=True, nogil=True, inline="always")
def gather_step_input(k, in_step, in_idx, in_val, pos, acc, mark, cand):
    """Sum the inputs of step k, read from ``pos``, into ``acc``; list each receiver once in
    ``cand`` (marked in ``mark``). Returns (receivers listed, the input position after)."""
    n_in = in_step.shape[0]
    nt = 0
    while pos < n_in and in_step[pos] == k:
        j = in_idx[pos]
        acc[j] += in_val[pos]
        if mark[j] == 0:
            mark[j] = 1
            cand[nt] = j
            nt += 1
        pos += 1
    return nt, pos


@njit(cache=True, nogil=True, inline="always")
def _emit(k, j, count, vv, spiking, out_step, out_idx, out_val, n_out):
    """Neuron j's output at step k: its spike count when it fired (spiking layers), its
    v otherwise; returns the new n_out."""
    if spiking:
        if count > 0.0:
            out_step[n_out] = k
            out_idx[n_out] = j
            out_val[n_out] = count
            n_out += 1
    else:
        out_step[n_out] = k
        out_idx[n_out] = j
        out_val[n_out] = vv
        n_out += 1
    return n_out


@njit(cache=True, nogil=True, inline="always")
def _stays_due(vv, ii, always_j, spiking, wake_gain_j, threshold_j):
    """Whether a neuron left at (v, i) = (vv, ii) may move on its own: always for a constant
    drive; a non-spiking one while its state is not zero; a spiking one while the bound
    max(v, 0) + wake_gain·|i| can still reach θ."""
    if always_j != 0:
        return True
    if not spiking:
        return vv != 0.0 or ii != 0.0
    bound = vv if vv > 0.0 else 0.0
    if ii != 0.0:
        bound += wake_gain_j * abs(ii)
    return bound * (1.0 + 1e-9) + 1e-300 >= threshold_j


@njit(cache=True, nogil=True)
def advance_neurons(k0, k1, in_step, in_idx, in_val, pos0, coef, flags, fstate, istate, bstate,
                    sched, out_step, out_idx, out_val, counters):
    """Advance a neuron layer over steps [k0, k1).

    ``coef`` (13, n): the rows named above. ``flags``: spiking, multi-spike,
    reset code, spike at θ, first step of the recurrent bias, due-list size,
    no-current, heap size. State: ``fstate`` (3, n) float64 = v, i, input
    accumulator; ``istate`` (4, n) int64 = the rows named above; ``bstate``
    (2, n) uint8 = candidate mark, always due after an update; ``sched`` (2, m)
    int64 = the wake-up heap (step, neuron).

    Inputs (step, idx, val) are sorted by step, read from ``pos0``. Writes
    output events (spike counts, or v for non-spiking layers) into out_*.
    Visits only steps with input, due or scheduled neurons. Stops early at a
    step boundary when the output buffer could overflow. Returns (n_out, step
    reached, input position reached). ``counters[0]`` += neuron updates.
    """
    acc = fstate[2]
    cand = istate[CAND]
    wake = istate[WAKE]
    mark = bstate[0]
    n = acc.shape[0]
    cap = out_step.shape[0]
    pos = pos0
    n_out = 0
    k = k0
    while True:
        k = next_busy_step(k, k1, in_step, pos, flags, sched, wake)
        if k >= k1 or n_out + n > cap:
            break
        nt, pos = gather_step_input(k, in_step, in_idx, in_val, pos, acc, mark, cand)
        n_out = step_candidates(k, nt, coef, flags, fstate, istate, bstate, sched,
                                out_step, out_idx, out_val, n_out, counters)
        k += 1
    return n_out, k, pos


@njit(cache=True, nogil=True, inline="always")
def _catch_up(j, k, coef, rec_start, fstate, last, spiking, multi, reset_code, at_threshold):
    """Replay neuron j's missed steps last+1 … k−1 with no input (no spike can happen
    there: it was not due or scheduled); stops once the state is fixed for good.
    Returns the updates done."""
    v, i = fstate[0], fstate[1]
    bias_rec = coef[BIAS_REC]
    updates = 0
    s = last[j] + 1
    while s < k:
        x = coef[BIAS, j]
        if s >= rec_start:
            x = x + bias_rec[j]
        vv, ii, _ = _update(x, v[j], i[j], coef[ALPHA, j], coef[GAIN_SYN, j], coef[BETA, j],
                            coef[GAIN_V_OLD, j], coef[GAIN_V, j], coef[GAIN_X, j],
                            coef[LEAK, j], coef[THRESHOLD, j], coef[V_RESET, j],
                            coef[V_MIN, j], spiking, multi, reset_code, at_threshold)
        updates += 1
        if vv == v[j] and ii == i[j]:
            if s >= rec_start or bias_rec[j] == 0.0:
                break
            s = rec_start  # fixed until the recurrent bias starts
            continue
        v[j] = vv
        i[j] = ii
        s += 1
    return updates


@njit(cache=True, nogil=True, inline="always")
def _look_ahead(j, k, coef, rec_start, fstate, last, always, multi, reset_code, at_threshold):
    """A spiking neuron due at step k without input there: its input-free trajectory from
    its last update, computed with the same update. Returns (the first step it fires at,
    or −1 when it settles or can no longer reach θ, or k + LOOK_AHEAD to look again;
    updates done)."""
    bias_rec, wake_gain, threshold = coef[BIAS_REC], coef[WAKE_GAIN], coef[THRESHOLD]
    vv = fstate[0, j]
    ii = fstate[1, j]
    updates = 0
    end = k + LOOK_AHEAD
    s = last[j] + 1
    while s < end:
        x = coef[BIAS, j]
        if s >= rec_start:
            x = x + bias_rec[j]
        nv, ni, count = _update(x, vv, ii, coef[ALPHA, j], coef[GAIN_SYN, j], coef[BETA, j],
                                coef[GAIN_V_OLD, j], coef[GAIN_V, j], coef[GAIN_X, j],
                                coef[LEAK, j], threshold[j], coef[V_RESET, j],
                                coef[V_MIN, j], True, multi, reset_code, at_threshold)
        updates += 1
        if count > 0.0:
            return s, updates
        if nv == vv and ni == ii:
            if s >= rec_start or bias_rec[j] == 0.0:
                return -1, updates
            s = rec_start
            continue
        if always[j] == 0:
            bound = nv if nv > 0.0 else 0.0
            if ni != 0.0:
                bound += wake_gain[j] * abs(ni)
            if not bound * (1.0 + 1e-9) + 1e-300 >= threshold[j]:
                return -1, updates
        vv = nv
        ii = ni
        s += 1
    return end, updates


@njit(cache=True, nogil=True)
def step_candidates(k, nt, coef, flags, fstate, istate, bstate, sched, out_step, out_idx,
                    out_val, n_out, counters):
    """Step k for the ``nt`` candidates already in ``istate[CAND]`` (their input summed in
    ``fstate[2]``, marked in ``bstate[0]``), the due neurons that fire now or move without
    firing (non-spiking), and the wake-ups scheduled at k; returns the new n_out."""
    alpha, gain_syn, beta = coef[ALPHA], coef[GAIN_SYN], coef[BETA]
    gain_v_old, gain_v, gain_x = coef[GAIN_V_OLD], coef[GAIN_V], coef[GAIN_X]
    leak, threshold, v_reset, v_min = coef[LEAK], coef[THRESHOLD], coef[V_RESET], coef[V_MIN]
    bias, bias_rec, wake_gain = coef[BIAS], coef[BIAS_REC], coef[WAKE_GAIN]
    spiking = flags[SPIKING] != 0
    multi = flags[MULTI] != 0
    reset_code = flags[RESET_CODE]
    at_threshold = flags[AT_THRESHOLD] != 0
    rec_start = flags[REC_START]
    v, i, acc = fstate[0], fstate[1], fstate[2]
    last, due, cand, wake = istate[LAST], istate[DUE], istate[CAND], istate[WAKE]
    mark, always = bstate[0], bstate[1]
    updates = 0
    for a in range(flags[N_ACTIVE]):
        j = due[a]
        if mark[j] != 0:
            continue
        if spiking:
            w, done = _look_ahead(j, k, coef, rec_start, fstate, last, always, multi,
                                  reset_code, at_threshold)
            updates += done
            if w > k:
                heap_push(sched, flags, wake, w, j)
                continue
            if w < 0:
                continue  # settles below θ: caught up when next touched
        mark[j] = 1
        cand[nt] = j
        nt += 1
    flags[N_ACTIVE] = 0
    nt = pop_wake_ups(k, sched, flags, wake, mark, cand, nt)
    na = 0
    for c in range(nt):
        j = cand[c]
        mark[j] = 0
        wake[j] = -1
        updates += _catch_up(j, k, coef, rec_start, fstate, last, spiking, multi, reset_code,
                             at_threshold)
        x = acc[j] + bias[j]
        if k >= rec_start:
            x = x + bias_rec[j]
        acc[j] = 0.0
        vv, ii, count = _update(x, v[j], i[j], alpha[j], gain_syn[j], beta[j], gain_v_old[j],
                                gain_v[j], gain_x[j], leak[j], threshold[j], v_reset[j],
                                v_min[j], spiking, multi, reset_code, at_threshold)
        updates += 1
        v[j] = vv
        i[j] = ii
        last[j] = k
        n_out = _emit(k, j, count, vv, spiking, out_step, out_idx, out_val, n_out)
        # due next step?
        if _stays_due(vv, ii, always[j], spiking, wake_gain[j], threshold[j]):
            due[na] = j
            na += 1
    flags[N_ACTIVE] = na
    counters[0] += updates
    return n_out


@njit(cache=True, nogil=True)
def step_all(k, coef, flags, fstate, istate, bstate, sched, out_step, out_idx, out_val, n_out,
             counters):
    """Step k for every neuron (a dense layer touched them all; their input summed in
    ``fstate[2]``, nothing marked): ``step_candidates`` with candidates 0..n-1, in
    passes that the compiler can vectorise. Every wake-up scheduled before is void
    (the heap is emptied). Returns the new n_out."""
    threshold, wake_gain = coef[THRESHOLD], coef[WAKE_GAIN]
    spiking = flags[SPIKING] != 0
    multi = flags[MULTI] != 0
    reset_code = flags[RESET_CODE]
    at_threshold = flags[AT_THRESHOLD] != 0
    rec_start = flags[REC_START]
    v, i, acc = fstate[0], fstate[1], fstate[2]
    last, active, wake = istate[LAST], istate[DUE], istate[WAKE]
    always = bstate[1]
    n = acc.shape[0]
    if flags[N_HEAP] > 0:
        flags[N_HEAP] = 0
        for j in range(n):
            wake[j] = -1
    if (flags[NO_CURRENT] != 0 and spiking and not multi and not at_threshold
            and reset_code == RESET_ZERO):
        return _step_all_voltage(k, coef, flags, fstate, istate, bstate, out_step, out_idx,
                                 out_val, n_out, counters, RESET_ZERO)
    if (flags[NO_CURRENT] != 0 and spiking and not multi and not at_threshold
            and reset_code == RESET_SUBTRACT_SNNTORCH):
        return _step_all_voltage(k, coef, flags, fstate, istate, bstate, out_step, out_idx,
                                 out_val, n_out, counters, RESET_SUBTRACT_SNNTORCH)
    if (flags[NO_CURRENT] != 0 and spiking and not multi and not at_threshold
            and reset_code == RESET_SUBTRACT):
        return _step_all_voltage(k, coef, flags, fstate, istate, bstate, out_step, out_idx,
                                 out_val, n_out, counters, RESET_SUBTRACT)
    updates = n + _catch_up_all(k, coef, rec_start, fstate, last, spiking, multi, reset_code,
                                at_threshold)
    rec = k >= rec_start
    # the step itself; the spike counts go to ``acc`` (read back below, then cleared).
    # Constant flags per call, so that the branches fold and the loop vectorises.
    if spiking and not multi and not at_threshold and reset_code == RESET_SUBTRACT_SNNTORCH:
        _update_all(n, rec, coef, fstate, True, False, RESET_SUBTRACT_SNNTORCH, False)
    elif spiking and not multi and not at_threshold and reset_code == RESET_ZERO:
        _update_all(n, rec, coef, fstate, True, False, RESET_ZERO, False)
    elif spiking and not multi and not at_threshold and reset_code == RESET_SUBTRACT:
        _update_all(n, rec, coef, fstate, True, False, RESET_SUBTRACT, False)
    else:
        _update_all(n, rec, coef, fstate, spiking, multi, reset_code, at_threshold)
    na = 0
    for j in range(n):
        vv = v[j]
        ii = i[j]
        n_out = _emit(k, j, acc[j], vv, spiking, out_step, out_idx, out_val, n_out)
        acc[j] = 0.0
        if _stays_due(vv, ii, always[j], spiking, wake_gain[j], threshold[j]):
            active[na] = j
            na += 1
    flags[N_ACTIVE] = na
    counters[0] += updates
    return n_out


@njit(cache=True, nogil=True, inline="always")
def _catch_up_all(k, coef, rec_start, fstate, last, spiking, multi, reset_code, at_threshold):
    """``step_all``'s lazy catch-up: every neuron left out of earlier steps replays them
    (no input, no spike possible), then all are marked updated at k; returns the
    replayed updates. The common case, nobody behind (a dense layer touches all at
    each step), is found by a pass the compiler vectorises."""
    n = last.shape[0]
    behind = False
    for j in range(n):
        behind |= last[j] + 1 < k
    updates = 0
    if behind:
        for j in range(n):
            if last[j] + 1 < k:
                updates += _catch_up(j, k, coef, rec_start, fstate, last, spiking, multi,
                                     reset_code, at_threshold)
    for j in range(n):
        last[j] = k
    return updates


@njit(cache=True, nogil=True, inline="always")
def _update_all(n, rec, coef, fstate, spiking, multi, reset_code, at_threshold):
    """Every neuron's update of ``step_all`` (input in ``fstate[2]``, replaced by the count)."""
    alpha, gain_syn, beta = coef[ALPHA], coef[GAIN_SYN], coef[BETA]
    gain_v_old, gain_v, gain_x = coef[GAIN_V_OLD], coef[GAIN_V], coef[GAIN_X]
    leak, threshold, v_reset, v_min = coef[LEAK], coef[THRESHOLD], coef[V_RESET], coef[V_MIN]
    bias, bias_rec = coef[BIAS], coef[BIAS_REC]
    v, i, acc = fstate[0], fstate[1], fstate[2]
    for j in range(n):
        x = acc[j] + bias[j]
        if rec:
            x = x + bias_rec[j]
        vv, ii, count = _update(x, v[j], i[j], alpha[j], gain_syn[j], beta[j], gain_v_old[j],
                                gain_v[j], gain_x[j], leak[j], threshold[j], v_reset[j],
                                v_min[j], spiking, multi, reset_code, at_threshold)
        v[j] = vv
        i[j] = ii
        acc[j] = count


@njit(cache=True, nogil=True, inline="always")
def _step_all_voltage(k, coef, flags, fstate, istate, bstate, out_step, out_idx, out_val, n_out,
                      counters, reset_code):
    """``step_all`` for single-spike neurons whose input passes straight through
    (``NO_CURRENT``: alpha = gain_v_old = gain_x = 0, so ``i`` is just the step's
    scaled input), in passes the compiler vectorises. The arithmetic is
    ``_update``'s without its terms that are exact zeros here, so the states and
    spikes are the same."""
    acc = fstate[2]
    last, active = istate[LAST], istate[DUE]
    rec_start = flags[REC_START]
    n = acc.shape[0]
    updates = n + _catch_up_all(k, coef, rec_start, fstate, last, True, False, reset_code, False)
    rec = k >= rec_start
    # acc[j] becomes count + 2·(active next step): 0 for almost every neuron. The arrays
    # are indexed as [row, j] of the packed ones, not through row views: the compiler
    # then sees two arrays, not fifteen, and vectorises the loop.
    for j in range(n):
        x = fstate[2, j] + coef[BIAS, j]
        if rec:
            x = x + coef[BIAS_REC, j]
        th = coef[THRESHOLD, j]
        v_old = fstate[0, j]
        ii = coef[GAIN_SYN, j] * x
        vv = coef[BETA, j] * v_old + coef[GAIN_V, j] * ii + coef[LEAK, j]
        r = 0.0
        if reset_code == RESET_SUBTRACT_SNNTORCH and v_old > th:
            r = 1.0
            vv = vv - th
        count = 1.0 if vv > th else 0.0
        if reset_code == RESET_ZERO:
            vv = coef[V_RESET, j] if count > 0.0 else vv
        elif reset_code == RESET_SUBTRACT:
            vv = vv - th if count > 0.0 else vv
        elif count != r:
            vv = vv - (count - r) * th
        v_min = coef[V_MIN, j]
        vv = v_min if vv < v_min else vv
        fstate[0, j] = vv
        fstate[1, j] = ii
        bound = vv if vv > 0.0 else 0.0
        bound = bound + coef[WAKE_GAIN, j] * abs(ii) if ii != 0.0 else bound
        live = (bstate[1, j] != 0) | (bound * (1.0 + 1e-9) + 1e-300 >= th)
        fstate[2, j] = count + (2.0 if live else 0.0)
    na = 0
    for j in range(n):
        m = acc[j]
        if m != 0.0:
            acc[j] = 0.0
            if m == 1.0 or m == 3.0:
                out_step[n_out] = k
                out_idx[n_out] = j
                out_val[n_out] = 1.0
                n_out += 1
            if m >= 2.0:
                active[na] = j
                na += 1
    flags[N_ACTIVE] = na
    counters[0] += updates
    return n_out
