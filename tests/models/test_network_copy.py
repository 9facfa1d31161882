"""A deep copy of a Network (what the precision comparison runs) owns its state."""

from __future__ import annotations

import copy

import nir
import numpy as np

from spikegate.models.graph import from_nir
from spikegate.models.network import Network
from spikegate.models.profiles import make_profile
from spikegate.models.stages import NeuronStage


def test_deepcopy_keeps_state_views_together() -> None:
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Linear(weight=np.full((2, 3), 0.3)),
            "lif": nir.CubaLIF(tau_syn=np.full(2, 5e-3), tau_mem=np.full(2, 2e-2),
                               r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.full(2, 9.0),
                               v_reset=np.zeros(2), w_in=np.ones(2)),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
        type_check=False,
    )
    net = Network(from_nir(graph), make_profile("exact", dt_s=1e-3))
    twin = copy.deepcopy(net)
    twin.step(np.ones((4, 3)))
    stage = twin.stages["lif"]
    assert isinstance(stage, NeuronStage)
    assert np.any(stage.v != 0) and np.any(stage.i != 0)
    assert np.shares_memory(stage.v, stage.fstate) and np.shares_memory(stage.i, stage.fstate)
    original = net.stages["lif"]
    assert isinstance(original, NeuronStage)
    assert not np.any(original.fstate)
