"""Event-driven ALIF kernel: the LIF step plus an adaptive threshold (see ``models.alif``)::

    a ← rho·a ;  v ← beta·v + gain_v·x + leak ;  θ = b0 + beta_a·a
    z = [v > θ] ;  reset v (zero: v_reset, subtract: v − θ) ;  a ← a + jump·z

Same contract as ``neuron.advance_neurons``: only candidates (neurons with
input this step, or in the active set) are updated; a neuron skipped for some
steps is caught up by replaying zero-input steps until (v, a) stop changing,
so the result is bit-for-bit the clock-driven one. With ``beta_a, jump ≥ 0``
the threshold never falls below ``b0``, so a neuron whose v and leak target
stay below ``b0`` cannot fire without input and leaves the active set.
"""

from __future__ import annotations

import numpy as np
from numba import njit

RESET_ZERO = 0


@njit(cache=True, nogil=True, inline="always")
def _alif_update(j, x, v, a, rho, beta_a, jump, beta, gain_v, leak, b0, v_reset,
                 reset_code, at_threshold):
    """One step of ALIF neuron ``j`` with input ``x``; returns (v, a, spikes)."""
    aa = rho[j] * a[j]
    vv = beta[j] * v[j] + gain_v[j] * x + leak[j]
    th = b0[j] + beta_a[j] * aa
    count = 0.0
    if vv > th or (at_threshold and vv >= th):
        count = 1.0
        vv = v_reset[j] if reset_code == RESET_ZERO else vv - th
        aa = aa + jump[j]
    return vv, aa, count


@njit(cache=True, nogil=True)
def advance_alif(
    k0, k1, in_step, in_idx, in_val, pos0,
    bias, bias_rec, rec_start,
    rho, beta_a, jump, beta, gain_v, leak, b0, v_reset, reset_code, at_threshold, always,
    v, a, last, active, n_active, acc, mark, cand,
    out_step, out_idx, out_val, counters,
):
    """Advance an ALIF layer over steps [k0, k1); see ``neuron.advance_neurons``.

    Returns (n_out, step reached, input position reached); ``counters[0]`` +=
    neuron updates.
    """
    n = v.shape[0]
    cap = out_step.shape[0]
    n_in = in_step.shape[0]
    pos = pos0
    n_out = 0
    updates = 0
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
        for q in range(n_active[0]):
            j = active[q]
            if mark[j] == 0:
                mark[j] = 1
                cand[nt] = j
                nt += 1
        na = 0
        for c in range(nt):
            j = cand[c]
            mark[j] = 0
            s = last[j] + 1
            while s < k:
                x = bias[j]
                if s >= rec_start:
                    x = x + bias_rec[j]
                vv, aa, _ = _alif_update(j, x, v, a, rho, beta_a, jump, beta, gain_v, leak, b0,
                                         v_reset, reset_code, at_threshold)
                updates += 1
                if vv == v[j] and aa == a[j]:
                    break
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
            live = always[j] != 0
            if not live:
                bound = vv
                bt = beta[j]
                lk = leak[j]
                if bt < 1.0:
                    fixed = lk / (1.0 - bt)
                    if fixed > bound:
                        bound = fixed
                elif lk > 0.0:
                    bound = np.inf
                live = bound * (1.0 + 1e-9) + 1e-300 >= b0[j] or bound >= b0[j]
            if live:
                active[na] = j
                na += 1
        n_active[0] = na
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
        np.zeros(1, np.int64), np.zeros(n), np.zeros(n, np.uint8), np.zeros(n, np.int64),
        np.empty(16, np.int64), np.empty(16, np.int64), np.empty(16), np.zeros(1, np.int64),
    )
