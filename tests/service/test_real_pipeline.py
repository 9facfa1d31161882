"""The product on real inputs: a real N-MNIST recording replayed through the NIR paper's
trained CNN (exported from Sinabs), commands out over the websocket."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spikegate.drivers.files import read_events
from spikegate.models.network import load_model
from spikegate.service.app import GATEWAY, init
from spikegate.service.config import (
    FileSourceConfig,
    NirModelConfig,
    PipelineConfig,
    Settings,
)


@pytest.mark.parametrize("hold_last_step", [False, True])
async def test_nmnist_recording_through_the_trained_cnn(
    shared: Path, aiohttp_client: Any, hold_last_step: bool
) -> None:
    recording = shared / "data" / "tonic_sample_nmnist.bin"
    model = shared / "models" / "nir-paper" / "cnn" / "cnn_sinabs.nir"
    _, events = read_events(recording)
    cfg = PipelineConfig(
        name="nmnist",
        source=FileSourceConfig(path=recording, speed=None, loop=False, packet_events=256),
        model=NirModelConfig(path=model, profile="sinabs", dt_s=1e-3,
                             hold_last_step=hold_last_step),
        queue_policy="block",
        command_interval_ms=20,
    )
    app = init(Settings(pipelines=[cfg]))
    client = await aiohttp_client(app)
    gateway = app[GATEWAY]
    async with client.ws_connect("/ws/outputs?pipeline=nmnist&format=json") as ws:
        await gateway.wait_ready()
        classes = []
        while True:
            msg = await ws.receive_json(timeout=30)
            classes += [c for c in msg["commands"] if c["command"] == "class"]
            if classes and gateway.pipelines["nmnist"].source_done:
                break
    await gateway.pipelines["nmnist"].stop()
    status = gateway.pipelines["nmnist"].status()
    assert status["core"]["events"] == len(events) and sum(status["drops"].values()) == 0
    assert status["core"]["errors"] == 0

    # the offline, one-call run of the same graph
    reference = load_model(model, "sinabs", dt_s=1e-3).step(events)
    counts = np.bincount(reference.events["x"], minlength=10)
    assert classes[-1]["value"] == int(np.argmax(counts))
    if hold_last_step:  # exact whatever the packets, but for the step still held
        held = reference.first_step + reference.n_steps - 1  # the last input event's step
        assert status["core"]["spikes"] == int(np.count_nonzero(reference.steps < held))
