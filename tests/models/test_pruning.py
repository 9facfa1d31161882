"""models/pruning: CSR kernel == dense kernel, pruning live and restoring, synops drop."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.packet import Geometry
from spikegate.models.demo import TrackerNetwork
from spikegate.models.kernels.dense import scatter_dense
from spikegate.models.kernels.sparse import scatter_csr, to_csr
from spikegate.models.precision import set_precision, spike_agreement
from spikegate.models.pruning import (
    CsrDenseStage,
    _swap,
    prune_below,
    set_sparsity,
    sparsity_status,
)
from spikegate.models.stages import DenseStage
from spikegate.models.weights import bank_of
from tests.models.test_precision import input_events, small_network


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), st.integers(0, 40), st.floats(0.0, 0.9),
       st.integers(0, 2**31))
def test_csr_kernel_equals_the_dense_kernel(n_in: int, n_out: int, n_ev: int, cut: float,
                                            seed: int) -> None:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n_in, n_out))
    w[rng.random(w.shape) < cut] = 0.0
    step = np.sort(rng.integers(0, 5, n_ev)).astype(np.int64)
    idx = rng.integers(0, n_in, n_ev).astype(np.int64)
    val = rng.random(n_ev)
    cap = 5 * n_out
    dense = (np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap))
    sparse = (np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap))
    c_dense, c_csr = np.zeros(1, np.int64), np.zeros(1, np.int64)
    nd = scatter_dense(step, idx, val, w, np.zeros(n_out), *dense, c_dense)
    indptr, indices, data = to_csr(w)
    ns = scatter_csr(step, idx, val, indptr, indices, data, np.zeros(n_out),
                     np.zeros(n_out, np.uint8), np.empty(n_out, np.int64), *sparse, c_csr)
    got = {(int(k), int(j)): v for k, j, v in zip(*(a[:ns] for a in sparse), strict=True)}
    for k, j, v in zip(*(a[:nd] for a in dense), strict=True):
        assert np.isclose(got.get((int(k), int(j)), 0.0), v, atol=1e-12)
    assert int(c_csr[0]) == int((indptr[idx + 1] - indptr[idx]).sum())
    assert int(c_dense[0]) == n_ev * n_out


def test_a_pruned_network_gives_the_same_spikes_dense_or_csr() -> None:
    events = input_events()
    dense_net, csr_net = small_network(), small_network()
    for net in (dense_net, csr_net):
        set_sparsity(net, 0.6)
    for name in ("fc1", "fc2"):
        _swap(dense_net, bank_of(dense_net), name, DenseStage)
        _swap(csr_net, bank_of(csr_net), name, CsrDenseStage)
    a, b = dense_net.step(events), csr_net.step(events)
    np.testing.assert_array_equal(a.events, b.events)
    assert b.synops["fc1"] < a.synops["fc1"]  # only kept synapses are visited under CSR
    assert b.synops["fc1"] == len(events) * 12 - int(
        (~bank_of(csr_net).layers["fc1"].mask[events["x"]]).sum())


def test_prune_and_restore_live() -> None:
    net = small_network()
    bank = bank_of(net)
    original = bank.layers["fc1"].live.copy()
    report = set_sparsity(net, 0.5)
    assert report["fc1"]["kept"] == 16 * 12 // 2
    assert report["fc1"]["format"] in ("csr", "dense")
    live = bank.layers["fc1"].live
    assert np.count_nonzero(live) == 96
    kept = live != 0  # the largest |w| survive
    assert np.abs(original[kept]).min() >= np.abs(original[~kept]).max()
    assert sparsity_status(net)["sparsity"] == 0.5
    set_sparsity(net, None)
    np.testing.assert_array_equal(bank.layers["fc1"].live, original)
    assert type(net.stages["fc1"]) is DenseStage
    assert sparsity_status(net)["sparsity"] == 0.0


def test_pruning_composes_with_precision() -> None:
    net = small_network()
    set_precision(bank_of(net), "int8")
    set_sparsity(net, 0.5)
    layer = bank_of(net).layers["fc1"]
    assert layer.stored is not None and layer.stored.dtype == np.int8
    assert np.count_nonzero(layer.live) <= 96
    assert layer.memory_bytes() < 16 * 12 * 4  # 96 × (1 + 4) + 4 × 17 + 8
    set_sparsity(net, None)
    set_precision(bank_of(net), None)
    np.testing.assert_array_equal(layer.live, layer.original.astype(layer.live.dtype))


def test_prune_below_a_magnitude_and_the_agreement_report() -> None:
    net = small_network()
    events = input_events()
    report = spike_agreement(net, events, lambda twin: prune_below(twin, 0.2))
    assert report["synops"] <= report["synops_reference"]
    assert 0.0 <= report["agreement"] <= 1.0


def test_the_tracker_prunes_with_zeroed_weights() -> None:
    net = TrackerNetwork(Geometry(16, 16), n_x=3, n_y=3)
    report = set_sparsity(net, 0.9)
    assert report["tracker"]["format"] == "dense (zeroed weights)"
    assert np.count_nonzero(net.w) <= 0.1 * net.w.size + 1
