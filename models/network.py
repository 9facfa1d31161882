"""``Network``: a compiled graph with its state, the one call site of the kernels.

``load_model(path, profile)`` reads a ``.nir`` file and compiles it;
``Network.step(events)`` runs a packet of ``EVENT_DTYPE`` events (or a
``(T, *input_shape)`` count raster) through the graph event by event and
returns a ``StepResult``: the output spikes as events (one per spike), with
their step and cause time, and the synaptic operations and neuron updates of
each layer.

Time. Events are binned into steps of ``dt_us``; step 0 starts at the first
event's time rounded down to a multiple of dt (``t_origin_us``). A call runs
every step up to the one of its last event, inclusive; an event that falls in
a step an earlier call already ran is counted as late and added to the next
step. An output spike is stamped with the time of the latest input event of
its step, or the step's start when the step had no input.

Addresses. Events are flattened with ``event_shape`` = (P, H, W):
index = (p·H + y)·W + x. It defaults to the input shape: (C, H, W) as is,
(H, W) → (1, H, W), (N,) → (1, 1, N), so a 1-D input reads the channel from
x. With P = 1 the polarity is ignored. Addresses outside raise ``InputError``.

Execution. Layers run in topological order, each over the whole packet (one
kernel call per layer per packet; a plain chain Input → (Affine → neurons)* →
Output runs in one kernel call for all its layers). Layers on a cycle (a recurrent edge) run
together step by step; a recurrent edge delivers its source's output one
step later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from ..drivers.packet import EVENT_DTYPE, as_events
from .graph import Graph, GraphError, load_graph
from .kernels.chain import run_dense_chain
from .kernels.events import bin_events, bin_events_with_causes, cause_times, output_events
from .profiles import Profile, make_profile
from .signal import Signal, empty_signal, merge_signals, raster_to_signal, signal_to_raster
from .stages import STAGES, DenseStage, NeuronStage, Stage

_Causes = tuple[np.ndarray, np.ndarray]  # (steps with input, their latest event time µs)
_NO_CAUSES: _Causes = (np.zeros(0, np.int64), np.zeros(0, np.int64))
MAX_SPIKES_PER_EVENT_STEP = 255
"""A multi-spike neuron's spikes in one step beyond this are counted, not listed."""


class InputError(ValueError):
    """Input the network can't take (wrong shape, address out of range)."""


@dataclass
class StepResult:
    """What one ``Network.step`` call produced."""

    events: np.ndarray  # EVENT_DTYPE: t = cause time (µs), x = output index, one per spike
    steps: np.ndarray  # int64, the step of each output event
    output: Signal  # (step, index, spike count or v) per firing neuron and step
    synops: dict[str, int]  # per layer, this call
    neuron_updates: dict[str, int]  # per layer, this call
    first_step: int = 0
    n_steps: int = 0
    n_input_events: int = 0
    n_late: int = 0
    n_truncated: int = 0  # spikes beyond MAX_SPIKES_PER_EVENT_STEP (multi-spike IF), not in events
    recorded: dict[str, Signal] = field(default_factory=dict)

    @property
    def synops_total(self) -> int:
        return sum(self.synops.values())

    @property
    def neuron_updates_total(self) -> int:
        return sum(self.neuron_updates.values())


class Network:
    """A graph compiled under a profile, with its state in flat arrays.

    Not thread-safe: one thread (the service's core executor) owns it.
    """

    max_steps_per_call = 2_000_000
    """An event packet may advance the clock by at most this many steps (bounds the
    work and memory an input timestamp can demand)."""

    def __init__(
        self,
        graph: Graph,
        profile: Profile,
        event_shape: Sequence[int] | None = None,
    ) -> None:
        if len(graph.inputs) != 1:
            raise GraphError(f"the core runs graphs with one Input, this has {len(graph.inputs)}")
        self.graph = graph
        self.profile = profile
        self.input_name = graph.inputs[0]
        self.output_name = graph.outputs[0]
        self.input_shape: tuple[int, ...] = graph.input_shape
        self.output_shape: tuple[int, ...] = graph.output_shape
        self.output_size = int(np.prod(self.output_shape))
        self.input_size = int(np.prod(self.input_shape))
        self.event_shape = _event_shape(self.input_shape, event_shape)
        stages: dict[str, Stage] = {}
        for layer in graph.layers:
            cls = STAGES.get(layer.kind)
            if cls is None:
                raise GraphError(f"node {layer.name!r}: no run-time stage for kind {layer.kind!r}")
            stages[layer.name] = cls(layer, profile)
        self.stages = stages
        self._sources = {
            layer.name: [(e.source, e.recurrent) for e in graph.incoming(layer.name)]
            for layer in graph.layers
        }
        self._fold_constants()
        self._groups = _groups(graph)
        # the run plan: (name, forward sources, None, fused dense layer) for a layer on
        # no cycle, ("", (), members, None) for the layers of one cycle, stepped together.
        # A dense layer whose only consumer is a neuron layer fed by it alone runs fused
        # into that neuron layer (unless recorded in a call).
        consumers: dict[str, list[str]] = {n: [] for n in self.stages}
        for e in graph.edges:
            consumers[e.source].append(e.target)
        self._plan: list[tuple[str, tuple[str, ...], list[str] | None, str | None]] = []
        fused_into: dict[str, str] = {}
        for group in self._groups:
            name = group[0]
            if len(group) == 1 and not self._has_self_loop(name):
                if name == self.input_name:
                    continue
                sources = tuple(src for src, _ in self._sources[name])
                fused = None
                if (len(sources) == 1 and isinstance(self.stages[name], NeuronStage)
                        and type(self.stages[name]) is NeuronStage
                        and isinstance(self.stages[sources[0]], DenseStage)
                        and consumers[sources[0]] == [name]
                        and sources[0] in {p[0] for p in self._plan}):
                    fused = sources[0]
                    fused_into[fused] = name
                self._plan.append((name, sources, None, fused))
            else:
                self._plan.append(("", (), group, None))
        self._fused_into = fused_into
        self._chain = self._fused_chain()
        self._chain_arrays: tuple | None = None  # (stages, their arrays as tuples, deltas)
        self._output_spiking = self._output_is_spiking()
        self.reset_state()

    # ------------------------------------------------------------ compile

    def _fold_constants(self) -> None:
        """Carry biases through linear layers into the neurons they drive."""
        rec_start = 0 if self.profile.recurrent_bias_first_step else 1
        drive: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        const_now: dict[str, np.ndarray] = {}
        const_rec: dict[str, np.ndarray] = {}
        pending = list(self.graph.layers)
        # forward edges give a topological order; recurrent sources may come later,
        # so iterate to a fixed point (a cycle always passes a neuron, which emits 0)
        for _ in range(len(pending) + 1):
            changed = False
            for layer in pending:
                now = np.zeros(layer.input_size)
                rec = np.zeros(layer.input_size)
                for src, recurrent in self._sources[layer.name]:
                    s_now = const_now.get(src, np.zeros(layer.input_size))
                    s_rec = const_rec.get(src, np.zeros(layer.input_size))
                    if recurrent:
                        rec = rec + s_now + s_rec
                    else:
                        now, rec = now + s_now, rec + s_rec
                stage = self.stages[layer.name]
                if stage.absorbs_constant or layer.kind == "output":
                    out_now = out_rec = np.zeros(layer.output_size)
                else:
                    out_now = stage.map_constant(layer, now)
                    out_rec = stage.map_constant(layer, rec) - stage.map_constant(
                        layer, np.zeros(layer.input_size)
                    )
                old_now = const_now.get(layer.name)
                old_rec = const_rec.get(layer.name)
                if (
                    old_now is None
                    or old_rec is None
                    or not np.array_equal(old_now, out_now)
                    or not np.array_equal(old_rec, out_rec)
                ):
                    changed = True
                const_now[layer.name], const_rec[layer.name] = out_now, out_rec
                if stage.absorbs_constant or layer.kind == "output":
                    drive[layer.name] = (now, rec)
            if not changed:
                break
        for name, (now, rec) in drive.items():
            self.stages[name].set_drive(now, rec, rec_start)

    # ------------------------------------------------------------ state

    def reset_state(self, t_origin_us: int | None = None) -> None:
        """Back to rest: zero state, step 0; the time origin is set by the next event
        unless given (µs, the start of step 0)."""
        for stage in self.stages.values():
            stage.reset_state()
        self.next_step = 0
        self.t_origin_us: int | None = t_origin_us
        self._carry: dict[str, Signal] = {}  # recurrent sources' output at next_step - 1
        self._held = np.zeros(0, dtype=EVENT_DTYPE)  # events of a step not yet closed

    # ------------------------------------------------------------ running

    def step(
        self,
        events: np.ndarray,
        record: Iterable[str] = (),
        until_step: int | None = None,
        flush: bool = True,
    ) -> StepResult:
        """Run a packet: ``EVENT_DTYPE`` events, or a (T, *input_shape) count raster.

        Events: ``flush=True`` runs through the step of the last event (lowest
        latency; a later event of that step counts as late). ``flush=False``
        holds the events of the last, maybe incomplete, step back for the next
        call (exact whatever the packet boundaries). ``until_step`` (exclusive)
        runs further steps with no input.
        """
        if events.dtype.names is not None:
            events = as_events(events, "events")
            if len(self._held):
                events = np.concatenate([self._held, np.asarray(events, dtype=self._held.dtype)])
                self._held = self._held[:0]
            if not flush and len(events):
                events = self._hold_last_step(events)
            inp, k1, causes, n_late, n_in = self._from_events(events, until_step)
        else:
            inp, k1, causes, n_late, n_in = self._from_raster(events)
        return self._run(inp, k1, causes, n_late, n_in, tuple(record))

    def run(self, x: np.ndarray, record: Iterable[str] = ()) -> dict[str, np.ndarray]:
        """Run a (T, *input_shape) raster from rest; each recorded node's raster (T, *shape).

        The output node is always recorded. Values are spike counts (or v for
        non-spiking layers).
        """
        self.reset_state()
        names = list(dict.fromkeys([*record, self.output_name]))
        result = self.step(np.asarray(x), record=names)
        out: dict[str, np.ndarray] = {}
        for name in names:
            layer = self.graph.layer(name)
            raster = signal_to_raster(result.recorded[name], 0, result.n_steps, layer.output_size)
            out[name] = raster.reshape((result.n_steps, *layer.output_shape))
        return out

    def _hold_last_step(self, events: np.ndarray) -> np.ndarray:
        dt_us = self.profile.dt_us
        t = events["t"].astype(np.int64)
        origin = self.t_origin_us
        if origin is None:
            origin = int(t.min()) // max(dt_us, 1) * max(dt_us, 1)
        steps = (t - origin) // max(dt_us, 1)
        keep = steps < steps.max()
        self._held = np.ascontiguousarray(events[~keep])
        return events[keep]

    def _from_raster(self, x: np.ndarray) -> tuple[Signal, int, _Causes, int, int]:
        if x.ndim < 1 or x.shape[1:] != self.input_shape:
            raise InputError(
                f"input raster: shape {x.shape} does not match (T, *{self.input_shape}) "
                f"of input node {self.input_name!r}"
            )
        if x.dtype == np.bool_:
            x = x.astype(np.uint8)
        if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
            raise InputError("input raster: values must be finite numbers (spike counts)")
        k0 = self.next_step
        sig = raster_to_signal(np.asarray(x), k0)
        if self.t_origin_us is None:
            self.t_origin_us = 0
        return sig, k0 + x.shape[0], _NO_CAUSES, 0, int(np.count_nonzero(x))

    def _from_events(
        self, events: np.ndarray, until_step: int | None
    ) -> tuple[Signal, int, _Causes, int, int]:
        dt_us = self.profile.dt_us  # events are EVENT_DTYPE here (as_events)
        if dt_us < 1 or abs(dt_us - self.profile.dt_s * 1e6) > 1e-6:
            raise InputError(f"events need dt in whole µs; dt = {self.profile.dt_s!r} s")
        n = events.shape[0]
        k0 = self.next_step
        if n == 0:
            k1 = k0 if until_step is None else max(k0, until_step)
            return empty_signal(), k1, _NO_CAUSES, 0, 0
        t = events["t"]
        origin = self.t_origin_us
        if origin is None:
            origin = int(t.min()) // dt_us * dt_us
        steps = np.empty(n, np.int64)
        idx = np.empty(n, np.int64)
        c_steps, c_t = np.empty(n, np.int64), np.empty(n, np.int64)
        n_p, n_y, n_x = self.event_shape
        bad, field, n_late, last, ordered, m = bin_events_with_causes(
            t, events["x"], events["y"], events["p"], origin, dt_us, k0, n_p, n_y, n_x, steps,
            idx, c_steps, c_t,
        )
        if bad >= 0:
            name = "xyp"[field]
            raise InputError(
                f"events: event {bad}: {name} = {int(events[name][bad])} outside the input "
                f"{self.input_name!r} of shape {self.event_shape} (P, H, W)"
            )
        self.t_origin_us = origin
        if not ordered:
            order = np.argsort(steps, kind="stable")
            steps, idx, t = steps[order], idx[order], t[order]
        k1 = int(last) + 1
        if until_step is not None:
            k1 = max(k1, until_step)
        if k1 - k0 > self.max_steps_per_call:
            raise InputError(
                f"events: the packet spans {k1 - k0} steps of {dt_us} µs from step {k0} "
                f"(more than max_steps_per_call = {self.max_steps_per_call}); a clock jump? "
                "reset_state() starts a new time origin"
            )
        if m < 0:  # cause time of a step with input: its latest input event
            m = cause_times(steps, t, c_steps, c_t)
        return Signal(steps, idx, np.ones(n)), k1, (c_steps[:m], c_t[:m]), n_late, n

    def flatten_addresses(self, events: np.ndarray) -> np.ndarray:
        """The flat input index of each event (``InputError`` when out of range)."""
        n_p, n_y, n_x = self.event_shape
        steps = np.empty(len(events), np.int64)
        idx = np.empty(len(events), np.int64)
        bad, field, _, _, _ = bin_events(events["t"], events["x"], events["y"], events["p"],
                                         0, 1, 0, n_p, n_y, n_x, steps, idx)
        if bad >= 0:
            name = "xyp"[field]
            raise InputError(
                f"events: event {bad}: {name} = {int(events[name][bad])} outside the input "
                f"{self.input_name!r} of shape {self.event_shape} (P, H, W)"
            )
        return idx

    def _run(
        self,
        inp: Signal,
        k1: int,
        causes: _Causes,
        n_late: int,
        n_in: int,
        record: tuple[str, ...],
    ) -> StepResult:
        k0 = self.next_step
        for name in record:
            if name not in self.stages:
                raise InputError(f"record: no node named {name!r}")
        if not record and self._chain is not None:
            # stages are looked up now: the allocation knobs swap them at run time
            chain = [(self.stages[n], self.stages[d]) for n, d in self._chain]
            if all(type(n) is NeuronStage and type(d) is DenseStage for n, d in chain):
                return self._run_chain(cast(list[tuple[NeuronStage, DenseStage]], chain),
                                       inp, k1, causes, n_late, n_in)
        stages = list(self.stages.values())
        synops0 = [s.synops for s in stages]
        updates0 = [s.updates for s in stages]
        outputs: dict[str, Signal] = {self.input_name: inp}
        for name, sources, group, fused in self._plan:
            if group is not None:
                self._run_cycle(group, k0, k1, outputs)
            elif fused is not None and self._fusable(fused, record):
                dense_sources = [src for src, _ in self._sources[fused]]
                parts = [outputs[src] for src in dense_sources]
                stage_in = parts[0] if len(parts) == 1 else merge_signals(parts)
                neurons = cast(NeuronStage, self.stages[name])  # checked at compile
                dense = cast(DenseStage, self.stages[fused])
                outputs[name] = neurons.advance(k0, k1, stage_in, dense=dense)
            else:
                if name in self._fused_into and self._fusable(name, record):
                    continue  # runs inside its neuron layer
                parts = [outputs[src] for src in sources]
                stage_in = parts[0] if len(parts) == 1 else merge_signals(parts)
                outputs[name] = self.stages[name].advance(k0, k1, stage_in)
        self.next_step = k1
        return self._result(
            outputs.get(self.output_name, empty_signal()), k0, k1, causes, n_late, n_in,
            {s.name: s.synops - a for s, a in zip(stages, synops0, strict=True)},
            {s.name: s.updates - a for s, a in zip(stages, updates0, strict=True)},
            {name: outputs.get(name, empty_signal()) for name in record},
        )

    def _run_chain(
        self,
        chain: list[tuple[NeuronStage, DenseStage]],
        inp: Signal,
        k1: int,
        causes: _Causes,
        n_late: int,
        n_in: int,
    ) -> StepResult:
        """``_run`` for a plain chain of fused dense → neuron layers (nothing recorded):
        the whole chain in one kernel call (a live packet's path)."""
        k0 = self.next_step
        weights = tuple(dense.weight_t for _, dense in chain)
        if self._chain_arrays is None or self._chain_arrays[0] != chain:
            per_layer = [tuple(getattr(neurons, attr) for neurons, _ in chain)
                         for attr in ("coef_rows", "flags", "fstate", "istate", "bstate",
                                      "sched", "counters")]
            per_layer.append(tuple(dense.counters for _, dense in chain))
            self._chain_arrays = (chain, tuple(per_layer), np.zeros(2 * len(chain), np.int64))
        _, arrays, deltas = self._chain_arrays
        counts: list[int] = []
        if all(w.dtype == weights[0].dtype for w in weights):
            coefs, flags, fstates, istates, bstates, scheds, counters, dense_counters = arrays
            sig = Signal(*run_dense_chain(k0, k1, inp.step, inp.idx, inp.val, weights, coefs,
                                          flags, fstates, istates, bstates, scheds, counters,
                                          dense_counters, deltas))
            counts = deltas.tolist()
            for layer, (neurons, dense) in enumerate(chain):
                dense.synops += counts[2 * layer]
                neurons.updates += counts[2 * layer + 1]
        else:  # mixed weight types can't share one kernel's tuple: layer by layer
            sig = inp
            for neurons, dense in chain:
                synops0, updates0 = dense.synops, neurons.updates
                sig = neurons.advance(k0, k1, sig, dense=dense)
                counts += [dense.synops - synops0, neurons.updates - updates0]
        self.next_step = k1
        synops = dict.fromkeys(self.stages, 0)
        updates = dict.fromkeys(self.stages, 0)
        for layer, (neurons, dense) in enumerate(chain):
            synops[dense.name] = counts[2 * layer]
            updates[neurons.name] = counts[2 * layer + 1]
        return self._result(sig, k0, k1, causes, n_late, n_in, synops, updates, {})

    def _result(
        self,
        out: Signal,
        k0: int,
        k1: int,
        causes: _Causes,
        n_late: int,
        n_in: int,
        synops: dict[str, int],
        updates: dict[str, int],
        recorded: dict[str, Signal],
    ) -> StepResult:
        """The output signal as events (one per spike, stamped with its cause time)."""
        events, steps, n_truncated = output_events(
            out.step, out.idx, out.val, self._output_spiking, MAX_SPIKES_PER_EVENT_STEP,
            self.t_origin_us or 0, self.profile.dt_us, causes[0], causes[1])
        return StepResult(
            events=events,
            steps=steps,
            output=out,
            synops=synops,
            neuron_updates=updates,
            first_step=k0,
            n_steps=k1 - k0,
            n_input_events=n_in,
            n_late=n_late,
            n_truncated=int(n_truncated),
            recorded=recorded,
        )

    def _fusable(self, dense: str, record: tuple[str, ...]) -> bool:
        # a stage swapped at run time (CSR, other precision) runs on its own
        return dense not in record and type(self.stages[dense]) is DenseStage

    def _fused_chain(self) -> list[tuple[str, str]] | None:
        """The plan as a chain of fused (neuron, dense) layer names, the input feeding
        the first and the last feeding the output; None when the plan is anything else."""
        chain: list[tuple[str, str]] = []
        prev = self.input_name
        for name, sources, group, fused in self._plan:
            if group is not None:
                return None
            if name in self._fused_into:
                continue  # a dense layer, run inside its neuron layer
            if fused is not None and sources == (fused,):
                if tuple(src for src, _ in self._sources[fused]) != (prev,):
                    return None
                chain.append((name, fused))
                prev = name
            elif not (name == self.output_name and sources == (prev,)):
                return None
        return chain if chain and self._output_source() == prev else None

    def _output_source(self) -> str:
        return self._sources[self.output_name][0][0]

    def _output_is_spiking(self) -> bool:
        stage = self.stages[self._output_source()]
        coef = getattr(stage, "coef", None)
        return bool(coef is not None and coef.spiking)

    def _has_self_loop(self, name: str) -> bool:
        return any(src == name for src, _ in self._sources[name])

    def _run_cycle(self, group: list[str], k0: int, k1: int, outputs: dict[str, Signal]) -> None:
        """Step the layers of one cycle together, one step at a time."""
        members = set(group)
        per_step: dict[str, list[Signal]] = {name: [] for name in group}
        external = {
            name: merge_signals(
                [outputs[src] for src, _ in self._sources[name] if src not in members]
            )
            for name in group
        }
        input_steps = np.unique(np.concatenate([external[n].step for n in group]))
        k = k0
        while k < k1:
            if (all(len(self._carry.get(n, ())) == 0 for n in group)
                    and all(self.stages[n].quiet() for n in group)):
                # nothing can happen before the next input or wake-up: skip ahead (decays
                # are lazy)
                nxt = int(np.searchsorted(input_steps, k))
                k_next = int(input_steps[nxt]) if nxt < len(input_steps) else k1
                for name in group:
                    wake = self.stages[name].next_wake()
                    if wake is not None:
                        k_next = min(k_next, wake)
                if k_next > k:
                    k = k_next
                    continue
            current: dict[str, Signal] = {}
            for name in group:
                parts = [external[name].between(k, k + 1)]
                for src, recurrent in self._sources[name]:
                    if src not in members:
                        continue
                    if recurrent:
                        prev = self._carry.get(src)
                        if prev is not None and len(prev):
                            parts.append(Signal(prev.step + 1, prev.idx, prev.val))
                    else:
                        parts.append(current[src])
                current[name] = self.stages[name].advance(k, k + 1, merge_signals(parts))
                per_step[name].append(current[name])
            for name in group:
                self._carry[name] = current[name]
            k += 1
        for name in group:
            outputs[name] = merge_signals(per_step[name])


def _event_shape(input_shape: tuple[int, ...], given: Sequence[int] | None) -> tuple[int, int, int]:
    size = int(np.prod(input_shape))
    if given is not None:
        shape = tuple(int(s) for s in given)
        if len(shape) != 3 or int(np.prod(shape)) != size:
            raise InputError(f"event_shape {shape} must be (P, H, W) with P·H·W = {size}")
        return (shape[0], shape[1], shape[2])
    if len(input_shape) == 3:
        return (input_shape[0], input_shape[1], input_shape[2])
    if len(input_shape) == 2:
        return (1, input_shape[0], input_shape[1])
    return (1, 1, size)


def _groups(graph: Graph) -> list[list[str]]:
    """Strongly connected components in a topological order of the condensation."""
    names = [layer.name for layer in graph.layers]
    position = {n: i for i, n in enumerate(names)}
    succ: dict[str, list[str]] = {n: [] for n in names}
    pred: dict[str, list[str]] = {n: [] for n in names}
    for e in graph.edges:
        succ[e.source].append(e.target)
        pred[e.target].append(e.source)

    def reach(start: str, nbrs: dict[str, list[str]]) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for m in nbrs[todo.pop()]:
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
        return seen

    comp: dict[str, int] = {}
    groups: list[list[str]] = []
    for n in names:
        if n in comp:
            continue
        members = reach(n, succ) & reach(n, pred)
        for m in members:
            comp[m] = len(groups)
        groups.append(sorted(members, key=position.__getitem__))
    # Kahn over the condensation, ties by topological position
    deps: dict[int, set[int]] = {g: set() for g in range(len(groups))}
    for e in graph.edges:
        a, b = comp[e.source], comp[e.target]
        if a != b:
            deps[b].add(a)
    done: list[int] = []
    remaining = set(deps)
    while remaining:
        ready = [g for g in remaining if not (deps[g] - set(done))]
        g = min(ready, key=lambda g: position[groups[g][0]])
        done.append(g)
        remaining.remove(g)
    return [groups[g] for g in done]


def load_model(
    path: str | Path,
    profile: str | Profile = "exact",
    dt_s: float | None = None,
    reset: str | None = None,
    event_shape: Sequence[int] | None = None,
) -> Network:
    """Read a ``.nir`` file and compile it under a profile (name or ``Profile``)."""
    prof = profile if isinstance(profile, Profile) else make_profile(profile, dt_s, reset)
    graph = load_graph(path)
    net = Network(graph, prof, event_shape=event_shape)
    if net.output_size > np.iinfo(np.uint16).max + 1:
        raise GraphError(f"{Path(path).name}: output of {net.output_size} neurons exceeds x range")
    return net


def warm_up() -> None:
    """Compile every kernel on a tiny network (the service calls this at start-up).

    Covers float32 and float64 weights, fused and unfused dense layers, raster
    and event input, and the cycle path.
    """
    import nir

    from ..drivers.packet import make_events
    from .graph import from_nir

    for weight in (np.ones((3, 2), np.float32), np.full((3, 2), 0.1)):
        g = nir.NIRGraph(
            nodes={
                "input": nir.Input(input_type={"input": np.array([2])}),
                "fc": nir.Affine(weight=weight, bias=np.zeros(3)),
                "lif": nir.CubaLIF(tau_syn=np.full(3, 2e-3), tau_mem=np.full(3, 1e-2),
                                   r=np.ones(3), v_leak=np.zeros(3),
                                   v_threshold=np.full(3, 0.5), v_reset=np.zeros(3),
                                   w_in=np.ones(3)),
                "rec": nir.Linear(weight=np.full((3, 3), 0.1)),
                "output": nir.Output(output_type={"output": np.array([3])}),
            },
            edges=[("input", "fc"), ("fc", "lif"), ("lif", "output"), ("lif", "rec"),
                   ("rec", "lif")],
            type_check=False,
        )
        feedforward = nir.NIRGraph(
            nodes={k: v for k, v in g.nodes.items() if k != "rec"},
            edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
            type_check=False,
        )
        two_layers = nir.NIRGraph(  # the one-call chain kernel is compiled per length
            nodes={**feedforward.nodes, "fc2": nir.Linear(weight=weight.T.copy()),
                   "lif2": nir.LIF(tau=np.full(2, 1e-2), r=np.ones(2), v_leak=np.zeros(2),
                                   v_threshold=np.ones(2), v_reset=np.zeros(2)),
                   "output": nir.Output(output_type={"output": np.array([2])})},
            edges=[("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "lif2"),
                   ("lif2", "output")],
            type_check=False,
        )
        for graph in (g, feedforward, two_layers):
            net = Network(from_nir(graph), make_profile("exact", dt_s=1e-3))
            net.step(np.ones((3, 2)))
            net.step(np.ones((3, 2)), record=["fc"])
            net.step(make_events([5000, 6000], [0, 1]))
            for stage in net.stages.values():
                if isinstance(stage, NeuronStage):
                    stage.next_wake()
