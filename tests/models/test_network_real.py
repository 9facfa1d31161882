"""The NIR paper's trained graphs, spike for spike, in the matching profile."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from spikegate.models.network import load_model
from spikegate.models.profiles import make_profile

pytestmark = pytest.mark.shared

LIF_SPIKES = [460, 510, 710, 760]
BRAILLE_OUT_NORSE = [8, 159, 108, 114, 104, 67, 126]


@pytest.mark.parametrize("profile", ["exact", "norse", "snntorch"])
def test_single_lif_neuron(shared, profile):
    folder = shared / "models" / "nir-paper" / "lif"
    trace = np.loadtxt(folder / "lif_norse.csv", delimiter=",")
    net = load_model(folder / "lif_norse.nir", profile, dt_s=1e-4)
    out = net.run(trace[:, :1])
    assert np.flatnonzero(out["output"][:, 0]).tolist() == LIF_SPIKES


def _braille(shared, profile, sample="test0"):
    folder = shared / "models" / "nir-paper" / "rnn"
    name = "braille_test0_input.npy" if sample == "test0" else "braille_random_input_seed12345.npy"
    x = np.load(folder / name)
    net = load_model(folder / "braille_noDelay_bias_zero.nir", profile)
    return folder, net.run(x, record=["lif1.lif"])


def test_braille_norse_matches_published(shared):
    folder, out = _braille(shared, make_profile("norse", 1e-4))
    published = np.load(folder / "published" / "norse_activity_noDelay_bias_zero.npy")
    assert out["lif1.lif"].sum() == 118
    np.testing.assert_array_equal(out["lif1.lif"], published)
    assert out["output"].sum(axis=0).tolist() == BRAILLE_OUT_NORSE


def test_braille_snntorch_matches_published(shared):
    folder, out = _braille(shared, make_profile("snntorch", 1e-4))
    published = np.load(folder / "published" / "snntorch_activity_noDelay_bias_zero.npy")
    assert out["lif1.lif"].sum() == 119
    np.testing.assert_array_equal(out["lif1.lif"], published)


@pytest.mark.parametrize("sample", ["test0", "random"])
@pytest.mark.parametrize(
    ("profile", "reset", "reference"),
    [
        ("norse", "zero", "norse_noDelay_bias_zero__{}__resetzero"),
        ("norse", "subtract", "norse_noDelay_bias_zero__{}__resetsubtract"),
        ("snntorch", "zero", "numpy_snntorchlike_noDelay_bias_zero__{}__resetzero"),
        ("snntorch", "subtract", "numpy_snntorchlike_noDelay_bias_zero__{}__resetsubtract"),
        ("snntorch", "subtract_snntorch",
         "numpy_snntorchlike_noDelay_bias_zero__{}__snntorchsubtract"),
    ],
)
def test_braille_reset_variants_match_reference_runs(shared, sample, profile, reset, reference):
    prof = dataclasses.replace(make_profile(profile, 1e-4), reset=reset)
    folder, out = _braille(shared, prof, sample)
    path = folder / f"{reference.format(sample)}.npz"
    if not path.exists():
        pytest.skip(f"{path.name} not shipped")
    ref = np.load(path)
    np.testing.assert_array_equal(out["lif1.lif"], ref["lif1_spikes"])
    np.testing.assert_array_equal(out["output"], ref["lif2_spikes"])


def test_braille_survives_export_and_reimport(shared, tmp_path):
    from spikegate.models.graph import load_graph, save_graph
    from spikegate.models.network import Network

    folder = shared / "models" / "nir-paper" / "rnn"
    x = np.load(folder / "braille_test0_input.npy")
    profile = make_profile("norse", 1e-4)
    graph = load_graph(folder / "braille_noDelay_bias_zero.nir")
    save_graph(graph, tmp_path / "again.nir")
    again = Network(load_graph(tmp_path / "again.nir"), profile).run(x, record=["lif1.lif"])
    first = Network(graph, profile).run(x, record=["lif1.lif"])
    np.testing.assert_array_equal(again["lif1.lif"], first["lif1.lif"])
    assert again["lif1.lif"].sum() == 118


def test_cli_runs_the_cnn_on_a_real_nmnist_recording(shared, tmp_path, capsys):
    from spikegate.service.cli import main

    model = shared / "models" / "nir-paper" / "cnn" / "cnn_sinabs.nir"
    recording = shared / "data" / "tonic_sample_nmnist.bin"
    rc = main(["run", str(model), "--input", str(recording), "--profile", "sinabs",
               "--dt", "1e-3", "--record", "1", "output", "--out", str(tmp_path / "o.npz")])
    assert rc == 0
    out = np.load(tmp_path / "o.npz")
    assert out["output"].shape[1:] == (10,)
    assert out["1"].shape[1:] == (16, 16, 16)
    assert out["output"].sum() > 0 and int(out["synops_total"]) > 0
    assert "4325 input spikes" in capsys.readouterr().out
