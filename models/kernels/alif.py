"""Event-driven ALIF kernel: the LIF step plus an adaptive threshold (see ``models.alif``)::

    a ← rho·a ;  v ← beta·v + gain_v·x + leak ;  θ = b0 + beta_a·a
    z = [v > θ] ;  reset v (zero: v_reset, subtract: v − θ) ;  a ← a + jump·z

Same contract as ``neuron.advance_neurons``: only candidates (neurons with
input this step, or woken up) are updated; a neuron skipped for some steps is
caught up by replaying zero-input steps until (v, a) stop changing, so the
result is bit-for-bit the clock-driven one. With ``beta_a, jump ≥ 0`` the
threshold never falls below ``b0``, so a neuron whose v and leak target stay
below ``b0`` cannot fire without input and is not due; one that can is
scheduled at the step it fires (the same look-ahead and heap as
``kernels.neuron``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .neuron import (
    LOOK_AHEAD,
    N_ACTIVE,
    N_FLAGS,
    gather_step_input,
    heap_capacity,
    heap_push,
    next_busy_step,
    pop_wake_ups,
)

RESET_ZERO = 0


@njit(cache=True, nogil=True, inline="always")
def _alif_update(j, x, v, a, rho, beta_a, jump, beta, gain_v, leak, b0, v_reset,
                 reset_code, at_threshold):
    """One step of ALIF neuron ``j`` with input ``x``; returns (v, a, spikes)."""
    return _alif_step(j, x, v[j], a[j], rho, beta_a, jump, beta, gain_v, leak, b0, v_reset,
                      reset_code, at_threshold)


@njit(cache=True, nogil=True, inline="always")
def _alif_step(j, x, v_j, a_j, rho, beta_a, jump, beta, gain_v, leak, b0, v_reset,
               reset_code, at_threshold):
    """One step of ALIF neuron ``j`` from state (v_j, a_j); returns (v, a, spikes)."""
    aa = rho[j] * a_j
    vv = beta[j] * v_j + gain_v[j] * x + leak[j]
    th = b0[j] + beta_a[j] * aa
    count = 0.0
    if vv > th or (at_threshold and vv >= th):
        count = 1.0
        vv = v_reset[j] if reset_code == RESET_ZERO else vv - th
        aa = aa + jump[j]
    return vv, aa, count


@njit(cache=True, nogil=True, inline="always")
def _alif_can_fire(j, vv, beta, leak, b0, always):
    """Whether neuron j at v = vv could still fire without input (θ never falls below b0)."""
    if always[j] != 0:
        return True
    bound = vv
    if beta[j] < 1.0:
        fixed = leak[j] / (1.0 - beta[j])
        if fixed > bound:
            bound = fixed
    elif leak[j] > 0.0:
        bound = np.inf
    return bound * (1.0 + 1e-9) + 1e-300 >= b0[j] or bound >= b0[j]


@njit(cache=True, nogil=True)
def advance_alif(
    k0, k1, in_step, in_idx, in_val, pos0,
    bias, bias_rec, rec_start,
    rho, beta_a, jump, beta, gain_v, leak, b0, v_reset, reset_code, at_threshold, always,
    v, a, last, due, flags, wake, sched, acc, mark, cand,
    out_step, out_idx, out_val, counters,
):
    """Advance an ALIF layer over steps [k0, k1); see ``neuron.advance_neurons``: the
    due list (``flags[N_ACTIVE]`` entries of ``due``) and the wake-up heap ``sched``
    (``flags[N_HEAP]`` entries; ``wake`` the valid step per neuron, −1 none) work the
    same way, with the same look-ahead.

    Returns (n_out, step reached, input position reached); ``counters[0]`` +=
    neuron updates.
    """
    n = v.shape[0]
    cap = out_step.shape[0]
    pos = pos0
    n_out = 0
    updates = 0
    k = k0
    while True:
        k = next_busy_step(k, k1, in_step, pos, flags, sched, wake)
        if k >= k1 or n_out + n > cap:
            break
        nt, pos = gather_step_input(k, in_step, in_idx, in_val, pos, acc, mark, cand)
        for q in range(flags[N_ACTIVE]):
            j = due[q]
            if mark[j] != 0:
                continue
            # look ahead: the first step this neuron fires at without input
            vv = v[j]
            aa = a[j]
            end = k + LOOK_AHEAD
            w = end  # not settled within the look-ahead: look again then
            s = last[j] + 1
            while s < end:
                x = bias[j]
                if s >= rec_start:
                    x = x + bias_rec[j]
                nv, na_, count = _alif_step(j, x, vv, aa, rho, beta_a, jump, beta, gain_v,
                                            leak, b0, v_reset, reset_code, at_threshold)
                updates += 1
                if count > 0.0:
                    w = s
                    break
                if nv == vv and na_ == aa:
                    if s >= rec_start or bias_rec[j] == 0.0:
                        w = -1  # settled
                        break
                    s = rec_start
                    continue
                if not _alif_can_fire(j, nv, beta, leak, b0, always):
                    w = -1
                    break
                vv = nv
                aa = na_
                s += 1
            if w > k:
                heap_push(sched, flags, wake, w, j)
            elif w >= 0:
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
            s = last[j] + 1
            while s < k:
                x = bias[j]
                if s >= rec_start:
                    x = x + bias_rec[j]
                vv, aa, _ = _alif_update(j, x, v, a, rho, beta_a, jump, beta, gain_v, leak, b0,
                                         v_reset, reset_code, at_threshold)
                updates += 1
                if vv == v[j] and aa == a[j]:
                    if s >= rec_start or bias_rec[j] == 0.0:
                        break
                    s = rec_start  # fixed until the recurrent bias starts
                    continue
                v[j] = vv
                a[j] = aa
                s += 1
            x = acc[j] + bias[j]
            if k >= rec_start:
                x = x + bias_rec[j]
            acc[j] = 0.0
            vv, aa, count = _alif_update(j, x, v, a, rho, beta_a, jump, beta, gain_v, leak, b0,
                                         v_reset, reset_code, at_threshold)
            updates += 1
            v[j] = vv
            a[j] = aa
            last[j] = k
            if count > 0.0:
                out_step[n_out] = k
                out_idx[n_out] = j
                out_val[n_out] = count
                n_out += 1
            if _alif_can_fire(j, vv, beta, leak, b0, always):
                due[na] = j
                na += 1
        flags[N_ACTIVE] = na
        k += 1
    counters[0] += updates
    return n_out, k, pos


def warm_up() -> None:
    """Compile ``advance_alif`` on a two-neuron layer."""
    n = 2
    f = np.ones(n)
    z = np.zeros(n)
    advance_alif(
        0, 3, np.array([0, 2], np.int64), np.array([0, 1], np.int64), np.array([2.0, 0.5]), 0,
        z, z, 0, f * 0.9, f, f * 0.1, f * 0.9, f, z, f, z, 0, False, np.zeros(n, np.uint8),
        np.zeros(n), np.zeros(n), np.full(n, -1, np.int64), np.zeros(n, np.int64),
        np.zeros(N_FLAGS, np.int64), np.full(n, -1, np.int64),
        np.zeros((2, heap_capacity(n)), np.int64), np.zeros(n), np.zeros(n, np.uint8),
        np.zeros(n, np.int64),
        np.empty(16, np.int64), np.empty(16, np.int64), np.empty(16), np.zeros(1, np.int64),
    )
