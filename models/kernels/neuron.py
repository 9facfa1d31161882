"""Event-driven neuron kernel: every neuron kind (IF, LI, LIF, CubaLI, CubaLIF,
Integrator, Threshold) as one per-step update with per-neuron coefficients
(see ``models.profiles``)::

    i_new = alpha·i + gain_syn·x
    v_new = beta·v + gain_v_old·i + gain_v·i_new + gain_x·x + leak ; spike, reset, clamp

Only *candidate* neurons are updated at a step: those that received input and
those in the active set (a constant drive, a nonzero leak target, or a state
that could still cross threshold without input: the wake-up bound
``max(v, 0) + (|gain_v_old| + |gain_v|)·|i| / (1 − alpha) ≥ θ``). A neuron
left out for some steps is caught up lazily when next touched, by replaying
the same update with zero input until its state stops changing, so the
result is bit-for-bit the clock-driven one.
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
# entries of ``flags`` (int64): configuration, and the active-set size (state).
# NO_CURRENT: every neuron has alpha = gain_v_old = gain_x = 0 (no synaptic current: the
# input passes straight through ``i``; IF, LIF, Threshold), for ``step_all``'s short pass.
SPIKING, MULTI, RESET_CODE, AT_THRESHOLD, REC_START, N_ACTIVE, NO_CURRENT = range(7)
N_FLAGS = 7


@njit(cache=True, nogil=True)
def advance_neurons(k0, k1, in_step, in_idx, in_val, pos0, coef, flags, fstate, istate, bstate,
                    out_step, out_idx, out_val, counters):
    """Advance a neuron layer over steps [k0, k1).

    ``coef`` (12, n): the rows named above. ``flags``: spiking, multi-spike,
    reset code, spike at θ, first step of the recurrent bias, active-set size.
    State: ``fstate`` (3, n) float64 = v, i, input accumulator; ``istate``
    (3, n) int64 = last updated step, active set, candidates; ``bstate`` (2, n)
    uint8 = candidate mark, always active.

    Inputs (step, idx, val) are sorted by step, read from ``pos0``. Writes
    output events (spike counts, or v for non-spiking layers) into out_*.
    Stops early at a step boundary when the output buffer could overflow.
    Returns (n_out, step reached, input position reached).
    ``counters[0]`` += neuron updates.
    """
    acc = fstate[2]
    cand = istate[2]
    mark = bstate[0]
    n = acc.shape[0]
    cap = out_step.shape[0]
    n_in = in_step.shape[0]
    pos = pos0
    n_out = 0
    k = k0
    while k < k1:
        if n_out + n > cap:
            break
        nt = 0
        while pos < n_in and in_step[pos] == k:
            j = in_idx[pos]
            acc[j] += in_val[pos]
            if mark[j] == 0:
                mark[j] = 1
                cand[nt] = j
                nt += 1
            pos += 1
        n_out = step_candidates(k, nt, coef, flags, fstate, istate, bstate,
                                out_step, out_idx, out_val, n_out, counters)
        k += 1
    return n_out, k, pos


@njit(cache=True, nogil=True)
def step_candidates(k, nt, coef, flags, fstate, istate, bstate, out_step, out_idx, out_val,
                    n_out, counters):
    """Step k for the ``nt`` candidates already in ``istate[2]`` (their input summed in
    ``fstate[2]``, marked in ``bstate[0]``) plus the active set; returns the new n_out."""
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
    last, active, cand = istate[0], istate[1], istate[2]
    mark, always = bstate[0], bstate[1]
    updates = 0
    for a in range(flags[N_ACTIVE]):
        j = active[a]
        if mark[j] == 0:
            mark[j] = 1
            cand[nt] = j
            nt += 1
    na = 0
    for c in range(nt):
        j = cand[c]
        mark[j] = 0
        # lazy catch-up: replay the missed steps (no input, no spike possible)
        s = last[j] + 1
        while s < k:
            x = bias[j]
            if s >= rec_start:
                x = x + bias_rec[j]
            vv, ii, _ = _update(x, v[j], i[j], alpha[j], gain_syn[j], beta[j], gain_v_old[j],
                                gain_v[j], gain_x[j], leak[j], threshold[j], v_reset[j],
                                v_min[j], spiking, multi, reset_code, at_threshold)
            updates += 1
            if vv == v[j] and ii == i[j]:
                break
            v[j] = vv
            i[j] = ii
            s += 1
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
        # stays active next step?
        live = always[j] != 0
        if not live:
            if not spiking:
                live = vv != 0.0 or ii != 0.0
            else:
                bound = vv if vv > 0.0 else 0.0
                if ii != 0.0:
                    bound += wake_gain[j] * abs(ii)
                live = bound * (1.0 + 1e-9) + 1e-300 >= threshold[j]
        if live:
            active[na] = j
            na += 1
    flags[N_ACTIVE] = na
    counters[0] += updates
    return n_out


@njit(cache=True, nogil=True)
def step_all(k, coef, flags, fstate, istate, bstate, out_step, out_idx, out_val, n_out,
             counters):
    """Step k for every neuron (a dense layer touched them all; their input summed in
    ``fstate[2]``, nothing marked): ``step_candidates`` with candidates 0..n-1, in
    passes that the compiler can vectorise. Returns the new n_out."""
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
    last, active = istate[0], istate[1]
    always = bstate[1]
    n = acc.shape[0]
    updates = n
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
    # lazy catch-up of the neurons left out of earlier steps (no input, no spike possible)
    for j in range(n):
        s = last[j] + 1
        while s < k:
            x = bias[j]
            if s >= rec_start:
                x = x + bias_rec[j]
            vv, ii, _ = _update(x, v[j], i[j], alpha[j], gain_syn[j], beta[j], gain_v_old[j],
                                gain_v[j], gain_x[j], leak[j], threshold[j], v_reset[j],
                                v_min[j], spiking, multi, reset_code, at_threshold)
            updates += 1
            if vv == v[j] and ii == i[j]:
                break
            v[j] = vv
            i[j] = ii
            s += 1
        last[j] = k
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
        if spiking:
            count = acc[j]
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
        acc[j] = 0.0
        live = always[j] != 0
        if not live:
            if not spiking:
                live = vv != 0.0 or ii != 0.0
            else:
                bound = vv if vv > 0.0 else 0.0
                if ii != 0.0:
                    bound += wake_gain[j] * abs(ii)
                live = bound * (1.0 + 1e-9) + 1e-300 >= threshold[j]
        if live:
            active[na] = j
            na += 1
    flags[N_ACTIVE] = na
    counters[0] += updates
    return n_out


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
    gain_syn, beta, gain_v, leak = coef[GAIN_SYN], coef[BETA], coef[GAIN_V], coef[LEAK]
    threshold, v_reset, v_min = coef[THRESHOLD], coef[V_RESET], coef[V_MIN]
    bias, bias_rec, wake_gain = coef[BIAS], coef[BIAS_REC], coef[WAKE_GAIN]
    v, i, acc = fstate[0], fstate[1], fstate[2]
    last, active = istate[0], istate[1]
    always = bstate[1]
    rec_start = flags[REC_START]
    n = acc.shape[0]
    updates = n
    behind = False
    for j in range(n):
        behind |= last[j] + 1 < k
    if behind:  # lazy catch-up of neurons left out of earlier steps (no input, no spike)
        for j in range(n):
            s = last[j] + 1
            while s < k:
                x = bias[j]
                if s >= rec_start:
                    x = x + bias_rec[j]
                vv, ii, _ = _update(x, v[j], i[j], 0.0, gain_syn[j], beta[j], 0.0, gain_v[j],
                                    0.0, leak[j], threshold[j], v_reset[j], v_min[j], True,
                                    False, reset_code, False)
                updates += 1
                if vv == v[j] and ii == i[j]:
                    break
                v[j] = vv
                i[j] = ii
                s += 1
    for j in range(n):
        last[j] = k
    rec = k >= rec_start
    # acc[j] becomes count + 2·(active next step): 0 for almost every neuron
    for j in range(n):
        x = acc[j] + bias[j]
        if rec:
            x = x + bias_rec[j]
        th = threshold[j]
        v_old = v[j]
        ii = gain_syn[j] * x
        vv = beta[j] * v_old + gain_v[j] * ii + leak[j]
        r = 0.0
        if reset_code == RESET_SUBTRACT_SNNTORCH and v_old > th:
            r = 1.0
            vv = vv - th
        count = 1.0 if vv > th else 0.0
        if reset_code == RESET_ZERO:
            vv = v_reset[j] if count > 0.0 else vv
        elif reset_code == RESET_SUBTRACT:
            vv = vv - th if count > 0.0 else vv
        elif count != r:
            vv = vv - (count - r) * th
        vv = v_min[j] if vv < v_min[j] else vv
        v[j] = vv
        i[j] = ii
        bound = vv if vv > 0.0 else 0.0
        bound = bound + wake_gain[j] * abs(ii) if ii != 0.0 else bound
        live = always[j] != 0 or bound * (1.0 + 1e-9) + 1e-300 >= th
        acc[j] = count + (2.0 if live else 0.0)
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
