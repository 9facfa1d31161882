"""models/precision + weights: quantisation bounds, live switching, refusals, agreement."""

from __future__ import annotations

import nir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spikegate.drivers.packet import Geometry, make_events
from spikegate.models.demo import TrackerNetwork
from spikegate.models.graph import from_nir
from spikegate.models.network import Network
from spikegate.models.precision import (
    KnobError,
    check_precisions,
    dequantise,
    quantise,
    set_precision,
    spike_agreement,
)
from spikegate.models.profiles import make_profile
from spikegate.models.weights import bank_of


def small_network(seed: int = 0, n_in: int = 16, n_hidden: int = 12, n_out: int = 4) -> Network:
    rng = np.random.default_rng(seed)

    def lif(n: int) -> nir.LIF:
        return nir.LIF(tau=np.full(n, 5e-3), r=np.ones(n), v_leak=np.zeros(n),
                       v_threshold=np.full(n, 0.3))

    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([n_in])}),
            "fc1": nir.Linear(weight=rng.normal(0, 0.4, (n_hidden, n_in))),
            "lif1": lif(n_hidden),
            "fc2": nir.Linear(weight=rng.normal(0, 0.4, (n_out, n_hidden))),
            "lif2": lif(n_out),
            "output": nir.Output(output_type={"output": np.array([n_out])}),
        },
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
               ("lif2", "output")],
        type_check=False,
    )
    return Network(from_nir(g), make_profile("snntorch", dt_s=1e-3))


def input_events(n: int = 3000, n_in: int = 16, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(np.sort(rng.integers(0, 200_000, n)), rng.integers(0, n_in, n), 0, 1)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(1, 40),
              elements=st.floats(-100, 100, allow_nan=False, allow_subnormal=False)),
       st.sampled_from(["int8", "int16"]))
def test_fixed_point_error_is_at_most_half_a_step(w: np.ndarray, precision: str) -> None:
    codes, scale = quantise(w, precision)
    assert codes.dtype == np.dtype(precision)
    assert np.all(np.abs(dequantise(codes, scale) - w) <= scale / 2 + 1e-12)
    if np.any(w):
        assert np.max(np.abs(codes)) == (127 if precision == "int8" else 32767)


def test_float16_rounds_and_refuses_what_does_not_fit() -> None:
    stored, scale = quantise(np.array([0.1, -2.5]), "float16")
    assert stored.dtype == np.float16 and scale == 1.0
    with pytest.raises(KnobError, match="does not fit float16"):
        quantise(np.array([1e6]), "float16", "big")


def test_int8_refuses_a_layer_whose_range_is_too_wide() -> None:
    w = np.full(1001, 1e-3)
    w[0] = 1.0
    with pytest.raises(KnobError, match="int8 would round weights carrying 50 % of its"):
        from spikegate.models.precision import check_precision

        check_precision(w, "int8", "wide")


def test_switching_precision_live_and_back_restores_the_float_weights() -> None:
    net = small_network()
    bank = bank_of(net)
    assert set(bank.layers) == {"fc1", "fc2"}
    before = {n: layer.live.copy() for n, layer in bank.layers.items()}
    set_precision(bank, "int8")
    assert not np.array_equal(bank.layers["fc1"].live, before["fc1"])
    assert bank.layers["fc1"].stored is not None and bank.layers["fc1"].stored.dtype == np.int8
    mem = bank.memory_bytes()
    assert mem["fc1"] == 12 * 16 + 8 and bank.float32_bytes() == (12 * 16 + 4 * 12) * 4
    set_precision(bank, {"fc2": "float16"})  # fc1 back to float32
    np.testing.assert_array_equal(bank.layers["fc1"].live, before["fc1"])
    set_precision(bank, None)
    for name, layer in bank.layers.items():
        np.testing.assert_array_equal(layer.live, before[name])


def test_a_refused_precision_changes_nothing() -> None:
    net = small_network()
    bank = bank_of(net)
    bank.layers["fc2"].original[0, 0] = 1e6  # a weight float16 cannot hold
    before = bank.layers["fc1"].live.copy()
    with pytest.raises(KnobError, match="'fc2'"):
        set_precision(bank, "float16")
    np.testing.assert_array_equal(bank.layers["fc1"].live, before)
    with pytest.raises(KnobError, match="no weight or neuron layer named 'nope'"):
        check_precisions(bank, {"nope": "int8"})


def test_agreement_is_one_at_float32_and_drops_with_bits() -> None:
    net = small_network()
    events = input_events()
    same = spike_agreement(net, events, lambda twin: set_precision(bank_of(twin), None))
    assert same["agreement"] == 1.0 and same["spikes_reference"] > 10
    int8 = spike_agreement(net, events, lambda twin: set_precision(bank_of(twin), "int8"))
    assert 0.5 < int8["agreement"] <= 1.0
    # the live network was not touched by the copies; a quantised one is compared to its
    # float originals
    assert net.next_step == 0
    set_precision(bank_of(net), "int8")
    again = spike_agreement(net, events, lambda twin: set_precision(bank_of(twin), "int8"))
    assert again == int8


def test_the_demo_tracker_takes_a_precision_too() -> None:
    net = TrackerNetwork(Geometry(16, 16), n_x=3, n_y=3)
    bank = bank_of(net)
    assert list(bank.layers) == ["tracker"]
    set_precision(bank, "int8")
    assert bank.layers["tracker"].live.dtype == np.float64
    assert len(np.unique(np.rint(bank.layers["tracker"].live / bank.layers["tracker"].scale))
               ) <= 255


def test_neuron_state_is_rounded_to_its_precision() -> None:
    net = small_network()
    bank = bank_of(net)
    assert set(bank.states) == {"lif1", "lif2"}
    set_precision(bank, {"lif1": "int8"})
    assert bank.state_rounded and bank.states["lif2"].precision == "float32"
    net.step(input_events(500))
    bank.round_state()
    scale = bank.states["lif1"].scale
    v = net.stages["lif1"].v
    np.testing.assert_allclose(v / scale, np.rint(v / scale), atol=1e-9)
    assert bank.state_bytes()["lif1"] == 12 * 2 * 1
    report = spike_agreement(net, input_events(), lambda twin: set_precision(bank_of(twin),
                                                                             "int8"))
    assert 0.0 <= report["agreement"] <= 1.0
    set_precision(bank, None)
    assert not bank.state_rounded
