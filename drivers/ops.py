"""Pure event operations: one function per operation, events in → events out.

Each function takes an ``EVENT_DTYPE`` array (a packet's ``events``; use
``packet.with_events(op(packet.events, ...))`` for packets) and returns a new
array. Every filter here returns a *subsequence* of its input: the kept events
in their original order, with their original coordinates, so a pipeline can
count what it shed as ``len(before) - len(after)``. Only ``downsample`` changes
coordinates (it maps them onto the coarse grid, as tonic's spatial
downsampling does).

Operations that remember across packets (``refractory``, ``rate_budget``) take
a state object the caller keeps and passes again with the next packet; fed
packet by packet they give the same result as fed the whole stream at once.

A rectangle is ``(x, y, width, height)`` in pixels, ``x``/``y`` its top-left corner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from .packet import EVENT_DTYPE

Rect = tuple[int, int, int, int]
"""(x, y, width, height): pixels, top-left corner, half-open extents."""

_NEVER_US = np.iinfo(np.int64).min // 4


def _check_events(events: np.ndarray, what: str) -> None:
    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE:
        got = getattr(events, "dtype", type(events).__name__)
        raise ValueError(f"{what}: events dtype {got} is not {EVENT_DTYPE}")


def as_rects(rects: Rect | Sequence[Rect] | np.ndarray) -> np.ndarray:
    """One rectangle or a list of them as an int64 array of shape (n, 4); checked."""
    arr = np.asarray(rects, dtype=np.int64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"roi: a rectangle is (x, y, width, height), got {rects!r}")
    if arr.shape[0] == 0:
        raise ValueError("roi: the list of rectangles is empty")
    bad = np.flatnonzero((arr[:, 0] < 0) | (arr[:, 1] < 0) | (arr[:, 2] <= 0) | (arr[:, 3] <= 0))
    if bad.size:
        raise ValueError(f"roi: rectangle {int(bad[0])} {tuple(arr[bad[0]].tolist())} needs "
                         "x, y ≥ 0 and width, height > 0")
    return np.ascontiguousarray(arr)


def region_index(events: np.ndarray, rects: Rect | Sequence[Rect] | np.ndarray) -> np.ndarray:
    """Per event, the index of the first rectangle holding it, or -1 (int64)."""
    _check_events(events, "region_index")
    arr = as_rects(rects)
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    out = np.full(events.shape[0], -1, dtype=np.int64)
    for i in range(arr.shape[0] - 1, -1, -1):  # a few rectangles: the first one wins
        x0, y0, w, h = arr[i]
        inside = (x >= x0) & (x < x0 + w) & (y >= y0) & (y < y0 + h)
        out[inside] = i
    return out


def crop_roi(events: np.ndarray, rects: Rect | Sequence[Rect] | np.ndarray) -> np.ndarray:
    """The events inside any of ``rects`` (coordinates unchanged, order kept)."""
    return events[region_index(events, rects) >= 0]


def downsample(events: np.ndarray, factor: int) -> np.ndarray:
    """Spatial downsampling: ``x // factor``, ``y // factor`` (every event kept)."""
    _check_events(events, "downsample")
    if int(factor) != factor or factor < 1:
        raise ValueError(f"downsample: factor must be an integer ≥ 1, not {factor!r}")
    out = events.copy()
    out["x"] //= np.uint16(factor)
    out["y"] //= np.uint16(factor)
    return out


def thin(events: np.ndarray, keep_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Random thinning: each event kept independently with probability ``keep_fraction``."""
    _check_events(events, "thin")
    if not 0.0 <= keep_fraction <= 1.0:
        raise ValueError(f"thin: keep_fraction must be in [0, 1], not {keep_fraction!r}")
    if keep_fraction >= 1.0:
        return events.copy()
    return events[rng.random(events.shape[0]) < keep_fraction]


def activity_centroid(events: np.ndarray) -> tuple[float, float] | None:
    """Mean (x, y) of the events, or None for no events."""
    _check_events(events, "activity_centroid")
    if events.shape[0] == 0:
        return None
    return float(events["x"].mean()), float(events["y"].mean())


# --- refractory ------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _refractory_kernel(t: np.ndarray, cell: np.ndarray, period_us: int,
                       last_t: np.ndarray, keep: np.ndarray) -> int:
    """Keep an event when its cell passed nothing in the last ``period_us``; count kept."""
    n = 0
    for i in range(t.shape[0]):
        c = cell[i]
        if t[i] - last_t[c] >= period_us:
            last_t[c] = t[i]
            keep[i] = True
            n += 1
        else:
            keep[i] = False
    return n


@dataclass(slots=True)
class RefractoryState:
    """When each cell (``cell_px`` × ``cell_px`` pixels) last let an event through."""

    width: int
    height: int
    cell_px: int = 1
    last_t_us: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"refractory: geometry {self.width}x{self.height} is empty")
        if int(self.cell_px) != self.cell_px or self.cell_px < 1:
            raise ValueError(f"refractory: cell_px must be an integer ≥ 1, not {self.cell_px!r}")
        if self.last_t_us is None:
            self.last_t_us = np.full(self.grid_width * self.grid_height, _NEVER_US,
                                     dtype=np.int64)

    @property
    def grid_width(self) -> int:
        return -(-self.width // self.cell_px)

    @property
    def grid_height(self) -> int:
        return -(-self.height // self.cell_px)

    def reset(self) -> None:
        if self.last_t_us is not None:
            self.last_t_us.fill(_NEVER_US)


def _cells(events: np.ndarray, width: int, height: int, cell_px: int, what: str) -> np.ndarray:
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    if events.shape[0] and (int(x.max()) >= width or int(y.max()) >= height):
        i = int(np.flatnonzero((x >= width) | (y >= height))[0])
        raise ValueError(f"{what}: event {i} at ({x[i]}, {y[i]}) is outside the "
                         f"{width}x{height} sensor")
    gw = -(-width // cell_px)
    return (y // cell_px) * gw + x // cell_px


def refractory(events: np.ndarray, period_us: int, state: RefractoryState) -> np.ndarray:
    """Per pixel (or per ``state.cell_px`` cell), drop events within ``period_us`` of the
    last event that cell let through. ``state`` is updated, to pass with the next packet.

    With ``cell_px > 1`` this is load shedding by spatial downsampling that keeps
    the original events: at most one event per coarse cell per period.
    """
    _check_events(events, "refractory")
    if int(period_us) != period_us or period_us < 0:
        raise ValueError(f"refractory: period_us must be an integer ≥ 0, not {period_us!r}")
    cell = _cells(events, state.width, state.height, state.cell_px, "refractory")
    keep = np.empty(events.shape[0], dtype=np.bool_)
    last_t = state.last_t_us
    if last_t is None:  # only if a caller set it to None
        raise ValueError("refractory: the state has no last_t_us array")
    _refractory_kernel(np.ascontiguousarray(events["t"]), cell, int(period_us), last_t, keep)
    return events[keep]


# --- per-region rate budget -------------------------------------------------------------


@njit(cache=True, nogil=True)
def _bucket_kernel(t: np.ndarray, region: np.ndarray, rate_ev_s: np.ndarray,
                   burst: np.ndarray, tokens: np.ndarray, t_last: np.ndarray,
                   started: np.ndarray, keep: np.ndarray) -> int:
    """Token bucket per region: refill at ``rate_ev_s`` up to ``burst``; an event spends 1.

    The refill is (Δt µs · rate) · 1e-6 in that order: 10 µs at 100 k ev/s is exactly
    one token (Δt · (rate · 1e-6) rounds to 0.999…)."""
    n = 0
    for i in range(t.shape[0]):
        r = region[i]
        if r < 0:
            keep[i] = True
            n += 1
            continue
        if not started[r]:
            started[r] = True
            tokens[r] = burst[r]
            t_last[r] = t[i]
        elif t[i] > t_last[r]:
            tokens[r] = min(burst[r], tokens[r] + (t[i] - t_last[r]) * rate_ev_s[r] * 1e-6)
            t_last[r] = t[i]
        if tokens[r] >= 1.0:
            tokens[r] -= 1.0
            keep[i] = True
            n += 1
        else:
            keep[i] = False
    return n


@dataclass(slots=True)
class RateBudgetState:
    """Per region: the budget (events/s), the bucket's depth, its tokens and clock."""

    rects: np.ndarray
    budget_ev_s: np.ndarray
    window_us: int
    tokens: np.ndarray
    t_last_us: np.ndarray
    started: np.ndarray

    @property
    def burst(self) -> np.ndarray:
        return np.maximum(self.budget_ev_s * self.window_us * 1e-6, 1.0)


def rate_budget_state(rects: Rect | Sequence[Rect] | np.ndarray,
                      budget_ev_s: float | Sequence[float],
                      window_us: int = 10_000) -> RateBudgetState:
    """A fresh per-region token bucket: ``budget_ev_s`` per region (one value or one each),
    at most ``budget_ev_s × window`` events in a burst (at least 1)."""
    arr = as_rects(rects)
    budget = np.broadcast_to(np.asarray(budget_ev_s, dtype=np.float64), (arr.shape[0],)).copy()
    if not np.all(np.isfinite(budget)) or np.any(budget <= 0):
        raise ValueError(f"rate_budget: budget_ev_s must be finite and > 0, not {budget_ev_s!r}")
    if int(window_us) != window_us or window_us < 1:
        raise ValueError(f"rate_budget: window_us must be an integer ≥ 1, not {window_us!r}")
    n = arr.shape[0]
    return RateBudgetState(arr, budget, int(window_us), np.zeros(n), np.zeros(n, np.int64),
                           np.zeros(n, np.bool_))


def rate_budget(events: np.ndarray, state: RateBudgetState) -> np.ndarray:
    """Keep at most ``budget_ev_s`` events per second in each region (token bucket,
    bursts up to ``budget × window``); events in no region pass. ``state`` is updated."""
    _check_events(events, "rate_budget")
    region = region_index(events, state.rects)
    keep = np.empty(events.shape[0], dtype=np.bool_)
    _bucket_kernel(np.ascontiguousarray(events["t"]), region, state.budget_ev_s,
                   state.burst, state.tokens, state.t_last_us, state.started, keep)
    return events[keep]


def warm_up() -> None:
    """Compile the kernels on tiny inputs."""
    events = np.zeros(2, dtype=EVENT_DTYPE)
    events["t"] = [0, 1]
    refractory(events, 1, RefractoryState(2, 2))
    rate_budget(events, rate_budget_state((0, 0, 2, 2), 1000.0))
