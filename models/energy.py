"""An energy estimate from counted operations, beside the dense clock-driven cost.

The core counts, per layer, synaptic operations (one accumulate per synapse
an event reaches) and neuron updates. ``EnergyMeter`` sums them from each
``step`` result and prices them:

- an event-driven synaptic operation is an *accumulate* (the weight is added;
  the input is a spike), priced at the layer's precision;
- a neuron update is priced as one multiply-accumulate (leak × v + input);
- the dense clock-driven equivalent of the same network at its ``dt`` runs
  every synapse at every step as a *multiply-accumulate* (MAC), and updates
  every neuron at every step.

Per-operation energies, 45 nm CMOS at 0.9 V, from M. Horowitz, "Computing's
energy problem (and what we can do about it)", ISSCC 2014, pp. 10–14:
32-bit float add 0.9 pJ, 32-bit float multiply 3.7 pJ (so a float32 MAC is
4.6 pJ); 16-bit float add 0.4 pJ; 32-bit integer add 0.1 pJ; 8-bit integer
add 0.03 pJ. The table has no 16-bit integer add: int16 is priced at the
32-bit integer add, an upper bound. Memory accesses, which that paper shows
dominate, are not counted: this is an arithmetic-only estimate.

For a model without a ``dt`` (the demo tracker, continuous time) the dense
equivalent uses ``dense_dt_us`` (1 ms by default) over the input's time span.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ACCUMULATE_PJ: dict[str, float] = {"float32": 0.9, "float16": 0.4, "int16": 0.1, "int8": 0.03}
"""Horowitz (ISSCC 2014), 45 nm: energy of one add at each weight precision."""
MAC_PJ_FLOAT32 = 4.6  # 3.7 pJ float32 multiply + 0.9 pJ float32 add (Horowitz 2014)


@dataclass(frozen=True)
class OpEnergies:
    """Energy per operation (pJ). ``accumulate_pj`` is the float32 accumulate; with
    ``scale_with_precision`` a layer at lower precision is priced by Horowitz's table
    in the same ratio."""

    accumulate_pj: float = ACCUMULATE_PJ["float32"]
    mac_pj: float = MAC_PJ_FLOAT32
    neuron_update_pj: float = MAC_PJ_FLOAT32
    scale_with_precision: bool = True
    dense_dt_us: int = 1000

    def __post_init__(self) -> None:
        for name in ("accumulate_pj", "mac_pj", "neuron_update_pj"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"energy: {name} must be finite and ≥ 0, not {value!r}")
        if self.dense_dt_us < 1:
            raise ValueError(f"energy: dense_dt_us must be ≥ 1, not {self.dense_dt_us!r}")

    def accumulate_at(self, precision: str) -> float:
        if not self.scale_with_precision:
            return self.accumulate_pj
        ratio = ACCUMULATE_PJ.get(precision, ACCUMULATE_PJ["float32"]) / ACCUMULATE_PJ["float32"]
        return self.accumulate_pj * ratio


@dataclass(frozen=True)
class LayerShape:
    """What the dense clock-driven run costs per step in one layer."""

    name: str
    macs_per_step: int  # synapses evaluated each step
    updates_per_step: int  # neurons updated each step


def dense_shapes(core: Any) -> list[LayerShape]:
    """Per layer, the synapses and neurons a clock-driven run evaluates every step."""
    stages = getattr(core, "stages", None)
    if not isinstance(stages, dict):  # the demo tracker: one dense layer of LIF outputs
        w = getattr(core, "w", None)
        size = int(getattr(core, "output_size", 0))
        return [LayerShape("tracker", int(w.size) if w is not None else 0, size)]
    shapes = []
    for name, stage in stages.items():
        layer = stage.layer
        kind = layer.kind
        if kind in ("affine", "linear"):
            shapes.append(LayerShape(name, int(stage.weight_t.size), 0))
        elif kind in ("conv1d", "conv2d"):
            c_out = int(layer.params.weight.shape[0])
            per_output = int(layer.params.weight.size) // max(c_out, 1)
            shapes.append(LayerShape(name, per_output * int(layer.output_size), 0))
        elif kind in ("sum_pool2d", "avg_pool2d", "scale"):
            shapes.append(LayerShape(name, int(layer.input_size), 0))
        elif getattr(stage, "coef", None) is not None:
            shapes.append(LayerShape(name, 0, int(layer.output_size)))
    return shapes


@dataclass
class EnergyMeter:
    """Counted operations of one core since creation (or ``reset``), and their price."""

    core: Any
    energies: OpEnergies = field(default_factory=OpEnergies)
    synops: dict[str, int] = field(default_factory=dict)
    updates: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    events: int = 0
    t_first_us: int | None = None
    t_last_us: int | None = None

    def reset(self) -> None:
        self.synops, self.updates = {}, {}
        self.steps = self.events = 0
        self.t_first_us = self.t_last_us = None

    def observe(self, result: Any, events: np.ndarray) -> None:
        """Add one ``step`` result's counters (per layer for a ``Network``)."""
        _add(self.synops, result.synops, "tracker")
        _add(self.updates, getattr(result, "neuron_updates", 0), "tracker")
        self.steps += int(getattr(result, "n_steps", 0))
        self.events += int(events.shape[0])
        if events.shape[0]:
            t0, t1 = int(events["t"][0]), int(events["t"][-1])
            self.t_first_us = t0 if self.t_first_us is None else min(self.t_first_us, t0)
            self.t_last_us = t1 if self.t_last_us is None else max(self.t_last_us, t1)

    def dense_steps(self) -> int:
        """Steps a clock-driven run would have taken over what was observed."""
        if self.steps:
            return self.steps
        if self.t_first_us is None or self.t_last_us is None:
            return 0
        return (self.t_last_us - self.t_first_us) // self.energies.dense_dt_us + 1

    def report(self) -> dict[str, Any]:
        """Counted operations and energy (µJ), event-driven and dense clock-driven."""
        from .weights import bank_of

        e = self.energies
        bank = bank_of(self.core)
        layers: dict[str, dict[str, Any]] = {}
        event_pj = 0.0
        for name in sorted(set(self.synops) | set(self.updates), key=_layer_order(self.core)):
            precision = bank.layers[name].precision if name in bank.layers else "float32"
            syn = self.synops.get(name, 0)
            upd = self.updates.get(name, 0)
            pj = syn * e.accumulate_at(precision) + upd * e.neuron_update_pj
            event_pj += pj
            if syn or upd:
                layers[name] = {"synops": syn, "neuron_updates": upd, "precision": precision,
                                "energy_uj": round(pj * 1e-6, 6)}
        steps = self.dense_steps()
        dense_macs = dense_updates = 0
        for shape in dense_shapes(self.core):
            dense_macs += shape.macs_per_step * steps
            dense_updates += shape.updates_per_step * steps
        dense_pj = dense_macs * e.mac_pj + dense_updates * e.neuron_update_pj
        synops = sum(self.synops.values())
        return {
            "synops": synops,
            "neuron_updates": sum(self.updates.values()),
            "energy_uj": round(event_pj * 1e-6, 6),
            "energy_per_event_nj": round(event_pj * 1e-3 / self.events, 4) if self.events else None,
            "dense_steps": steps,
            "dense_synops": dense_macs,
            "dense_neuron_updates": dense_updates,
            "dense_energy_uj": round(dense_pj * 1e-6, 6),
            "energy_saving_ratio": round(dense_pj / event_pj, 2) if event_pj > 0 else None,
            "layers": layers,
            "energies_pj": {"accumulate": e.accumulate_pj, "mac": e.mac_pj,
                            "neuron_update": e.neuron_update_pj},
        }


def _add(into: dict[str, int], counted: Any, single: str) -> None:
    if isinstance(counted, dict):
        for name, n in counted.items():
            if n:
                into[name] = into.get(name, 0) + int(n)
    elif counted:
        into[single] = into.get(single, 0) + int(counted)


def _layer_order(core: Any) -> Any:
    stages = getattr(core, "stages", None)
    order = {name: i for i, name in enumerate(stages)} if isinstance(stages, dict) else {}
    return lambda name: order.get(name, len(order))
