"""The event-driven SNN core on its own: throughput, synaptic operations, latency.

1. Workload (issue 4): 2312 inputs (2 × 34 × 34) → Affine → 512 LIF → Affine →
   10 LIF, dt = 1 ms, a Poisson stream of 100 k events/s for 1 s, fed through
   ``Network.step`` in packets of 1 ms / 10 ms / 40 ms / all at once (the
   service's call). Wall time, input events/s, × real time, and the same
   input as a dense clock-driven numpy reference for scale.
2. Synaptic operations per second on a fan-out-1000 layer (100 → 1000 dense
   → 1000 LIF), 1 M input events.
3. Per-event compute latency: ``Network.step`` on one event at a time (its
   own step), median and 99th percentile, on the workload's network.

The peers (snnTorch, Norse) on the same workload: ``bench_core_peers.py``.

Run: ``.venv/bin/python benchmarks/bench_core.py [--rate 100000] [--seconds 1]``
"""

from __future__ import annotations

import argparse
import itertools
import time

import nir
import numpy as np
from numba import njit

from spikegate.drivers.packet import make_events
from spikegate.models.graph import from_nir
from spikegate.models.kernels.dense import add_step_rows
from spikegate.models.network import Network, warm_up
from spikegate.models.profiles import make_profile
from spikegate.models.reference import run_reference

SHAPE = (2, 34, 34)
N_IN = int(np.prod(SHAPE))


def lif(n: int, tau_s: float = 0.02, threshold: float = 1.0) -> nir.LIF:
    return nir.LIF(tau=np.full(n, tau_s), r=np.ones(n), v_leak=np.zeros(n),
                   v_threshold=np.full(n, threshold), v_reset=np.zeros(n))


def dense_graph(sizes: list[int], seed: int = 0, scale: float = 0.3) -> nir.NIRGraph:
    """Input → (Affine → LIF)* → Output, float32 weights."""
    rng = np.random.default_rng(seed)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([sizes[0]])})}
    edges, prev = [], "input"
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = rng.normal(0.01, scale, size=(n_out, n_in)).astype(np.float32)
        nodes[f"fc{k}"] = nir.Affine(weight=w, bias=np.zeros(n_out, np.float32))
        nodes[f"lif{k}"] = lif(n_out)
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"lif{k}")]
        prev = f"lif{k}"
    nodes["output"] = nir.Output(output_type={"output": np.array([sizes[-1]])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def poisson_events(rate_hz: float, seconds: float, n_addr: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(rng.poisson(rate_hz * seconds))
    t = np.sort(rng.integers(0, int(seconds * 1e6), n))
    addr = rng.integers(0, n_addr, n)
    p, rest = np.divmod(addr, SHAPE[1] * SHAPE[2])
    y, x = np.divmod(rest, SHAPE[2])
    return make_events(t, x, y, p)


def run_packets(
    net: Network, events: np.ndarray, packet_us: int | None
) -> tuple[float, float, int, int]:
    """CPU time, wall time, output spikes and synops of one pass (packets cut on steps)."""
    net.reset_state(t_origin_us=0)
    if packet_us is None:
        bounds = np.array([0, len(events)])
    else:
        edges = np.arange(0, int(events["t"][-1]) + packet_us + 1, packet_us)
        cuts = np.searchsorted(events["t"], edges)
        bounds = np.unique(np.concatenate([[0], cuts, [len(events)]]))
    n_out = synops = 0
    started, cpu = time.perf_counter(), time.thread_time()
    for a, b in itertools.pairwise(bounds):
        result = net.step(events[a:b])
        n_out += len(result.events)
        synops += result.synops_total
    return time.thread_time() - cpu, time.perf_counter() - started, n_out, synops


@njit(nogil=True)
def _rows_only(steps, idx, ones, weight_t, acc):
    """The first layer's additions and nothing else: every event's weight row added to
    its step's float64 sums (the kernel's own ``add_step_rows``), sums cleared per step."""
    unit = True
    pos = 0
    while pos < steps.shape[0]:
        pos = add_step_rows(pos, steps, idx, ones, weight_t, acc, unit)
        acc[:] = 0.0
    return pos


def floor_table(net: Network, events: np.ndarray, repeats: int = 7) -> str:
    """How long the workload's weight-row additions take on their own, with the rows
    streamed from memory as in the workload and with all events on 4 rows (which stay
    in L1): the first is a floor under the whole run, the gap between them is memory."""
    dense = net.stages["fc0"]
    steps = (events["t"] // net.profile.dt_us).astype(np.int64)
    idx = net.flatten_addresses(events)
    acc = np.zeros(dense.weight_t.shape[1])
    ones = np.ones(len(events))
    lines = ["| first layer's weight rows alone (51.2 M float32 → float64 additions) "
             "| CPU (ms) | × real time at most |", "|---|---:|---:|"]
    for label, rows in (("rows from memory (the workload's addresses)", idx),
                        ("the same additions on 4 rows (in L1)", idx % 4)):
        _rows_only(steps, rows, ones, dense.weight_t, acc)
        best = np.inf
        for _ in range(repeats):
            cpu = time.thread_time()
            _rows_only(steps, rows, ones, dense.weight_t, acc)
            best = min(best, time.thread_time() - cpu)
        lines.append(f"| {label} | {best * 1e3:.1f} | {1.0 / best:.0f} |")
    return "\n".join(lines) + "\n"


def best_of(n: int, fn):
    runs = [fn() for _ in range(n)]
    return min(runs, key=lambda r: r[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100_000, help="input events per second")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    t0 = time.perf_counter()
    warm_up()
    print(f"warm_up: {time.perf_counter() - t0:.2f} s\n")

    # 1. the workload
    graph = from_nir(dense_graph([N_IN, 512, 10]))
    net = Network(graph, make_profile("snntorch", 1e-3), event_shape=SHAPE)
    events = poisson_events(args.rate, args.seconds, N_IN)
    run_packets(net, events[:1000], None)  # compile
    print(f"workload: {N_IN} → 512 LIF → 10 LIF, dt 1 ms, {len(events):,} events "
          f"over {args.seconds:g} s (snntorch profile)\n")
    print("| packets | CPU (ms) | wall (ms) | M input events/s | × real time | output spikes "
          "| M synops/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, packet_us in (("1 ms", 1000), ("10 ms", 10_000), ("40 ms", 40_000),
                             ("all at once", None)):
        cpu, wall, n_out, synops = best_of(args.repeats,
                                           lambda p=packet_us: run_packets(net, events, p))
        print(f"| {label} | {cpu * 1e3:.1f} | {wall * 1e3:.1f} | {len(events) / cpu / 1e6:.2f} | "
              f"{args.seconds / cpu:.0f} | {n_out} | {synops / cpu / 1e6:.0f} |")
    # the dense clock-driven reference on the same input, for scale (and as a check)
    steps = (events["t"] // 1000).astype(np.int64)
    n_steps = int(steps[-1]) + 1
    raster = np.zeros((n_steps, N_IN))
    np.add.at(raster, (steps, net.flatten_addresses(events)), 1)
    started = time.process_time()  # BLAS may use more than this thread
    ref = run_reference(graph, net.profile, raster)
    ref_cpu = time.process_time() - started
    got = net.run(raster)["output"]
    same = np.array_equal(got, ref["output"])
    print(f"\nclock-driven numpy reference: {ref_cpu * 1e3:.0f} ms CPU "
          f"(the core, all at once, is {ref_cpu / cpu:.0f}× faster); "
          f"identical output spikes: {same}\n")

    # the floor under the workload: its first layer's weight rows alone
    print(floor_table(net, events))

    # 2. fan-out 1000
    fan_graph = from_nir(dense_graph([100, 1000], scale=0.05))
    fan = Network(fan_graph, make_profile("snntorch", 1e-3))
    fan_events = make_events(np.sort(np.random.default_rng(2).integers(0, 1_000_000, 1_000_000)),
                             np.random.default_rng(3).integers(0, 100, 1_000_000))
    run_packets(fan, fan_events[:1000], None)
    cpu, wall, _, synops = best_of(args.repeats, lambda: run_packets(fan, fan_events, 10_000))
    print("| fan-out-1000 layer (100 → 1000 LIF), 1 M events | CPU (ms) | wall (ms) | G synops | "
          "M synops/s (CPU) |")
    print("|---|---:|---:|---:|---:|")
    print(f"| 10 ms packets | {cpu * 1e3:.1f} | {wall * 1e3:.1f} | {synops / 1e9:.2f} | "
          f"{synops / cpu / 1e6:.0f} |\n")

    # 3. per-event latency
    net.reset_state(t_origin_us=0)
    one = events[:2000]
    lat = np.empty(len(one))
    lat_cpu = np.empty(len(one))
    for k in range(len(one)):
        ev = one[k : k + 1].copy()
        ev["t"] = k * 1000  # one event per step: each call closes one step
        started, cpu0 = time.perf_counter_ns(), time.thread_time_ns()
        net.step(ev)
        lat[k] = time.perf_counter_ns() - started
        lat_cpu[k] = time.thread_time_ns() - cpu0
    print("| per-event latency (Network.step on 1 event, 512 + 10 LIF) | CPU (µs) | wall (µs) |")
    print("|---|---:|---:|")
    print(f"| median | {np.median(lat_cpu) / 1e3:.1f} | {np.median(lat) / 1e3:.1f} |")
    print(f"| 99th percentile | {np.percentile(lat_cpu, 99) / 1e3:.1f} | "
          f"{np.percentile(lat, 99) / 1e3:.1f} |")


if __name__ == "__main__":
    main()
