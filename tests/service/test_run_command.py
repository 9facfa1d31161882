"""``spikegate run``: a NIR model on a raster or an event file → per-step counts in .npz."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from spikegate.drivers.packet import make_events
from spikegate.models.graph import from_nir
from spikegate.models.network import Network
from spikegate.models.profiles import make_profile
from spikegate.service.cli import main


def write_model(path, n_in=4, n=3):
    rng = np.random.default_rng(0)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n_in])}),
            "fc": nir.Affine(weight=rng.integers(0, 9, (n, n_in)) / 8, bias=np.zeros(n)),
            "lif": nir.LIF(tau=np.full(n, 1e-2), r=np.full(n, 8.0), v_leak=np.zeros(n),
                           v_threshold=np.full(n, 0.5), v_reset=np.zeros(n)),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
        type_check=False,
    )
    nir.write(str(path), graph)
    return graph


def test_run_raster_writes_counts_and_synops(tmp_path, capsys):
    graph = write_model(tmp_path / "m.nir")
    x = np.random.default_rng(1).binomial(1, 0.3, (40, 4)).astype(np.uint8)
    np.save(tmp_path / "in.npy", x)
    rc = main(["run", str(tmp_path / "m.nir"), "--input", str(tmp_path / "in.npy"),
               "--profile", "snntorch", "--dt", "1e-3", "--record", "fc", "lif",
               "--out", str(tmp_path / "out.npz")])
    assert rc == 0
    line = capsys.readouterr().out.strip()
    assert "40 steps" in line and "\n" not in line
    out = np.load(tmp_path / "out.npz")
    want = Network(from_nir(graph), make_profile("snntorch", 1e-3)).run(x)["output"]
    assert out["lif"].shape == (40, 3)
    np.testing.assert_array_equal(out["lif"], want)
    assert int(out["synops__fc"]) == int(x.sum()) * 3
    assert int(out["synops_total"]) >= int(out["synops__fc"])


def test_run_structured_npy_of_events(tmp_path):
    write_model(tmp_path / "m.nir")
    events = make_events([0, 1500, 1600, 5000], [0, 1, 3, 2])
    np.save(tmp_path / "ev.npy", events)
    rc = main(["run", str(tmp_path / "m.nir"), "--input", str(tmp_path / "ev.npy"),
               "--profile", "exact", "--dt", "1e-3", "--out", str(tmp_path / "out.npz")])
    assert rc == 0
    assert np.load(tmp_path / "out.npz")["output"].shape == (6, 3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--record", "nope"], "no node 'nope'"),
        (["--dt", "-1"], "dt must be a positive"),
    ],
)
def test_run_user_errors_are_one_line(tmp_path, capsys, argv, message):
    write_model(tmp_path / "m.nir")
    np.save(tmp_path / "in.npy", np.zeros((5, 4)))
    rc = main(["run", str(tmp_path / "m.nir"), "--input", str(tmp_path / "in.npy"),
               "--profile", "norse", "--out", str(tmp_path / "o.npz"), *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.count("\n") == 1


def test_run_wrong_raster_shape(tmp_path, capsys):
    write_model(tmp_path / "m.nir")
    np.save(tmp_path / "in.npy", np.zeros((5, 7)))
    rc = main(["run", str(tmp_path / "m.nir"), "--input", str(tmp_path / "in.npy"),
               "--profile", "norse", "--out", str(tmp_path / "o.npz")])
    assert rc == 2
    assert "does not match" in capsys.readouterr().err
