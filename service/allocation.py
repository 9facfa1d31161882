"""Run-time resource allocation of a pipeline: attention, rate budgets, latency budget.

``AllocationConfig`` is the settings object (config file and ``PATCH``);
``Allocator`` applies it between the queue and the core, in the core thread:

1. **Attention** (``roi``): events outside the region(s) of interest are shed
   (``outside_roi = "drop"``) or thinned to one event per 4×4-pixel cell per
   ``outside_period_ms`` (``"downsample"``). The ROI is a list of rectangles
   ``[x, y, width, height]`` or ``{"follow": "centroid", "size": [w, h]}``: a
   rectangle centred on a running mean of the activity centroid.
2. **Rate budget** (``rate_budget_ev_s``): a token bucket per ROI rectangle
   (or over the whole sensor), bursts of at most ``budget × rate_window_ms``.
3. **Latency budget** (``latency_budget_ms``): the allocator measures the
   core's time per event online (decayed sums of core seconds over events)
   and the input rate; when ``rate × time per event`` exceeds the target
   utilisation, or a packet waited in the queue for more than half the
   budget, it keeps only a fraction of the events, by the declared
   ``shed_policy``: ``thin`` (random), ``refractory`` (per pixel, period
   adapted until the kept fraction is reached) or ``downsample`` (the same on
   2×2-pixel cells). It also sets how many events one core call takes
   (``chunk_events``): a quarter of the budget's worth, so outputs flush at
   least four times per budget, and queued packets are coalesced up to it;
   the pipeline caps the decoder's command interval at half the budget.

A packet that waited in the queue for longer than the whole budget is shed
at once (reason ``stale``): its outputs could no longer be on time.

Every event taken out is counted as *shed*, per reason (``roi``,
``rate_budget``, ``stale``, ``thin``, ``refractory``, ``downsample``), never
silently.
Precision and sparsity are fields here too; the pipeline hands them to the
network (``spikegate.models.precision`` / ``pruning``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from spikegate.drivers import ops
from spikegate.drivers.packet import Geometry
from spikegate.models import precision, pruning
from spikegate.models.energy import OpEnergies
from spikegate.models.weights import KnobError, bank_of

PRECISIONS = ("float32", "float16", "int16", "int8")


class ShedPolicy(StrEnum):
    """How events are shed when the input exceeds what the core does within the budget."""

    THIN = "thin"
    REFRACTORY = "refractory"
    DOWNSAMPLE = "downsample"


NonNegInt = Annotated[int, Field(ge=0, le=65535)]
PosInt = Annotated[int, Field(gt=0, le=65536)]
RectConfig = tuple[NonNegInt, NonNegInt, PosInt, PosInt]


class FollowCentroid(BaseModel):
    """A rectangle of ``size`` [w, h] pixels centred on the running activity centroid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    follow: Literal["centroid"]
    size: tuple[PosInt, PosInt]


PrecisionConfig = Literal["float32", "float16", "int16", "int8"] | dict[
    str, Literal["float32", "float16", "int16", "int8"]]


def one_rect_as_list(value: Any) -> Any:
    """``[x, y, w, h]`` → ``[[x, y, w, h]]``: one rectangle may be given bare."""
    if isinstance(value, list | tuple) and len(value) == 4 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return [value]
    return value


class EnergyConfig(BaseModel):
    """Energy per operation (pJ) for the estimate; defaults: Horowitz, ISSCC 2014, 45 nm
    (see spikegate.models.energy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accumulate_pj: float = Field(0.9, ge=0, le=1e6)
    mac_pj: float = Field(4.6, ge=0, le=1e6)
    neuron_update_pj: float = Field(4.6, ge=0, le=1e6)
    scale_with_precision: bool = True
    dense_dt_ms: float = Field(1.0, gt=0, le=10_000)

    def op_energies(self) -> OpEnergies:
        return OpEnergies(self.accumulate_pj, self.mac_pj, self.neuron_update_pj,
                          self.scale_with_precision, max(1, int(self.dense_dt_ms * 1000)))


class AutoConfig(BaseModel):
    """Pick knobs automatically for one budget: ``synops_per_s`` (synaptic operations per
    second: the shedding policy keeps what fits) or ``energy_uw`` (the arithmetic energy
    estimate per second, µW: the highest precision that fits, then shedding)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    synops_per_s: float | None = Field(None, gt=0, le=1e15)
    energy_uw: float | None = Field(None, gt=0, le=1e12)

    @model_validator(mode="after")
    def _one_budget(self) -> AutoConfig:
        if (self.synops_per_s is None) == (self.energy_uw is None):
            raise ValueError("give exactly one budget: synops_per_s or energy_uw")
        return self


class AllocationConfig(BaseModel):
    """A pipeline's resource-allocation knobs (absent or null: not applied)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    roi: list[RectConfig] | FollowCentroid | None = None
    outside_roi: Literal["drop", "downsample"] = "drop"
    outside_period_ms: float = Field(5.0, gt=0, le=10_000)
    rate_budget_ev_s: Annotated[float, Field(gt=0, le=1e9)] | list[
        Annotated[float, Field(gt=0, le=1e9)]] | None = None
    rate_window_ms: float = Field(10.0, gt=0, le=10_000)
    latency_budget_ms: float | None = Field(None, gt=0, le=60_000)
    shed_policy: ShedPolicy = ShedPolicy.THIN
    precision: PrecisionConfig | None = None
    sparsity: float | None = Field(None, ge=0.0, lt=1.0)
    energy: EnergyConfig = Field(default_factory=lambda: EnergyConfig())
    auto: AutoConfig | None = None

    @field_validator("roi", mode="before")
    @classmethod
    def _one_rect_is_a_list(cls, value: Any) -> Any:
        return one_rect_as_list(value)


ALLOCATION_FIELDS: tuple[str, ...] = tuple(AllocationConfig.model_fields)


def check_core_allocation(core: Any, cfg: AllocationConfig, where: str) -> None:
    """Raise ``ValueError`` when the network cannot take ``cfg``'s precision or sparsity."""
    try:
        if cfg.precision is not None:
            precision.check_precisions(bank_of(core), cfg.precision)
    except KnobError as exc:
        raise ValueError(f"{where}: precision: {exc}") from None
    try:
        pruning.check_sparsity(core, cfg.sparsity)
    except KnobError as exc:
        raise ValueError(f"{where}: sparsity: {exc}") from None


def check_allocation(cfg: AllocationConfig, geometry: Geometry, where: str) -> None:
    """Raise ``ValueError`` (a sentence naming ``where`` and the field) when ``cfg`` does
    not fit the sensor: a ROI outside it, one budget per rectangle expected, ..."""
    w, h = geometry.width, geometry.height
    if isinstance(cfg.roi, list):
        if not cfg.roi:
            raise ValueError(f"{where}: roi: the list of rectangles is empty (null clears it)")
        for i, (x, y, rw, rh) in enumerate(cfg.roi):
            if x + rw > w or y + rh > h:
                raise ValueError(
                    f"{where}: roi[{i}] = [{x}, {y}, {rw}, {rh}] reaches past the {w}x{h} "
                    f"sensor (x + width ≤ {w}, y + height ≤ {h})")
    elif isinstance(cfg.roi, FollowCentroid):
        sw, sh = cfg.roi.size
        if sw > w or sh > h:
            raise ValueError(f"{where}: roi.size {sw}x{sh} is larger than the {w}x{h} sensor")
    if cfg.auto is not None and cfg.auto.energy_uw is not None and cfg.precision is not None:
        raise ValueError(f"{where}: precision and auto.energy_uw both set the precision; "
                         "clear one")
    if isinstance(cfg.rate_budget_ev_s, list):
        n = len(cfg.roi) if isinstance(cfg.roi, list) else 1
        if len(cfg.rate_budget_ev_s) != n:
            raise ValueError(f"{where}: rate_budget_ev_s has {len(cfg.rate_budget_ev_s)} "
                             f"values for {n} region(s); give one per roi rectangle or one "
                             "number")


@dataclass(slots=True)
class _Plan:
    """What ``admit`` does, built once per configuration (states included)."""

    cfg: AllocationConfig
    rects: np.ndarray | None
    follow: tuple[int, int] | None
    outside: ops.RefractoryState | None
    budget: ops.RateBudgetState | None


@dataclass(slots=True)
class ShedCounts:
    by_reason: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, n: int) -> None:
        if n:
            self.by_reason[reason] = self.by_reason.get(reason, 0) + n

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


class Allocator:
    """Applies an ``AllocationConfig`` to packets (``admit``) and learns the core's cost.

    ``admit`` and ``observe`` run in the core thread; ``configure`` builds a new
    plan and swaps it in with one assignment, so a packet sees one plan whole.
    """

    UTILISATION = 0.8  # target share of the core's time when shedding
    MIN_EVENT_SHARE = 0.2  # shed only when events take at least this share of core time
    RATE_TAU_S = 0.25  # time constant of the input-rate estimate
    COST_DECAY = 0.95  # per core call, of the sums the cost model is fitted on

    def __init__(self, geometry: Geometry, cfg: AllocationConfig | None = None,
                 seed: int = 0) -> None:
        self.geometry = geometry
        self.rng = np.random.default_rng(seed)
        self.shed = ShedCounts()
        self.events_in = 0
        self.events_admitted = 0
        # online estimates
        self._fit = np.zeros(5)  # decayed Σ1, Σn, Σt, Σn², Σn·t over core calls
        self._rate_packets = 0.0
        self._calls = 0.0
        self._calls_time_s = 0.0
        self._busy_s = 0.0
        self._calls_last_ns: int | None = None
        self.event_share = 1.0
        self._rate_events = 0.0
        self._rate_time_s = 0.0
        self._rate_last_ns: int | None = None
        self.centroid: tuple[float, float] | None = None
        # the latency controller
        self.keep_fraction = 1.0
        self._backlog_gain = 1.0
        self.period_us = 0
        self._shed_state: ops.RefractoryState | None = None
        self._shed_cell = 0
        self.last_wait_ms = 0.0
        self.cfg = cfg or AllocationConfig()
        self._plan = self._build(self.cfg)
        self._recent: list[np.ndarray] = []
        self._recent_n = 0
        self.core_report: dict[str, Any] = {}
        self._ops = np.zeros(3)  # decayed Σ events, Σ synops, Σ neuron updates per core call
        self.policy = AutoPolicy()

    # ------------------------------------------------------------------ configuration

    def check(self, cfg: AllocationConfig) -> None:
        check_allocation(cfg, self.geometry, "allocation")

    def configure(self, cfg: AllocationConfig) -> None:
        """Check ``cfg`` and make it the plan for the next packet (counters carry on)."""
        self.check(cfg)
        plan = self._build(cfg)
        if cfg.latency_budget_ms is None:
            self.keep_fraction, self._backlog_gain, self.period_us = 1.0, 1.0, 0
        self.cfg = cfg
        self._plan = plan

    def _build(self, cfg: AllocationConfig) -> _Plan:
        w, h = self.geometry.width, self.geometry.height
        rects = follow = None
        if isinstance(cfg.roi, list) and cfg.roi:
            rects = ops.as_rects(cfg.roi)
        elif isinstance(cfg.roi, FollowCentroid):
            follow = (int(cfg.roi.size[0]), int(cfg.roi.size[1]))
        outside = None
        if cfg.roi is not None and cfg.outside_roi == "downsample":
            outside = ops.RefractoryState(w, h, cell_px=4)
        budget = None
        if cfg.rate_budget_ev_s is not None:
            regions = rects if rects is not None else np.array([[0, 0, w, h]], np.int64)
            if follow is not None:
                regions = np.array([[0, 0, w, h]], np.int64)
            budget = ops.rate_budget_state(regions, cfg.rate_budget_ev_s,
                                           max(1, int(cfg.rate_window_ms * 1000)))
        return _Plan(cfg, rects, follow, outside, budget)

    # ------------------------------------------------------------------ the hot path

    def admit(self, events: np.ndarray, ingress_ns: int, now_ns: int | None = None) -> np.ndarray:
        """The events the core should run; the rest are counted in ``shed`` by reason."""
        plan = self._plan
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        n_in = int(events.shape[0])
        self.events_in += n_in
        self._observe_rate(n_in, ingress_ns)
        cfg = plan.cfg
        if plan.rects is not None or plan.follow is not None:
            events = self._attend(events, plan)
        if plan.budget is not None:
            before = events.shape[0]
            events = ops.rate_budget(events, plan.budget)
            self.shed.add("rate_budget", before - int(events.shape[0]))
        if cfg.latency_budget_ms is not None or cfg.auto is not None:
            keep = 1.0
            if cfg.latency_budget_ms is not None:
                wait_s = (now_ns - ingress_ns) * 1e-9
                keep = self._latency_keep(cfg, wait_s)
                if wait_s > cfg.latency_budget_ms * 1e-3 and events.shape[0]:
                    # already past the budget before the core saw it: too late to be of use
                    self.shed.add("stale", int(events.shape[0]))
                    events = events[:0]
            if cfg.auto is not None:
                keep = min(keep, self.policy.decide(self, cfg, now_ns))
            events = self._shed(events, keep, cfg.shed_policy)
        self.events_admitted += int(events.shape[0])
        self._remember(events)
        return events

    RECENT_EVENTS = 5000  # the input precision and pruning are compared on

    def _remember(self, events: np.ndarray) -> None:
        if not events.shape[0]:
            return
        self._recent.append(events[-self.RECENT_EVENTS:])
        self._recent_n += int(self._recent[-1].shape[0])
        while self._recent_n - int(self._recent[0].shape[0]) >= self.RECENT_EVENTS:
            self._recent_n -= int(self._recent.pop(0).shape[0])

    def recent_events(self) -> np.ndarray:
        """The last ``RECENT_EVENTS`` or so admitted events, in order."""
        if not self._recent:
            return np.zeros(0, dtype=ops.EVENT_DTYPE)
        return np.concatenate(self._recent)[-self.RECENT_EVENTS:]

    def apply_core(self, core: Any, previous: AllocationConfig, cfg: AllocationConfig) -> None:
        """In the core thread: set the network's precision and sparsity to ``cfg``'s and
        compare it with the float32, unpruned network on the recent input."""
        changed = False
        if cfg.sparsity != previous.sparsity:
            self.core_report["connectivity_change"] = pruning.set_sparsity(core, cfg.sparsity)
            changed = True
        auto_owned = previous.auto is not None and previous.auto.energy_uw is not None
        now_owned = cfg.auto is not None and cfg.auto.energy_uw is not None
        if cfg.precision != previous.precision or (auto_owned and not now_owned):
            precision.set_precision(bank_of(core), cfg.precision)
            self.policy.precision = None
            changed = True
        if not changed:
            return
        events = self.recent_events()
        if events.shape[0] == 0 or (cfg.precision is None and cfg.sparsity is None):
            self.core_report.pop("versus_float32_full", None)
            return

        def same_as(twin: Any) -> None:
            bank = bank_of(twin)
            precision.set_precision(bank, cfg.precision)
            pruning.set_sparsity(twin, cfg.sparsity)

        try:
            report = precision.spike_agreement(core, events, same_as)
        except Exception as exc:  # a report, never a failure of the pipeline
            report = {"error": f"{type(exc).__name__}: {exc}"}
        report["input_events"] = int(events.shape[0])
        self.core_report["versus_float32_full"] = report

    def core_status(self, core: Any) -> dict[str, Any]:
        """Precision (with stored-form memory) and connectivity of the network's layers."""
        bank = bank_of(core)
        memory = bank.memory_bytes()
        out: dict[str, Any] = {
            "precision": {
                "layers": {n: layer.precision for n, layer in bank.layers.items()},
                "memory_bytes": sum(memory.values()),
                "memory_bytes_float32": bank.float32_bytes(),
                "memory_bytes_by_layer": memory,
                "state": {n: state.precision for n, state in bank.states.items()},
                "state_bytes": sum(bank.state_bytes().values()),
            },
            "connectivity": pruning.sparsity_status(core),
        }
        change = self.core_report.get("connectivity_change")
        if change is not None:  # per layer: kept synapses, kernel format, both kernels timed
            out["connectivity"]["last_change"] = change
        versus = self.core_report.get("versus_float32_full")
        if versus is not None:
            out["versus_float32_full"] = versus
        return out

    def _attend(self, events: np.ndarray, plan: _Plan) -> np.ndarray:
        if plan.follow is not None:
            c = ops.activity_centroid(events)
            if c is not None:
                if self.centroid is None:
                    self.centroid = c
                else:
                    a = 0.3
                    self.centroid = (self.centroid[0] + a * (c[0] - self.centroid[0]),
                                     self.centroid[1] + a * (c[1] - self.centroid[1]))
            rects = ops.as_rects(self.follow_rect(plan.follow))
        else:
            rects = plan.rects
        inside = ops.region_index(events, rects) >= 0
        kept = events[inside]
        n_out = int(events.shape[0]) - int(kept.shape[0])
        if plan.outside is not None and n_out:
            period = max(0, int(plan.cfg.outside_period_ms * 1000))
            outside = ops.refractory(events[~inside], period, plan.outside)
            self.shed.add("roi", n_out - int(outside.shape[0]))
            merged = np.concatenate([kept, outside])
            return merged[np.argsort(merged["t"], kind="stable")]
        self.shed.add("roi", n_out)
        return kept

    def follow_rect(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """The following ROI: ``size`` centred on the centroid, kept inside the sensor."""
        w, h = self.geometry.width, self.geometry.height
        cx, cy = self.centroid if self.centroid is not None else ((w - 1) / 2, (h - 1) / 2)
        x0 = int(min(max(round(cx - size[0] / 2), 0), w - size[0]))
        y0 = int(min(max(round(cy - size[1] / 2), 0), h - size[1]))
        return (x0, y0, int(size[0]), int(size[1]))

    def _latency_keep(self, cfg: AllocationConfig, wait_s: float) -> float:
        """The share of events the core can take within the latency budget."""
        budget_s = float(cfg.latency_budget_ms) * 1e-3  # type: ignore[arg-type]
        self.last_wait_ms = wait_s * 1e3
        busy = self.busy_fraction()
        if wait_s > 0.5 * budget_s:
            self._backlog_gain = max(0.02, self._backlog_gain * 0.7)
        elif busy > self.UTILISATION:  # measured: the core thread is busier than the target
            self._backlog_gain = max(0.02, self._backlog_gain * max(0.7, self.UTILISATION / busy))
        elif wait_s < 0.25 * budget_s:
            self._backlog_gain = min(1.0, self._backlog_gain * 1.05)
        per_call_s, per_event_s = self.cost_model()
        fixed = self.call_rate_per_s() * per_call_s  # shedding does not lower this part
        variable = self.input_rate_ev_s() * per_event_s
        self.event_share = variable / (fixed + variable) if fixed + variable > 0 else 1.0
        if self.event_share < self.MIN_EVENT_SHARE:
            # the core's time goes to its calls, not to events: shedding cannot help,
            # coalescing queued packets into fewer calls does (``chunk_events``)
            self._backlog_gain = 1.0
            f_rate = 1.0
        elif fixed + variable <= self.UTILISATION or variable <= 0:
            f_rate = 1.0
        else:
            f_rate = max(0.0, self.UTILISATION - fixed) / variable
        return min(1.0, max(0.005, f_rate * self._backlog_gain))

    def _shed(self, events: np.ndarray, keep: float, policy: ShedPolicy) -> np.ndarray:
        """Keep about ``keep`` of ``events`` by ``policy``; count the rest as shed."""
        self.keep_fraction = keep
        n = int(events.shape[0])
        if n == 0:
            return events
        if policy is ShedPolicy.THIN:
            if self.keep_fraction >= 1.0:
                return events
            kept = ops.thin(events, self.keep_fraction, self.rng)
        else:
            cell = 1 if policy is ShedPolicy.REFRACTORY else 2
            if self._shed_state is None or self._shed_cell != cell:
                self._shed_state = ops.RefractoryState(self.geometry.width,
                                                       self.geometry.height, cell)
                self._shed_cell = cell
            if self.keep_fraction >= 1.0 and self.period_us == 0:
                return events
            kept = ops.refractory(events, self.period_us, self._shed_state)
            ratio = kept.shape[0] / n
            # adapt the period toward the wanted kept fraction (multiplicative steps)
            if ratio > self.keep_fraction * 1.1:
                self.period_us = min(1_000_000, int(self.period_us * 1.5) + 50)
            elif ratio < self.keep_fraction * 0.9 or self.keep_fraction >= 1.0:
                self.period_us = int(self.period_us / 1.5)
        self.shed.add(str(policy), n - int(kept.shape[0]))
        return kept

    def observe(self, n_events: int, core_s: float) -> None:
        """Learn the core's cost from one core call: ``core_s ≈ per_call + n × per_event``."""
        if n_events <= 0:
            return
        n = float(n_events)
        self._fit = self._fit * self.COST_DECAY + np.array([1.0, n, core_s, n * n, n * core_s])
        now = time.monotonic_ns()
        if self._calls_last_ns is not None:
            dt_s = max(0, now - self._calls_last_ns) * 1e-9
            decay = math.exp(-dt_s / self.RATE_TAU_S)
            self._calls = self._calls * decay + 1
            self._busy_s = self._busy_s * decay + core_s
            self._calls_time_s = self._calls_time_s * decay + dt_s
        self._calls_last_ns = now

    def busy_fraction(self) -> float:
        """Share of wall time the core spent in calls (decayed over ``RATE_TAU_S``)."""
        return self._busy_s / self._calls_time_s if self._calls_time_s > 0 else 0.0

    def observe_ops(self, n_events: int, synops: int, updates: int) -> None:
        """Learn the network's operations per event from one core call."""
        if n_events > 0:
            self._ops = self._ops * self.COST_DECAY + np.array([n_events, synops, updates])

    def ops_per_event(self) -> tuple[float, float]:
        """(synaptic operations, neuron updates) per admitted event, recently."""
        n, syn, upd = self._ops
        return (float(syn / n), float(upd / n)) if n > 0 else (0.0, 0.0)

    def call_rate_per_s(self) -> float:
        """Core calls per second (coalescing makes fewer calls than packets)."""
        return self._calls / self._calls_time_s if self._calls_time_s > 0 else 0.0

    def cost_model(self) -> tuple[float, float]:
        """(seconds per core call, seconds per event): a decayed least-squares fit of the
        observed calls. A per-call overhead is what thinning cannot remove; while the
        calls' sizes barely vary the fit cannot tell them apart, and all the cost is put
        on the events (the cautious reading)."""
        w, sn, st, snn, snt = self._fit
        if w <= 0 or sn <= 0:
            return 0.0, 0.0
        spread = w * snn - sn * sn
        if spread > 0.01 * snn * w:  # sizes vary by more than ~10 %
            per_event = (w * snt - sn * st) / spread
            per_call = (st - per_event * sn) / w
            if per_event > 0 and per_call >= 0:
                return float(per_call), float(per_event)
        return 0.0, float(st / sn)

    def _observe_rate(self, n: int, ingress_ns: int) -> None:
        if self._rate_last_ns is None:  # the first packet only starts the clock
            self._rate_last_ns = ingress_ns
            return
        dt_s = max(0, ingress_ns - self._rate_last_ns) * 1e-9
        self._rate_last_ns = max(self._rate_last_ns, ingress_ns)
        decay = math.exp(-dt_s / self.RATE_TAU_S)
        self._rate_events = self._rate_events * decay + n
        self._rate_packets = self._rate_packets * decay + 1
        self._rate_time_s = self._rate_time_s * decay + dt_s

    def input_rate_ev_s(self) -> float:
        """Events per second arriving: decayed events over decayed time (``RATE_TAU_S``)."""
        return self._rate_events / self._rate_time_s if self._rate_time_s > 0 else 0.0

    def packet_rate_per_s(self) -> float:
        return self._rate_packets / self._rate_time_s if self._rate_time_s > 0 else 0.0

    def cost_per_event_s(self) -> float:
        return self.cost_model()[1]

    def chunk_events(self) -> int | None:
        """How many events one core call takes under the latency budget (None: no limit):
        a quarter of the budget's worth, at least 1024."""
        budget_ms = self.cfg.latency_budget_ms
        if budget_ms is None:
            return None
        per_call, per_event = self.cost_model()
        if per_event <= 0:
            return None
        return max(1024, int((0.25 * budget_ms * 1e-3 - per_call) / per_event))

    # ------------------------------------------------------------------ reporting

    def status(self) -> dict[str, Any]:
        cfg = self.cfg
        out: dict[str, Any] = {
            "events_in": self.events_in,
            "events_admitted": self.events_admitted,
            "input_rate_ev_s": round(self.input_rate_ev_s(), 1),
            "core_us_per_event": round(self.cost_per_event_s() * 1e6, 4),
            "core_us_per_call": round(self.cost_model()[0] * 1e6, 2),
            "core_calls_per_s": round(self.call_rate_per_s(), 1),
            "core_time_share_events": round(self.event_share, 3),
            "core_busy_fraction": round(self.busy_fraction(), 3),
        }
        if isinstance(cfg.roi, FollowCentroid):
            out["roi_now"] = list(self.follow_rect((int(cfg.roi.size[0]),
                                                    int(cfg.roi.size[1]))))
        if cfg.auto is not None:
            out["auto"] = self.policy.report()
        if cfg.latency_budget_ms is not None or cfg.auto is not None:
            out.update(keep_fraction=round(self.keep_fraction, 4),
                       shed_policy=str(cfg.shed_policy),
                       refractory_period_us=self.period_us,
                       chunk_events=self.chunk_events(),
                       last_queue_wait_ms=round(self.last_wait_ms, 3))
        return out


def warm_up() -> None:
    """Compile the event operations' kernels."""
    ops.warm_up()


class AutoPolicy:
    """The optional policy layer: from a budget, the knobs, with the reason as a sentence.

    Every ``DECIDE_EVERY_NS`` it reads the input rate and the network's operations
    per event (both measured) and picks: under ``synops_per_s``, the share of events
    to keep; under ``energy_uw``, first the highest precision on the ladder float32
    → int16 → int8 (int16 agrees with float32 as well as float16 does in
    benchmarks/README.md, at a quarter of its accumulate energy) whose estimated
    power fits, then a share of events if even int8 does not fit.
    """

    LADDER = ("float32", "int16", "int8")
    DECIDE_EVERY_NS = 250_000_000

    def __init__(self) -> None:
        self.core: Any = None
        self.keep = 1.0
        self.precision: str | None = None
        self.why = "no measurement yet"
        self.predicted: float | None = None
        self._last_ns: int | None = None

    def decide(self, alloc: Allocator, cfg: AllocationConfig, now_ns: int) -> float:
        """The share of events to keep now (the precision is set here too)."""
        if self._last_ns is not None and now_ns - self._last_ns < self.DECIDE_EVERY_NS:
            return self.keep
        self._last_ns = now_ns
        auto = cfg.auto
        rate = alloc.input_rate_ev_s()
        synops_ev, updates_ev = alloc.ops_per_event()
        if auto is None or rate <= 0 or synops_ev + updates_ev <= 0:
            self.keep, self.why = 1.0, "no measurement yet: keeping every event"
            return self.keep
        policy = str(cfg.shed_policy)
        if auto.synops_per_s is not None:
            need = rate * synops_ev
            self.keep = min(1.0, auto.synops_per_s / need)
            self.predicted = min(need, auto.synops_per_s)
            verdict = ("fits" if self.keep >= 1.0
                       else f"exceeds it: keep {self.keep:.0%} by {policy}")
            self.why = (f"input {rate:,.0f} ev/s × {synops_ev:,.0f} synops/event = {need:.3g} "
                        f"synops/s against a budget of {auto.synops_per_s:.3g}: {verdict}")
            return self.keep
        budget = float(auto.energy_uw)  # type: ignore[arg-type]
        energies = cfg.energy.op_energies()

        def power_uw(p: str) -> float:  # pJ/s × 1e-6 = µW
            per_event = synops_ev * energies.accumulate_at(p) + updates_ev * (
                energies.neuron_update_pj)
            return rate * per_event * 1e-6

        allowed = [p for p in self.LADDER if self._takes(p)]
        if not allowed:
            allowed = ["float32"]
        chosen = next((p for p in allowed if power_uw(p) <= budget), allowed[-1])
        self.keep = min(1.0, budget / power_uw(chosen)) if power_uw(chosen) > 0 else 1.0
        self.predicted = power_uw(chosen) * self.keep
        if chosen != self.precision and self.core is not None:
            precision.set_precision(bank_of(self.core), chosen)
        self.precision = chosen
        full = power_uw("float32")
        tail = ("fits" if self.keep >= 1.0 else
                f"still {power_uw(chosen):.3g} µW: keep {self.keep:.0%} by {policy}")
        self.why = (f"input {rate:,.0f} ev/s × ({synops_ev:,.0f} synops + {updates_ev:,.0f} "
                    f"neuron updates)/event ≈ {full:.3g} µW at float32 against a budget of "
                    f"{budget:.3g} µW; {chosen} {tail}")
        return self.keep

    def _takes(self, p: str) -> bool:
        if self.core is None:
            return p == "float32"
        try:
            precision.check_precisions(bank_of(self.core), p)
        except KnobError:
            return False
        return True

    def report(self) -> dict[str, Any]:
        return {"keep_fraction": round(self.keep, 4), "precision": self.precision,
                "predicted": None if self.predicted is None else round(self.predicted, 3),
                "why": self.why}
