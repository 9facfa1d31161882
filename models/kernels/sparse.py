"""Sparse (CSR) synapses: each input event scatters only its row's kept weights.

Rows are inputs: ``indptr[n_in + 1]``, ``indices[nnz]`` (targets, ascending
per row), ``data[nnz]``. Within a step values are summed per target in
float64; the step's output has one entry per target touched, in ascending
target order (an untouched target receives nothing, which the neuron stages
read as zero input).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def scatter_csr(in_step, in_idx, in_val, indptr, indices, data, acc, mark, touched,
                out_step, out_idx, out_val, counters):
    """Scatter sorted-by-step input events through a CSR matrix.

    Capacity of the outputs: steps with input × n_out. Returns the number
    written; ``counters[0]`` += synaptic operations (kept weights visited).
    """
    n_in = in_step.shape[0]
    n_out = 0
    pos = 0
    synops = 0
    while pos < n_in:
        k = in_step[pos]
        n_t = 0
        while pos < n_in and in_step[pos] == k:
            r = in_idx[pos]
            val = in_val[pos]
            for q in range(indptr[r], indptr[r + 1]):
                j = indices[q]
                if mark[j] == 0:
                    mark[j] = 1
                    acc[j] = 0.0
                    touched[n_t] = j
                    n_t += 1
                acc[j] += data[q] * val
            synops += indptr[r + 1] - indptr[r]
            pos += 1
        targets = np.sort(touched[:n_t])
        for i in range(n_t):
            j = targets[i]
            out_step[n_out] = k
            out_idx[n_out] = j
            out_val[n_out] = acc[j]
            mark[j] = 0
            n_out += 1
    counters[0] += synops
    return n_out


def to_csr(weight_t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR (indptr, indices, data) of a ``[n_in, n_out]`` matrix's non-zero entries."""
    rows, cols = np.nonzero(weight_t)
    indptr = np.zeros(weight_t.shape[0] + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    np.cumsum(indptr, out=indptr)
    return indptr, cols.astype(np.int64), np.ascontiguousarray(weight_t[rows, cols],
                                                                dtype=np.float64)
