"""service/allocation: attention, rate budgets, latency-budget shedding, and the accounting."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from spikegate.drivers.packet import EventPacket, Geometry, make_events
from spikegate.models.demo import TrackerNetwork
from spikegate.models.weights import bank_of
from spikegate.service.allocation import AllocationConfig, Allocator, ShedPolicy
from spikegate.service.config import PipelineConfig
from spikegate.service.decoding import TrackerDecoder
from spikegate.service.gateway import build_pipeline
from spikegate.service.pipeline import Pipeline
from spikegate.service.queues import FullPolicy
from tests.conftest import eventually, make_packet

GEOM = Geometry(32, 32)


def block(x0: int, y0: int, n: int, t0_us: int = 0, dt_us: int = 1) -> np.ndarray:
    """``n`` events on a 4×4 block at (x0, y0), one every ``dt_us``."""
    i = np.arange(n)
    return make_events(t0_us + i * dt_us, x0 + i % 4, y0 + (i // 4) % 4, i % 2)


# --- the allocator alone ------------------------------------------------------------------


def test_roi_sheds_what_is_outside_and_counts_it() -> None:
    alloc = Allocator(GEOM, AllocationConfig(roi=[(0, 0, 8, 8)]))
    events = np.concatenate([block(0, 0, 100), block(20, 20, 50, t0_us=100)])
    kept = alloc.admit(events, time.monotonic_ns())
    assert len(kept) == 100 and kept["x"].max() < 8
    assert alloc.shed.by_reason == {"roi": 50}


def test_one_rectangle_is_taken_as_a_list() -> None:
    assert AllocationConfig.model_validate({"roi": [1, 2, 3, 4]}).roi == [(1, 2, 3, 4)]


def test_outside_roi_downsample_keeps_a_trickle_in_time_order() -> None:
    cfg = AllocationConfig(roi=[(0, 0, 8, 8)], outside_roi="downsample", outside_period_ms=1)
    alloc = Allocator(GEOM, cfg)
    events = np.concatenate([block(0, 0, 100), block(20, 20, 100)])
    events = events[np.argsort(events["t"], kind="stable")]
    kept = alloc.admit(events, time.monotonic_ns())
    outside = kept[kept["x"] >= 20]
    assert 0 < len(outside) < 100 and np.all(np.diff(kept["t"]) >= 0)
    assert alloc.shed.by_reason["roi"] == 200 - len(kept)


def test_following_roi_moves_to_the_activity() -> None:
    cfg = AllocationConfig.model_validate({"roi": {"follow": "centroid", "size": [8, 8]}})
    alloc = Allocator(GEOM, cfg)
    for k in range(20):
        alloc.admit(block(24, 24, 64, t0_us=k * 100), time.monotonic_ns())
    x0, y0, w, h = alloc.follow_rect((8, 8))
    assert (w, h) == (8, 8) and 20 <= x0 <= 24 and 20 <= y0 <= 24
    assert alloc.status()["roi_now"] == [x0, y0, 8, 8]


def test_rate_budget_per_region_is_counted() -> None:
    cfg = AllocationConfig(roi=[(0, 0, 8, 8), (16, 16, 8, 8)],
                           rate_budget_ev_s=[1_000.0, 1e6], rate_window_ms=1)
    alloc = Allocator(GEOM, cfg)
    events = np.concatenate([block(0, 0, 1000), block(16, 16, 1000, t0_us=1000)])
    kept = alloc.admit(events, time.monotonic_ns())
    assert int((kept["x"] < 8).sum()) <= 3  # 1 kev/s over 1 ms + a burst of 1
    assert int((kept["x"] >= 16).sum()) == 1000
    assert alloc.shed.by_reason["rate_budget"] == 2000 - len(kept)


@pytest.mark.parametrize("policy", list(ShedPolicy))
def test_latency_budget_sheds_by_the_declared_policy_when_the_core_is_too_slow(
        policy: ShedPolicy) -> None:
    alloc = Allocator(GEOM, AllocationConfig(latency_budget_ms=5, shed_policy=policy))
    alloc.observe(1000, 0.01)  # 10 µs per event
    t_ns = time.monotonic_ns()
    kept_total = 0
    rng = np.random.default_rng(0)
    for k in range(60):  # 1000 events per ms of wall clock: 1 Mev/s, ten times too many
        n = 1000
        events = make_events(k * 1000 + np.sort(rng.integers(0, 1000, n)),
                             rng.integers(0, 32, n), rng.integers(0, 32, n), 1)
        kept = alloc.admit(events, t_ns + k * 1_000_000, now_ns=t_ns + k * 1_000_000)
        kept_total += len(kept) if k >= 30 else 0
    assert alloc.keep_fraction < 0.2
    assert set(alloc.shed.by_reason) == {str(policy)}
    assert alloc.shed.total + alloc.events_admitted == alloc.events_in
    assert kept_total < 0.3 * 30 * 1000  # settled near the 8 % the core can take
    assert alloc.chunk_events() == 1024  # a quarter of 5 ms at 10 µs/event, floored at 1024


def test_no_shedding_while_the_core_keeps_up() -> None:
    alloc = Allocator(GEOM, AllocationConfig(latency_budget_ms=50))
    alloc.observe(1000, 1e-4)  # 0.1 µs per event
    t_ns = time.monotonic_ns()
    for k in range(20):  # each packet waited 10 ms in the queue: within the 50 ms budget
        alloc.admit(block(0, 0, 100, t0_us=k * 1000), t_ns + k * 1_000_000,
                    now_ns=t_ns + k * 1_000_000 + 10_000_000)
    assert alloc.shed.total == 0 and alloc.keep_fraction == 1.0
    assert alloc.status()["last_queue_wait_ms"] == 10.0


def test_a_roi_outside_the_sensor_is_refused_with_a_sentence() -> None:
    alloc = Allocator(GEOM)
    with pytest.raises(ValueError, match=r"roi\[0\] = \[30, 0, 8, 8\] reaches past the 32x32"):
        alloc.configure(AllocationConfig(roi=[(30, 0, 8, 8)]))
    with pytest.raises(ValueError, match="2 values for 1 region"):
        alloc.configure(AllocationConfig(rate_budget_ev_s=[1.0, 2.0]))
    with pytest.raises(ValidationError):
        AllocationConfig(latency_budget_ms=0)


def test_config_refuses_a_roi_outside_the_sensor() -> None:
    cfg = PipelineConfig.model_validate({
        "source": {"kind": "demo", "width": 16, "height": 16},
        "allocation": {"roi": [[10, 10, 8, 8]]}})
    with pytest.raises(ValueError, match="reaches past the 16x16 sensor"):
        build_pipeline(cfg)


# --- in a pipeline ----------------------------------------------------------------------


class ListSource:
    def __init__(self, packets: list[EventPacket]) -> None:
        self.name = "list"
        self.items = packets

    @property
    def geometry(self) -> Geometry:
        return GEOM

    async def packets(self) -> AsyncIterator[EventPacket]:
        import asyncio

        for p in self.items:
            yield p
            await asyncio.sleep(0)


class SlowTracker(TrackerNetwork):
    """The tracker plus a fixed cost per event: a core that cannot keep up."""

    def step(self, events: np.ndarray) -> Any:
        time.sleep(2e-6 * len(events))
        return super().step(events)


def accounted(p: Pipeline) -> tuple[int, int]:
    a = p.status()["accounting"]
    return a["events_in"], a["processed"] + a["shed"] + sum(a["dropped"].values())


async def test_switching_knobs_under_full_load_loses_no_event_uncounted() -> None:
    packets = [make_packet(400, seq=s, t0_us=s * 4000, seed=s) for s in range(150)]
    net = SlowTracker(GEOM, n_x=3, n_y=3)
    p = Pipeline("p", ListSource(packets), net, TrackerDecoder(6, net.decode), [],
                 queue_size=8, queue_policy=FullPolicy.DROP_OLDEST)
    await p.start()
    changes: list[dict[str, Any]] = [
        {"latency_budget_ms": 2, "shed_policy": "thin"},
        {"roi": [[0, 0, 16, 16]]},
        {"shed_policy": "refractory"},
        {"roi": {"follow": "centroid", "size": [12, 12]}, "rate_budget_ev_s": 50_000},
        {"shed_policy": "downsample", "roi": None},
        {"latency_budget_ms": None, "rate_budget_ev_s": None},
    ]
    for change in changes:
        before = p.counters.packets
        p.apply_settings(change)
        await eventually(lambda b=before: p.counters.packets > b + 3 or p.source_done,
                         what="packets after a switch")
    await eventually(lambda: p.source_done)
    await p.close()
    events_in, out = accounted(p)
    assert events_in == 150 * 400
    assert events_in == out, p.status()["accounting"]
    assert p.status()["shed"]["total"] > 0


async def test_a_big_packet_is_split_into_calls_under_a_latency_budget() -> None:
    net = TrackerNetwork(GEOM, n_x=3, n_y=3)
    p = Pipeline("p", ListSource([make_packet(5000)]), net, TrackerDecoder(6, net.decode), [],
                 allocation=AllocationConfig(latency_budget_ms=1000))
    p.allocator.observe(1000, 1.0)  # 1 ms per event: 250 per quarter-budget, floored at 1024
    await p.start()
    await eventually(lambda: p.counters.packets == 1, what="the packet through the core")
    await p.close()
    assert p.counters.events + p.allocator.shed.total == 5000
    assert p.counters.outputs >= 2  # the first call took 1024 events: one output per call


async def test_refused_settings_leave_the_pipeline_as_it_was() -> None:
    net = TrackerNetwork(GEOM, n_x=3, n_y=3)
    p = Pipeline("p", ListSource([]), net, TrackerDecoder(6, net.decode), [],
                 allocation=AllocationConfig(roi=[(0, 0, 8, 8)]))
    before = p.settings()
    for bad, needle in [({"roi": [[0, 0, 40, 8]]}, "reaches past"),
                        ({"latency_budget_ms": 0}, "latency_budget_ms"),
                        ({"roi": [[0, 0, 8, 8]], "rate_budget_ev_s": [1.0, 2.0]}, "2 values"),
                        ({"precision": {"lif": "int8"}},
                         "precision: no weight or neuron layer named"),
                        ({"sparsity": 1.0}, "sparsity")]:
        with pytest.raises(ValueError, match=needle):
            p.apply_settings(bad)
    assert p.settings() == before and before["roi"] == [[0, 0, 8, 8]]
    p.apply_settings({"roi": None})
    assert "roi" not in p.settings()
    await p.close()


async def test_precision_and_sparsity_switch_live_with_a_report_and_energy() -> None:
    packets = [make_packet(300, seq=s, t0_us=s * 3000, seed=s) for s in range(40)]
    net = TrackerNetwork(GEOM, n_x=3, n_y=3)
    p = Pipeline("p", ListSource(packets), net, TrackerDecoder(6, net.decode), [],
                 queue_policy=FullPolicy.BLOCK)
    await p.start()
    await eventually(lambda: p.counters.packets >= 20, what="some input to compare on")
    p.apply_settings({"precision": "int8", "sparsity": 0.5})
    await eventually(lambda: p.source_done and p.queue.qsize() == 0)
    await p.close()
    st = p.status()
    assert st["precision"]["layers"] == {"tracker": "int8"}
    assert st["precision"]["memory_bytes"] < st["precision"]["memory_bytes_float32"]
    assert st["connectivity"]["sparsity"] == 0.5
    versus = st["versus_float32_full"]
    assert 0.0 <= versus["agreement"] <= 1.0 and versus["input_events"] > 0
    energy = st["energy"]
    assert energy["synops"] == p.counters.synops and energy["energy_uj"] > 0
    assert energy["dense_energy_uj"] > 0 and "tracker" in energy["layers"]
    assert p.energy_report()["synops"] == energy["synops"]
    p.apply_settings({"precision": None, "sparsity": None})
    assert "precision" not in p.settings()


# --- the policy layer --------------------------------------------------------------------


def feed(alloc: Allocator, rate_ev_s: float, n_packets: int = 40) -> int:
    """Packets of 1000 events arriving at ``rate_ev_s``; the number of events kept."""
    t_ns = time.monotonic_ns()
    gap_ns = int(1000 / rate_ev_s * 1e9)
    kept = 0
    rng = np.random.default_rng(0)
    for k in range(n_packets):
        events = make_events(k * 1000 + np.arange(1000), rng.integers(0, 32, 1000),
                             rng.integers(0, 32, 1000), 1)
        now = t_ns + k * gap_ns
        kept += len(alloc.admit(events, now, now_ns=now))
    return kept


def test_a_synops_budget_keeps_what_fits_and_says_why() -> None:
    alloc = Allocator(GEOM, AllocationConfig.model_validate({"auto": {"synops_per_s": 1e7}}))
    alloc.observe_ops(100, 100 * 1000, 0)  # 1000 synops per event
    alloc.policy.DECIDE_EVERY_NS = 0
    feed(alloc, 100_000)  # 1e8 synops/s wanted: a tenth fits
    report = alloc.status()["auto"]
    assert report["keep_fraction"] == pytest.approx(0.1, rel=0.05)
    assert "exceeds it: keep 10% by thin" in report["why"]
    assert alloc.shed.by_reason["thin"] > 0


def test_an_energy_budget_lowers_precision_first_then_sheds() -> None:
    net = TrackerNetwork(GEOM, n_x=9, n_y=9)
    # 18 synops (0.9 pJ at float32) + 18 updates (4.6 pJ) per event at 1 Mev/s ≈ 99 µW
    for budget, want_precision, want_keep in [(200.0, "float32", 1.0), (90.0, "int16", 1.0),
                                              (50.0, "int8", 50 / 83.34)]:
        alloc = Allocator(GEOM, AllocationConfig.model_validate({"auto": {"energy_uw": budget}}))
        alloc.policy.core = net
        alloc.policy.DECIDE_EVERY_NS = 0
        alloc.observe_ops(100, 1800, 1800)
        feed(alloc, 1e6, n_packets=10)
        report = alloc.status()["auto"]
        assert report["precision"] == want_precision, report
        assert report["keep_fraction"] == pytest.approx(want_keep, rel=0.05), report
        assert f"against a budget of {budget:.3g} µW; {want_precision}" in report["why"]
        assert bank_of(net).layers["tracker"].precision == want_precision


def test_auto_energy_and_a_fixed_precision_are_refused_together() -> None:
    with pytest.raises(ValueError, match="both set the precision"):
        Allocator(GEOM).configure(AllocationConfig.model_validate(
            {"auto": {"energy_uw": 5}, "precision": "int8"}))
    with pytest.raises(ValidationError, match="exactly one budget"):
        AllocationConfig.model_validate({"auto": {"energy_uw": 5, "synops_per_s": 3}})


def test_a_latency_budget_caps_the_command_interval() -> None:
    net = TrackerNetwork(GEOM, n_x=3, n_y=3)
    decoder = TrackerDecoder(6, net.decode, command_interval_us=50_000)
    p = Pipeline("p", ListSource([]), net, decoder, [])
    p.apply_settings({"latency_budget_ms": 20})
    assert decoder.memory.command_interval_us == 10_000  # half the budget
    p.apply_settings({"command_interval_ms": 5})
    assert decoder.memory.command_interval_us == 5_000  # already within the cap
    p.apply_settings({"command_interval_ms": 80})
    assert decoder.memory.command_interval_us == 10_000
    p.apply_settings({"latency_budget_ms": None})
    assert decoder.memory.command_interval_us == 80_000


def test_a_packet_already_past_the_budget_is_shed_as_stale() -> None:
    alloc = Allocator(GEOM, AllocationConfig(latency_budget_ms=10))
    t_ns = time.monotonic_ns()
    assert len(alloc.admit(block(0, 0, 50), t_ns, now_ns=t_ns + 5_000_000)) == 50
    assert len(alloc.admit(block(0, 0, 50), t_ns, now_ns=t_ns + 11_000_000)) == 0
    assert alloc.shed.by_reason == {"stale": 50}
