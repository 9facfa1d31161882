"""Sinabs' reading of NIR's IF: several spikes per step, subtractive reset, v ≥ −θ."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from spikegate.models.graph import from_nir
from spikegate.models.network import Network
from spikegate.models.profiles import make_profile


def if_net(profile: str, threshold: float = 1.0) -> Network:
    g = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type={"input": np.array([1])}),
            "w": nir.Affine(weight=np.ones((1, 1)), bias=np.zeros(1)),
            "if": nir.IF(r=np.ones(1), v_threshold=np.full(1, threshold), v_reset=np.zeros(1)),
            "out": nir.Output(output_type={"output": np.array([1])}),
        },
        edges=[("in", "w"), ("w", "if"), ("if", "out")],
        type_check=False,
    )
    return Network(from_nir(g), make_profile(profile, dt_s=1e-3))


@pytest.mark.parametrize("threshold", [1.0, 0.5])
def test_sinabs_if_fires_floor_v_over_theta_and_subtracts(threshold):
    # input per step (in units of θ): 2.7 → 2 spikes, v = 0.7θ; +0.3 → 1 spike (v ≥ θ fires)
    x = np.array([[2.7], [0.3], [0.0], [-5.0], [0.5], [1.5]]) * threshold
    spikes = if_net("sinabs", threshold).run(x)["out"][:, 0]
    # step 3: v = −5θ clamps to −θ; step 4: −θ + 0.5θ = −0.5θ; step 5: −0.5θ + 1.5θ = θ → 1
    assert spikes.tolist() == [2.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def test_norse_if_is_one_spike_reset_to_zero_no_bound():
    x = np.array([[2.7], [0.3], [0.0], [-5.0], [5.5], [1.5]])
    spikes = if_net("norse").run(x)["out"][:, 0]
    # 2.7 > 1 → 1 spike, v = 0; 0.3; 0.3; −4.7 (no bound); 0.8; 2.3 → 1
    assert spikes.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
