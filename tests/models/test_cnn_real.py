"""The NIR paper's N-MNIST CNN (exported from Sinabs), spike for spike against Norse and Sinabs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spikegate.models.network import load_model

pytestmark = pytest.mark.shared

IF_NODES = ["1", "3", "6", "10", "12"]


@pytest.fixture
def cnn_input(shared):
    folder = shared / "models" / "nir-paper" / "cnn"
    return folder, np.load(folder / "cnn_random_input.npz")["x"]


@pytest.mark.parametrize("profile", ["norse", "sinabs"])
def test_cnn_reproduces_the_framework_spike_for_spike(cnn_input, profile):
    folder, x = cnn_input
    reference = np.load(folder / f"cnn_random_{profile}.npz")
    summary = json.loads((folder / "cnn_random_reference_summary.json").read_text())
    net = load_model(folder / "cnn_sinabs.nir", profile, dt_s=1e-3)
    assert net.input_shape == (2, 34, 34) and net.output_shape == (10,)
    counts = []
    for b in range(x.shape[1]):
        out = net.run(x[:, b], record=IF_NODES)
        for node in IF_NODES:
            want = reference[f"{profile}_spikes_node{node}"][:, b]
            np.testing.assert_array_equal(out[node], want, err_msg=f"{profile}: node {node}")
        counts.append(out["output"].sum(axis=0).astype(int).tolist())
    assert counts == summary[f"{profile}_output_counts"]
    totals = summary[f"{profile}_total_spikes"]
    assert int(reference[f"{profile}_spikes_node12"].sum()) == totals[f"{profile}_spikes_node12"]


def test_cnn_event_input_equals_raster_input(cnn_input):
    """Events binned by the core give the same output as the (T, 2, 34, 34) raster."""
    from spikegate.drivers.packet import make_events

    folder, x = cnn_input
    frames = x[:, 0]
    t, p, y, xx = np.nonzero(frames)
    events = make_events(t * 1000 + 500, xx, y, p)
    net = load_model(folder / "cnn_sinabs.nir", "sinabs", dt_s=1e-3)
    by_raster = net.run(frames)["output"]
    net.reset_state()
    result = net.step(events, until_step=frames.shape[0])
    got = np.zeros_like(by_raster)
    np.add.at(got, (result.steps, result.events["x"]), 1)
    np.testing.assert_array_equal(got, by_raster)
    assert result.synops["0"] > 0 and result.synops["4"] > 0  # conv and pool counted
