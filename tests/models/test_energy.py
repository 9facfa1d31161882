"""models/energy: counted operations priced per precision, the dense clock-driven twin."""

from __future__ import annotations

import numpy as np
import pytest

from spikegate.drivers.packet import Geometry, make_events
from spikegate.models.demo import TrackerNetwork
from spikegate.models.energy import EnergyMeter, OpEnergies, dense_shapes
from spikegate.models.precision import set_precision
from spikegate.models.weights import bank_of
from tests.models.test_precision import input_events, small_network


def test_a_network_is_priced_from_its_own_counters() -> None:
    net = small_network()
    meter = EnergyMeter(net)
    events = input_events()
    half = len(events) // 2
    results = [net.step(events[:half]), net.step(events[half:])]
    for r, ev in zip(results, (events[:half], events[half:]), strict=True):
        meter.observe(r, ev)
    report = meter.report()
    synops = sum(r.synops_total for r in results)
    updates = sum(r.neuron_updates_total for r in results)
    assert report["synops"] == synops and report["neuron_updates"] == updates
    assert report["energy_uj"] == pytest.approx((synops * 0.9 + updates * 4.6) * 1e-6, rel=1e-4)
    steps = sum(r.n_steps for r in results)
    assert report["dense_steps"] == steps
    assert report["dense_synops"] == (16 * 12 + 12 * 4) * steps
    assert report["dense_neuron_updates"] == (12 + 4) * steps
    assert report["energy_saving_ratio"] > 1.0
    assert set(report["layers"]) <= {"fc1", "lif1", "fc2", "lif2"}


def test_lower_precision_prices_accumulates_lower() -> None:
    net = small_network()
    events = input_events()
    meter = EnergyMeter(net)
    meter.observe(net.step(events), events)
    full = meter.report()
    set_precision(bank_of(net), "int8")
    low = meter.report()  # the same counts, priced at int8
    assert low["layers"]["fc1"]["precision"] == "int8"
    assert low["layers"]["fc1"]["energy_uj"] == pytest.approx(
        full["layers"]["fc1"]["energy_uj"] * 0.03 / 0.9, rel=1e-3)


def test_the_tracker_uses_the_nominal_dt() -> None:
    net = TrackerNetwork(Geometry(8, 8), n_x=2, n_y=2)
    meter = EnergyMeter(net, OpEnergies(dense_dt_us=1000))
    events = make_events(np.arange(0, 10_000, 10), np.arange(1000) % 8, 0)
    meter.observe(net.step(events), events)
    report = meter.report()
    assert report["synops"] == 1000 * 4 and report["dense_steps"] == 10
    assert report["dense_synops"] == 64 * 4 * 10
    assert [s.name for s in dense_shapes(net)] == ["tracker"]


def test_bad_energies_are_refused() -> None:
    with pytest.raises(ValueError, match="mac_pj"):
        OpEnergies(mac_pj=-1.0)
