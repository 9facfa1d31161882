"""Dense synapses (NIR Affine / Linear): each input event scatters one weight row.

Weights are stored transposed, ``weight_t[n_in, n_out]``, so an event's
fan-out is contiguous. Within a step the values are summed per target in
float64; the step's output is every target's sum (a dense layer touches all).
Biases are not applied here: the compiler folds them into the neurons they
drive as a constant input.
"""

from __future__ import annotations

from numba import njit

from .neuron import step_candidates


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
    while pos < n_in:
        k = in_step[pos]
        for j in range(n_post):
            acc[j] = 0.0
        while pos < n_in and in_step[pos] == k:
            row = weight_t[in_idx[pos]]
            val = in_val[pos]
            for j in range(n_post):
                acc[j] += row[j] * val
            synops += n_post
            pos += 1
        for j in range(n_post):
            out_step[n_out] = k
            out_idx[n_out] = j
            out_val[n_out] = acc[j]
            n_out += 1
    counters[0] += synops
    return n_out


@njit(cache=True, nogil=True)
def dense_into_neurons(k0, k1, in_step, in_idx, in_val, pos0, weight_t, coef, flags, fstate,
                       istate, bstate, out_step, out_idx, out_val, counters, synops):
    """A dense layer fused with the neuron layer it alone drives: each input event's
    row is scattered straight into the neurons' input sums (no intermediate events).

    Same contract as ``neuron.advance_neurons``; ``synops[0]`` += synaptic operations.
    """
    acc = fstate[2]
    cand = istate[2]
    mark = bstate[0]
    n_post = weight_t.shape[1]
    cap = out_step.shape[0]
    n_in = in_step.shape[0]
    pos = pos0
    n_out = 0
    k = k0
    ops = 0
    while k < k1:
        if n_out + n_post > cap:
            break
        nt = 0
        if pos < n_in and in_step[pos] == k:
            while pos < n_in and in_step[pos] == k:
                row = weight_t[in_idx[pos]]
                val = in_val[pos]
                for j in range(n_post):
                    acc[j] += row[j] * val
                ops += n_post
                pos += 1
            for j in range(n_post):  # a dense layer touches every neuron
                mark[j] = 1
                cand[j] = j
            nt = n_post
        n_out = step_candidates(k, nt, coef, flags, fstate, istate, bstate,
                                out_step, out_idx, out_val, n_out, counters)
        k += 1
    synops[0] += ops
    return n_out, k, pos
