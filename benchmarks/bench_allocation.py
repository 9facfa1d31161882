"""Resource allocation: what each knob costs in agreement and buys in operations and latency.

    .venv/bin/python benchmarks/bench_allocation.py [--quick] [--no-plots]

1. Trade-offs, offline. The NIR paper's N-MNIST CNN (``cnn_sinabs.nir``,
   Sinabs profile, dt = 1 ms) on the real N-MNIST sample
   (``tonic_sample_nmnist.bin``), and the demo tracker on 1 s of the synthetic
   moving disk, are run at each setting of each knob: precision (float16,
   int16, int8), sparsity (magnitude pruning), load shedding (random thinning,
   per-pixel refractory, 2×2-cell refractory) and a region of interest. Each
   is compared with the float32, full network on the same input: spike
   agreement per (output neuron, 10 ms bin), the CNN's class (argmax of output
   counts), counted synaptic operations, the energy estimate
   (``models/energy.py``) and the weights' stored-form memory. The input runs
   in 5 ms packets, as in the pipeline (state rounded after each at reduced
   precision).
2. Latency vs input rate, live. The service's ``Pipeline`` with the synthetic
   DVS (64×64, real-time pacing, 5 ms packets) feeding the CNN (addresses
   scaled to 34×34), at rising input rates, without a latency budget and with
   ``latency_budget_ms = 50`` under each shedding policy. Reported: end-to-end
   core latency percentiles (ingress → output), and the shares of events
   processed, shed and dropped by the queue.

The peer is the same network without the knob (float32, unpruned, no
shedding): the tables give ratios to it. Figures go to benchmarks/figures/.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikegate.drivers import ops
from spikegate.drivers.files import read_events
from spikegate.drivers.packet import Geometry
from spikegate.drivers.synthetic import MovingDisk, SyntheticDvsSource
from spikegate.models.demo import TrackerNetwork
from spikegate.models.energy import EnergyMeter
from spikegate.models.network import load_model
from spikegate.models.precision import agreement, output_spikes, set_precision
from spikegate.models.pruning import set_sparsity
from spikegate.models.weights import bank_of
from spikegate.service.allocation import AllocationConfig
from spikegate.service.cores import ModelCore
from spikegate.service.decoding import ArgmaxDecoder
from spikegate.service.pipeline import Pipeline

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
CNN = SHARED / "models" / "nir-paper" / "cnn" / "cnn_sinabs.nir"
NMNIST = SHARED / "data" / "tonic_sample_nmnist.bin"
FIGURES = HERE / "figures"


@dataclass
class Setting:
    family: str
    label: str
    configure: Callable[[Any], Any] = lambda core: None
    transform: Callable[[np.ndarray], np.ndarray] = lambda events: events


@dataclass
class Row:
    family: str
    label: str
    events: int
    synops: int
    energy_uj: float
    dense_energy_uj: float
    agreement: float
    same_class: bool | None
    memory_bytes: int


def settings_for(geometry: Geometry, roi: tuple[int, int, int, int]) -> list[Setting]:
    def refr(period_us: int, cell: int) -> Callable[[np.ndarray], np.ndarray]:
        def run(events: np.ndarray) -> np.ndarray:
            state = ops.RefractoryState(geometry.width, geometry.height, cell)
            return ops.refractory(events, period_us, state)
        return run

    def thin(keep: float) -> Callable[[np.ndarray], np.ndarray]:
        return lambda events: ops.thin(events, keep, np.random.default_rng(0))

    out = [Setting("reference", "float32, full")]
    for p in ("float16", "int16", "int8"):
        out.append(Setting("precision", p, lambda core, p=p: set_precision(bank_of(core), p)))
    for s in (0.5, 0.7, 0.9, 0.95):
        out.append(Setting("sparsity", f"sparsity {s}", lambda core, s=s: set_sparsity(core, s)))
    out.append(Setting("precision+sparsity", "int8 + sparsity 0.7",
                       lambda core: (set_precision(bank_of(core), "int8"),
                                     set_sparsity(core, 0.7))))
    for keep in (0.5, 0.25, 0.1):
        out.append(Setting("shed: thin", f"thin keep {keep}", transform=thin(keep)))
    for period in (1_000, 5_000, 20_000):
        out.append(Setting("shed: refractory", f"refractory {period // 1000} ms",
                           transform=refr(period, 1)))
    for period in (1_000, 5_000, 20_000):
        out.append(Setting("shed: downsample", f"2×2 cells {period // 1000} ms",
                           transform=refr(period, 2)))
    out.append(Setting("roi", f"roi {list(roi)}",
                       transform=lambda events: ops.crop_roi(events, roi)))
    return out


def run_tradeoffs(name: str, fresh: Callable[[], Any], events: np.ndarray,
                  settings: list[Setting], classify: bool) -> list[Row]:
    """Each setting on a fresh copy of the network; the first is the reference."""
    rows: list[Row] = []
    ref_spikes: np.ndarray | None = None
    t0 = int(events["t"][0])
    for s in settings:
        core = fresh()
        s.configure(core)
        ev = s.transform(events)
        meter = EnergyMeter(core)
        bank = bank_of(core)
        parts = []
        # as the pipeline runs it: 5 ms packets, neuron state rounded after each call
        start = int(ev["t"][0]) // 5000 * 5000  # on the 1 ms step grid
        edges = np.searchsorted(ev["t"], np.arange(start + 5000, int(ev["t"][-1]) + 5000, 5000))
        for chunk in np.split(ev, edges):
            if len(chunk):
                result = core.step(chunk)
                if bank.state_rounded:
                    bank.round_state()
                meter.observe(result, chunk)
                parts.append(output_spikes(result))
        report = meter.report()
        spikes = np.concatenate(parts)
        if ref_spikes is None:
            ref_spikes = spikes
        same = None
        if classify:
            ref_class = np.bincount(ref_spikes["neuron"].astype(np.int64), minlength=10).argmax()
            got = np.bincount(spikes["neuron"].astype(np.int64), minlength=10)
            same = bool(got.sum() > 0 and got.argmax() == ref_class)
        rows.append(Row(s.family, s.label, len(ev), report["synops"], report["energy_uj"],
                        report["dense_energy_uj"], agreement(ref_spikes, spikes, t0),
                        same, sum(bank_of(core).memory_bytes().values())))
    print_rows(name, rows)
    return rows


def print_rows(name: str, rows: list[Row]) -> None:
    ref = rows[0]
    print(f"\n### {name}\n")
    print("| setting | events | synops | ÷ reference | energy (µJ) | dense clock-driven (µJ) "
          "| agreement | same class | weights (bytes) |")
    print("|---|---:|---:|---:|---:|---:|---:|:-:|---:|")
    for r in rows:
        cls = "—" if r.same_class is None else ("yes" if r.same_class else "no")
        print(f"| {r.label} | {r.events:,} | {r.synops:,} | {r.synops / max(ref.synops, 1):.2f} "
              f"| {r.energy_uj:.2f} | {r.dense_energy_uj:.1f} | {r.agreement:.3f} | {cls} "
              f"| {r.memory_bytes:,} |")


def cnn_tradeoffs() -> list[Row] | None:
    if not (CNN.is_file() and NMNIST.is_file()):
        print(f"(skipped the CNN: {SHARED} is not there)")
        return None
    _, events = read_events(NMNIST)
    base = load_model(CNN, "sinabs", dt_s=1e-3)

    def fresh() -> Any:
        net = copy.deepcopy(base)
        net.reset_state()
        return net

    return run_tradeoffs(f"N-MNIST CNN (cnn_sinabs.nir) on tonic_sample_nmnist.bin "
                         f"({len(events):,} events, {events['t'][-1] / 1e6:.2f} s)",
                         fresh, events, settings_for(Geometry(34, 34), (5, 5, 24, 24)), True)


def tracker_tradeoffs() -> list[Row]:
    scene = MovingDisk(64, 64, rate_ev_s=200_000)
    events = np.concatenate([scene.events(k * 10_000, (k + 1) * 10_000, k) for k in range(100)])
    base = TrackerNetwork(scene.geometry)

    def fresh() -> Any:
        return copy.deepcopy(base)

    return run_tradeoffs(f"demo tracker (9 + 9 LIF) on 1 s of the moving disk "
                         f"({len(events):,} events)", fresh, events,
                         settings_for(scene.geometry, (0, 0, 32, 64)), False)


# --- latency vs input rate ------------------------------------------------------------------


async def one_live_run(rate_ev_s: float, mode: str, duration_s: float) -> dict[str, Any]:
    scene = MovingDisk(64, 64, rate_ev_s=rate_ev_s)
    source = SyntheticDvsSource(scene, packet_us=5_000, realtime=True, duration_s=duration_s)
    net = load_model(CNN, "sinabs", dt_s=1e-3)
    core = ModelCore(net, scene.geometry, "scale")
    allocation = None
    if mode != "none":
        allocation = AllocationConfig(latency_budget_ms=50, shed_policy=mode)
    p = Pipeline("bench", source, core, ArgmaxDecoder(10), [], queue_size=64,
                 allocation=allocation)
    await p.warm_up()
    await p.start()
    while not p.source_done:
        await asyncio.sleep(0.05)
    await p.stop(drain_timeout_s=10)
    p.executor.shutdown(wait=True)
    st = p.status()
    acc = st["accounting"]
    n = max(acc["events_in"], 1)
    lat = st["core"]["latency_us"]
    return {"rate": rate_ev_s, "mode": mode, "p50_ms": (lat["p50"] or 0) / 1e3,
            "p99_ms": (lat["p99"] or 0) / 1e3, "processed": acc["processed"] / n,
            "shed": acc["shed"] / n, "dropped": acc["dropped"]["queue"] / n,
            "us_per_event": st["allocation"]["core_us_per_event"]}


def live_latency(rates: list[float], duration_s: float) -> list[dict[str, Any]] | None:
    if not CNN.is_file():
        print(f"(skipped the live runs: {CNN} is not there)")
        return None
    scene = MovingDisk(64, 64, rate_ev_s=50_000)  # compile every kernel before timing
    ModelCore(load_model(CNN, "sinabs", dt_s=1e-3), scene.geometry).step(
        scene.events(0, 100_000, 0))
    rows = []
    for rate in rates:
        for mode in ("none", "thin", "refractory", "downsample"):
            rows.append(asyncio.run(one_live_run(rate, mode, duration_s)))
    print("\n### Latency vs input rate: CNN in the live pipeline (budget 50 ms when shedding)\n")
    print("| input (kev/s) | shedding | core µs/event | latency p50 (ms) | p99 (ms) "
          "| processed | shed | dropped (queue) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['rate'] / 1e3:.0f} | {r['mode']} | {r['us_per_event']:.1f} "
              f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['processed']:.0%} "
              f"| {r['shed']:.0%} | {r['dropped']:.0%} |")
    return rows


# --- figures -------------------------------------------------------------------------------


def plot_tradeoff(rows: list[Row], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = rows[0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharey=True)
    families = dict.fromkeys(r.family for r in rows)
    for ax, what in zip(axes, ("synops", "energy"), strict=True):
        markers = iter("osD^v<>P*X")
        for family in families:
            pts = [r for r in rows if r.family == family]
            if what == "synops":
                xs = [r.synops / max(ref.synops, 1) for r in pts]
            else:
                xs = [r.energy_uj / max(ref.energy_uj, 1e-12) for r in pts]
            ax.plot(xs, [r.agreement for r in pts], marker=next(markers),
                    linestyle="-" if len(pts) > 1 else "", label=family)
        ax.set_xscale("log")
        ax.set_xlabel("synaptic operations ÷ float32 full network" if what == "synops"
                      else "energy estimate ÷ float32 full network")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("spike agreement with float32 full network")
    axes[0].set_ylim(-0.02, 1.02)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    for i, mode in enumerate(dict.fromkeys(r["mode"] for r in rows)):
        pts = [r for r in rows if r["mode"] == mode]
        label = "no budget" if mode == "none" else f"50 ms budget, {mode}"
        rates = [r["rate"] / 1e3 for r in pts]
        ax1.plot(rates, [max(r["p50_ms"], 0.01) for r in pts], marker="o", color=f"C{i}",
                 label=f"{label} (p50)")
        ax1.plot(rates, [max(r["p99_ms"], 0.01) for r in pts], marker=".", color=f"C{i}",
                 linestyle="--", alpha=0.6)
        ax2.plot([r["rate"] / 1e3 for r in pts], [r["processed"] for r in pts], marker="o",
                 label=label)
    ax1.axhline(50, color="grey", linestyle=":", label="budget")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("input rate (k events/s)")
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_yscale("log")
    ax1.set_ylabel("latency ingress → output (ms): p50 solid, p99 dashed")
    ax2.set_ylabel("share of input events processed")
    ax1.legend(fontsize=8)
    fig.suptitle("N-MNIST CNN in the live pipeline: latency with and without load shedding",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rates, shorter live runs")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    cnn = cnn_tradeoffs()
    tracker = tracker_tradeoffs()
    rates = [10e3, 300e3] if args.quick else [10e3, 30e3, 100e3, 300e3, 1e6]
    live = live_latency(rates, 0.6 if args.quick else 1.5)
    if not args.no_plots:
        FIGURES.mkdir(exist_ok=True)
        if cnn:
            plot_tradeoff(cnn, "N-MNIST CNN on a real recording: agreement vs operations",
                          FIGURES / "allocation_tradeoff_cnn.png")
        plot_tradeoff(tracker, "demo tracker on the moving disk: agreement vs operations",
                      FIGURES / "allocation_tradeoff_tracker.png")
        if live:
            plot_latency(live, FIGURES / "allocation_latency.png")
        print(f"\nfigures in {FIGURES}")
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
