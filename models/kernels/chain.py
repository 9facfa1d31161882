"""A chain of fused dense → neuron layers in one kernel call.

``Network.step`` on a plain feed-forward model (Input → Affine → LIF → … →
Output) would call ``dense_into_neurons`` once per layer and allocate and
slice the intermediate outputs in Python; at 1 ms packets that bookkeeping
cost more than the arithmetic. Here the whole chain runs in one call: layer
after layer over the call's steps [k0, k1), each layer's output the next
one's input, with the same kernel and in the same order as the per-layer
path, so the spikes and states are the same.

The layers' arrays come as tuples of one array per layer (the same type in
every layer, so that the loop can index them).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .dense import dense_into_neurons


@njit(cache=True, nogil=True)
def run_dense_chain(k0, k1, in_step, in_idx, in_val, weights, coefs, flags, fstates, istates,
                    bstates, scheds, counters, dense_counters, deltas):
    """Advance every layer over [k0, k1); returns the last layer's (step, index, value).

    ``deltas[2·l]`` = synaptic operations of layer l's dense part in this call,
    ``deltas[2·l + 1]`` = its neuron updates.
    """
    step, idx, val = in_step, in_idx, in_val
    for layer in range(len(weights)):
        w = weights[layer]
        n_post = w.shape[1]
        cap = max(2 * n_post, 2 * step.shape[0], 256)
        o_step = np.empty(cap, np.int64)
        o_idx = np.empty(cap, np.int64)
        o_val = np.empty(cap, np.float64)
        synops0 = dense_counters[layer][0]
        updates0 = counters[layer][0]
        n_tot = 0
        k = k0
        pos = 0
        while k < k1:
            n_out, k, pos = dense_into_neurons(
                k, k1, step, idx, val, pos, w, coefs[layer], flags[layer], fstates[layer],
                istates[layer], bstates[layer], scheds[layer], o_step[n_tot:], o_idx[n_tot:],
                o_val[n_tot:], counters[layer], dense_counters[layer])
            n_tot += n_out
            if k < k1:  # the buffer ran short: twice the room, and on from step k
                cap *= 2
                grown_step = np.empty(cap, np.int64)
                grown_idx = np.empty(cap, np.int64)
                grown_val = np.empty(cap, np.float64)
                grown_step[:n_tot] = o_step[:n_tot]
                grown_idx[:n_tot] = o_idx[:n_tot]
                grown_val[:n_tot] = o_val[:n_tot]
                o_step, o_idx, o_val = grown_step, grown_idx, grown_val
        deltas[2 * layer] = dense_counters[layer][0] - synops0
        deltas[2 * layer + 1] = counters[layer][0] - updates0
        step = o_step[:n_tot]
        idx = o_idx[:n_tot]
        val = o_val[:n_tot]
    return step, idx, val
