"""drivers/ops: subset and order properties, packet-split invariance, slow references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.ops import (
    RefractoryState,
    activity_centroid,
    crop_roi,
    downsample,
    rate_budget,
    rate_budget_state,
    refractory,
    region_index,
    thin,
)
from spikegate.drivers.packet import EVENT_DTYPE, make_events

W, H = 16, 12


@st.composite
def event_arrays(draw: st.DrawFn, max_n: int = 60) -> np.ndarray:
    n = draw(st.integers(0, max_n))
    dts = draw(st.lists(st.integers(0, 50), min_size=n, max_size=n))
    xs = draw(st.lists(st.integers(0, W - 1), min_size=n, max_size=n))
    ys = draw(st.lists(st.integers(0, H - 1), min_size=n, max_size=n))
    ps = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return make_events(np.cumsum(dts, dtype=np.int64), xs, ys, ps)


rect_st = st.tuples(st.integers(0, W - 1), st.integers(0, H - 1),
                    st.integers(1, W), st.integers(1, H))


def is_subsequence(sub: np.ndarray, full: np.ndarray) -> bool:
    """``sub`` is ``full`` with some events left out, order kept (events compared whole)."""
    it = iter(full.tolist())
    return all(any(e == f for f in it) for e in sub.tolist())


# --- slow, obvious references -------------------------------------------------------------


def naive_refractory(events: np.ndarray, period_us: int, last: dict[int, int],
                     cell_px: int = 1) -> np.ndarray:
    kept = []
    for e in events:
        key = (int(e["y"]) // cell_px) * 1000 + int(e["x"]) // cell_px
        if key not in last or int(e["t"]) - last[key] >= period_us:
            last[key] = int(e["t"])
            kept.append(e)
    return np.array(kept, dtype=EVENT_DTYPE)


def naive_budget(events: np.ndarray, rects: list[tuple[int, int, int, int]],
                 budget_ev_s: float, window_us: int) -> np.ndarray:
    burst = max(budget_ev_s * window_us * 1e-6, 1.0)
    tokens: dict[int, float] = {}
    last: dict[int, int] = {}
    kept = []
    for e in events:
        x, y, t = int(e["x"]), int(e["y"]), int(e["t"])
        r = next((i for i, (x0, y0, w, h) in enumerate(rects)
                  if x0 <= x < x0 + w and y0 <= y < y0 + h), -1)
        if r < 0:
            kept.append(e)
            continue
        if r not in tokens:
            tokens[r], last[r] = burst, t
        elif t > last[r]:
            tokens[r] = min(burst, tokens[r] + (t - last[r]) * budget_ev_s * 1e-6)
            last[r] = t
        if tokens[r] >= 1.0:
            tokens[r] -= 1.0
            kept.append(e)
    return np.array(kept, dtype=EVENT_DTYPE)


# --- crop_roi ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(event_arrays(), st.lists(rect_st, min_size=1, max_size=3))
def test_crop_keeps_exactly_the_events_inside_in_order(events: np.ndarray,
                                                       rects: list[tuple[int, ...]]) -> None:
    out = crop_roi(events, rects)
    assert is_subsequence(out, events)
    inside = [any(x0 <= e["x"] < x0 + w and y0 <= e["y"] < y0 + h for x0, y0, w, h in rects)
              for e in events]
    assert len(out) == sum(inside)
    assert np.array_equal(crop_roi(out, rects), out)  # idempotent


def test_region_index_first_rectangle_wins() -> None:
    events = make_events([0, 1, 2], [1, 5, 9], [1, 1, 1])
    assert region_index(events, [(0, 0, 6, 6), (4, 0, 6, 6)]).tolist() == [0, 0, 1]


@pytest.mark.parametrize("bad", [(0, 0, 0, 4), (-1, 0, 2, 2), (1, 2, 3), []])
def test_crop_refuses_bad_rectangles(bad: object) -> None:
    with pytest.raises(ValueError, match="roi"):
        crop_roi(make_events([0], [0]), bad)  # type: ignore[arg-type]


# --- downsample, thin, centroid ------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(event_arrays(), st.integers(1, 5))
def test_downsample_maps_coordinates_and_keeps_every_event(events: np.ndarray,
                                                           factor: int) -> None:
    out = downsample(events, factor)
    assert len(out) == len(events)
    assert np.array_equal(out["x"], events["x"] // factor)
    assert np.array_equal(out["t"], events["t"]) and np.array_equal(out["p"], events["p"])
    assert np.array_equal(downsample(events, 1), events)


def test_downsample_refuses_zero_factor() -> None:
    with pytest.raises(ValueError, match="factor"):
        downsample(make_events([0], [0]), 0)


@settings(max_examples=40, deadline=None)
@given(event_arrays(), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_thin_is_an_ordered_subset(events: np.ndarray, keep: float, seed: int) -> None:
    out = thin(events, keep, np.random.default_rng(seed))
    assert is_subsequence(out, events)
    assert np.array_equal(thin(events, 1.0, np.random.default_rng(seed)), events)
    assert len(thin(events, 0.0, np.random.default_rng(seed))) == 0


def test_thin_keeps_about_the_fraction() -> None:
    events = make_events(np.arange(20_000), np.zeros(20_000, np.int64))
    out = thin(events, 0.3, np.random.default_rng(1))
    assert 0.28 < len(out) / len(events) < 0.32


def test_centroid() -> None:
    assert activity_centroid(make_events([0, 1], [2, 4], [6, 10])) == (3.0, 8.0)
    assert activity_centroid(make_events([], [])) is None


# --- refractory ----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(event_arrays(), st.integers(0, 120), st.integers(1, 4), st.integers(0, 60))
def test_refractory_equals_the_slow_reference_across_packet_splits(
        events: np.ndarray, period: int, cell_px: int, split: int) -> None:
    expected = naive_refractory(events, period, {}, cell_px)
    state = RefractoryState(W, H, cell_px)
    split = min(split, len(events))
    out = np.concatenate([refractory(events[:split], period, state),
                          refractory(events[split:], period, state)])
    assert np.array_equal(out, expected)
    assert is_subsequence(out, events)
    # idempotent: what passed already respects the period
    assert np.array_equal(refractory(out, period, RefractoryState(W, H, cell_px)), out)


def test_refractory_refuses_events_outside_the_sensor() -> None:
    with pytest.raises(ValueError, match="outside the 16x12 sensor"):
        refractory(make_events([0], [16]), 10, RefractoryState(W, H))


# --- rate budget ---------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(event_arrays(), st.lists(rect_st, min_size=1, max_size=3),
       st.sampled_from([1_000.0, 20_000.0, 100_000.0]), st.integers(1, 200),
       st.integers(0, 60))
def test_rate_budget_equals_the_slow_reference_across_packet_splits(
        events: np.ndarray, rects: list[tuple[int, int, int, int]], budget: float,
        window_us: int, split: int) -> None:
    expected = naive_budget(events, rects, budget, window_us)
    state = rate_budget_state(rects, budget, window_us)
    split = min(split, len(events))
    out = np.concatenate([rate_budget(events[:split], state),
                          rate_budget(events[split:], state)])
    assert np.array_equal(out, expected)


def test_rate_budget_grants_a_token_earned_exactly() -> None:
    # 10 µs at 100 k ev/s is one token: (10 · 1e5) · 1e-6, not 10 · (1e5 · 1e-6) = 0.999…
    events = make_events([0, 0, 10], [0, 0, 0])
    out = rate_budget(events, rate_budget_state((0, 0, 1, 1), 100_000.0, 1))
    assert out["t"].tolist() == [0, 10]


def test_rate_budget_holds_the_rate_per_region() -> None:
    n = 100_000  # 1 event/µs for 0.1 s in two regions
    events = make_events(np.arange(n), np.where(np.arange(n) % 2 == 0, 1, 10), 1)
    state = rate_budget_state([(0, 0, 5, 5), (8, 0, 5, 5)], [10_000.0, 50_000.0], 1_000)
    out = rate_budget(events, state)
    left = int((out["x"] == 1).sum())
    right = int((out["x"] == 10).sum())
    assert 1_000 <= left <= 1_000 + 10 + 1  # 10 kev/s × 0.1 s + one burst
    assert 5_000 <= right <= 5_000 + 50 + 1


@pytest.mark.parametrize("budget", [0.0, -5.0, float("nan")])
def test_rate_budget_refuses_a_budget_that_is_not_positive(budget: float) -> None:
    with pytest.raises(ValueError, match="budget_ev_s"):
        rate_budget_state((0, 0, 4, 4), budget)
