"""A NIR model in place of the demo network: fitted input, spikes out, commands decoded."""

from pathlib import Path
from typing import Any

import nir
import numpy as np
import pytest

from spikegate.drivers.packet import Geometry, make_events
from spikegate.models.network import load_model
from spikegate.service.app import GATEWAY, init
from spikegate.service.config import (
    DemoSourceConfig,
    NirModelConfig,
    PipelineConfig,
    Settings,
)
from spikegate.service.cores import ModelCore


def write_classifier(path: Path, n_out: int = 4) -> Path:
    """Input (2, 8, 8) → Flatten → Affine → LIF → Output: neuron k likes column band k."""
    w = np.zeros((n_out, 2, 8, 8))
    for k in range(n_out):
        w[k, :, :, 2 * k:2 * k + 2] = 0.5
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
            "flat": nir.Flatten(input_type={"input": np.array([2, 8, 8])}, start_dim=0),
            "fc": nir.Affine(weight=w.reshape(n_out, -1), bias=np.zeros(n_out)),
            "lif": nir.LIF(tau=np.full(n_out, 0.02), r=np.ones(n_out), v_leak=np.zeros(n_out),
                           v_threshold=np.ones(n_out), v_reset=np.zeros(n_out)),
            "output": nir.Output(output_type={"output": np.array([n_out])}),
        },
        edges=[("input", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    nir.write(path, graph)
    return path


def test_scale_fit_maps_a_larger_sensor_onto_the_input(tmp_path: Path) -> None:
    net = load_model(write_classifier(tmp_path / "m.nir"), "norse", dt_s=1e-3)
    core = ModelCore(net, Geometry(64, 32))
    fitted = core.fit_events(make_events([0, 1, 2], [0, 63, 32], [0, 31, 16], [1, 0, 1]))
    assert fitted["x"].tolist() == [0, 7, 4] and fitted["y"].tolist() == [0, 7, 4]
    crop = ModelCore(net, Geometry(64, 32), fit="crop")
    assert len(crop.fit_events(make_events([0, 1], [3, 40], [3, 3]))) == 1
    assert crop.outside == 1


def test_events_in_the_right_band_make_the_right_neuron_fire(tmp_path: Path) -> None:
    core = ModelCore(load_model(write_classifier(tmp_path / "m.nir"), "norse", dt_s=1e-3),
                     Geometry(8, 8))
    core.warm_up()
    t = np.repeat(np.arange(20) * 1000, 8)
    events = make_events(t, np.full(t.shape, 5), np.tile(np.arange(8), 20), 1)
    out = core.step(events)
    assert len(out.spikes) > 0 and set(out.spikes["neuron"].tolist()) == {2}
    assert out.synops_total > 0 and out.n_steps == 20


async def test_the_service_runs_a_nir_model_from_its_config(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    model = NirModelConfig(path=write_classifier(tmp_path / "m.nir"), profile="norse",
                           dt_s=1e-3)
    source = DemoSourceConfig(width=32, height=32, rate_ev_s=100_000, packet_us=2_000)
    settings = Settings(pipelines=[PipelineConfig(source=source, model=model,
                                                  command_interval_ms=10)])
    app = init(settings)
    client = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    async with client.ws_connect("/ws/outputs?pipeline=demo&format=json") as ws:
        commands: list[dict[str, Any]] = []
        while not commands:
            commands = (await ws.receive_json(timeout=10))["commands"]
    assert commands[0]["command"] == "class" and 0 <= commands[0]["value"] < 4


def test_a_bad_model_path_is_a_clear_error(tmp_path: Path) -> None:
    from spikegate.service.gateway import build_pipeline

    bad = tmp_path / "broken.nir"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match=r"broken\.nir"):
        build_pipeline(PipelineConfig(model=NirModelConfig(path=bad)))
