"""Dense synapses (NIR Affine / Linear): each input event scatters one weight row.

Weights are stored transposed, ``weight_t[n_in, n_out]``, so an event's
fan-out is contiguous. Within a step the values are summed per target in
float64; the step's output is every target's sum (a dense layer touches all).
Biases are not applied here: the compiler folds them into the neurons they
drive as a constant input.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .neuron import WAKE, next_busy_step, step_all, step_candidates


@njit(cache=True, nogil=True)
def scatter_dense(in_step, in_idx, in_val, weight_t, acc, out_step, out_idx, out_val, counters):
    """Scatter sorted-by-step input events through ``weight_t``.

    Writes one output event per target for each step that had input
    (capacity: steps with input × n_out). Returns the number written;
    ``counters[0]`` += synaptic operations.
    """
    n_in = in_step.shape[0]
    n_post = weight_t.shape[1]
    n_out = 0
    pos = 0
    synops = 0
    unit = all_ones(in_val, 0)
    while pos < n_in:
        k = in_step[pos]
        for j in range(n_post):
            acc[j] = 0.0
        end = add_step_rows(pos, in_step, in_idx, in_val, weight_t, acc, unit)
        synops += (end - pos) * n_post
        pos = end
        for j in range(n_post):
            out_step[n_out] = k
            out_idx[n_out] = j
            out_val[n_out] = acc[j]
            n_out += 1
    counters[0] += synops
    return n_out


@njit(cache=True, nogil=True)
def add_step_rows(pos, in_step, in_idx, in_val, weight_t, acc, unit):
    """Add the rows of the events of step ``in_step[pos]`` (from ``pos`` on) into ``acc``
    (``add_rows_unit`` when every value is 1.0); returns the position after them."""
    k = in_step[pos]
    end = pos
    while end < in_step.shape[0] and in_step[end] == k:
        end += 1
    if unit:
        return add_rows_unit(pos, end, in_idx, weight_t, acc)
    return add_rows(pos, end, in_idx, in_val, weight_t, acc)


@njit(cache=True, nogil=True)
def add_rows_unit(pos, end, in_idx, weight_t, acc):
    """``add_rows`` when every value is 1.0 (single spikes): ``w · 1.0`` is ``w``, so
    leaving the product out gives the same sums with fewer instructions."""
    n_post = weight_t.shape[1]
    while pos + 4 <= end:
        r0 = weight_t[in_idx[pos]]
        r1 = weight_t[in_idx[pos + 1]]
        r2 = weight_t[in_idx[pos + 2]]
        r3 = weight_t[in_idx[pos + 3]]
        for j in range(n_post):
            s = acc[j] + np.float64(r0[j])
            s = s + np.float64(r1[j])
            s = s + np.float64(r2[j])
            acc[j] = s + np.float64(r3[j])
        pos += 4
    while pos < end:
        row = weight_t[in_idx[pos]]
        for j in range(n_post):
            acc[j] += np.float64(row[j])
        pos += 1
    return end


@njit(cache=True, nogil=True)
def all_ones(values, pos):
    """True when ``values[pos:]`` are all 1.0."""
    for p in range(pos, values.shape[0]):  # noqa: SIM110 (a plain loop in a kernel)
        if values[p] != 1.0:
            return False
    return True


@njit(cache=True, nogil=True)
def add_rows(pos, end, in_idx, in_val, weight_t, acc):
    """``acc += weight_t[in_idx[p]] * in_val[p]`` for p in [pos, end), in that order.

    Four rows per pass over ``acc`` (one load and store of each sum per four
    rows instead of per row); the additions per target stay in event order,
    so the sums are bit-for-bit those of one row at a time. Returns ``end``.
    """
    n_post = weight_t.shape[1]
    while pos + 4 <= end:
        r0 = weight_t[in_idx[pos]]
        r1 = weight_t[in_idx[pos + 1]]
        r2 = weight_t[in_idx[pos + 2]]
        r3 = weight_t[in_idx[pos + 3]]
        v0 = in_val[pos]
        v1 = in_val[pos + 1]
        v2 = in_val[pos + 2]
        v3 = in_val[pos + 3]
        for j in range(n_post):
            s = acc[j] + r0[j] * v0
            s = s + r1[j] * v1
            s = s + r2[j] * v2
            acc[j] = s + r3[j] * v3
        pos += 4
    while pos < end:
        row = weight_t[in_idx[pos]]
        val = in_val[pos]
        for j in range(n_post):
            acc[j] += row[j] * val
        pos += 1
    return end


@njit(cache=True, nogil=True)
def dense_into_neurons(k0, k1, in_step, in_idx, in_val, pos0, weight_t, coef, flags, fstate,
                       istate, bstate, sched, out_step, out_idx, out_val, counters, synops):
    """A dense layer fused with the neuron layer it alone drives: each input event's
    row is scattered straight into the neurons' input sums (no intermediate events).

    Same contract as ``neuron.advance_neurons``; ``synops[0]`` += synaptic operations.
    """
    acc = fstate[2]
    n_post = weight_t.shape[1]
    cap = out_step.shape[0]
    n_in = in_step.shape[0]
    wake = istate[WAKE]
    pos = pos0
    n_out = 0
    k = k0
    ops = 0
    unit = all_ones(in_val, pos0)
    while True:
        k = next_busy_step(k, k1, in_step, pos, flags, sched, wake)
        if k >= k1 or n_out + n_post > cap:
            break
        if pos < n_in and in_step[pos] == k:
            end = add_step_rows(pos, in_step, in_idx, in_val, weight_t, acc, unit)
            ops += (end - pos) * n_post
            pos = end
            # a dense layer touches every neuron
            n_out = step_all(k, coef, flags, fstate, istate, bstate, sched, out_step, out_idx,
                             out_val, n_out, counters)
        else:
            n_out = step_candidates(k, 0, coef, flags, fstate, istate, bstate, sched,
                                    out_step, out_idx, out_val, n_out, counters)
        k += 1
    synops[0] += ops
    return n_out, k, pos
