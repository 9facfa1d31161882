"""End to end: synthetic DVS → queue → tracker SNN → hub → websocket client.

Two measurements, one run:

1. Latency: the demo source paced in real time at several event rates, one
   websocket subscriber on loopback; latency = client receive time − packet
   ingress time (same host, same monotonic clock). p50 / p99 / max.
2. Throughput: the same network on the same events, as fast as possible,
   against the peer a research script would use: a clock-driven numpy
   simulation of the same LIF population at dt = 1 ms (events binned into
   frames, a dense matrix product per step). Ratio = our events/s ÷ theirs.

Run: ``.venv/bin/python benchmarks/bench_e2e.py [--seconds S]``
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
import numpy as np
from aiohttp import web

from spikegate.drivers.packet import Geometry
from spikegate.drivers.synthetic import MovingDisk
from spikegate.models.demo import TrackerNetwork
from spikegate.service.app import GATEWAY, init
from spikegate.service.config import DemoSourceConfig, PipelineConfig, Settings


async def measure_latency(rate_ev_s: float, seconds: float) -> dict[str, float]:
    source = DemoSourceConfig(rate_ev_s=rate_ev_s, packet_us=1_000, realtime=True)
    settings = Settings(pipelines=[PipelineConfig(source=source, queue_size=256)])
    app = init(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    await app[GATEWAY].wait_ready()
    latencies: list[float] = []
    events = 0
    url = f"http://127.0.0.1:{port}/ws/outputs?pipeline=demo&format=json"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = await ws.receive_json(timeout=5)
            latencies.append((time.monotonic_ns() - msg["ingress_ns"]) / 1000.0)
            events += msg["events_in"]
    status = app[GATEWAY].status()["pipelines"][0]
    await runner.cleanup()
    lat = np.array(latencies[len(latencies) // 10:])  # skip the first tenth (start-up)
    return {
        "rate_ev_s": rate_ev_s,
        "events_per_s": events / seconds,
        "p50_us": float(np.percentile(lat, 50)),
        "p99_us": float(np.percentile(lat, 99)),
        "max_us": float(lat.max()),
        "drops": float(sum(status["drops"].values())),
    }


def clock_driven_tracker(net: TrackerNetwork, events: np.ndarray, dt_us: int = 1000) -> int:
    """The research-script way: bin to 1 ms frames, dense product, LIF update per step."""
    width = net.geometry.width
    steps = int(events["t"][-1] // dt_us) + 1
    addr = events["y"].astype(np.int64) * width + events["x"]
    step = events["t"] // dt_us
    decay = np.exp(-dt_us / net.tau_us)
    v = np.zeros(net.output_size)
    spikes = 0
    n_in = net.w.shape[0]
    bounds = np.searchsorted(step, np.arange(steps + 1))
    for k in range(steps):
        frame = np.bincount(addr[bounds[k]:bounds[k + 1]], minlength=n_in).astype(np.float64)
        v = v * decay + frame @ net.w
        fired = v > net.v_th
        spikes += int(fired.sum())
        v[fired] = 0.0
    return spikes


def measure_throughput(seconds_of_events: float = 2.0) -> dict[str, float]:
    scene = MovingDisk(rate_ev_s=1_000_000)
    events = scene.events(0, int(seconds_of_events * 1e6), 0)
    net = TrackerNetwork(Geometry(scene.width, scene.height))
    net.warm_up()
    t0 = time.perf_counter()
    for chunk in np.array_split(events, max(1, len(events) // 4096)):
        net.step(chunk)
    ours = time.perf_counter() - t0
    peer = TrackerNetwork(Geometry(scene.width, scene.height))
    t0 = time.perf_counter()
    clock_driven_tracker(peer, events)
    theirs = time.perf_counter() - t0
    return {"events": len(events), "ours_ev_s": len(events) / ours,
            "numpy_clock_ev_s": len(events) / theirs, "ratio": theirs / ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    print("ingress → websocket client latency (demo source paced in real time, 1 client)")
    print(f"{'input ev/s':>12} {'through ev/s':>13} {'p50 µs':>8} {'p99 µs':>8} "
          f"{'max µs':>8} {'drops':>6}")
    with runner:
        for rate in (100_000, 1_000_000):
            r = runner.run(measure_latency(rate, args.seconds))
            print(f"{r['rate_ev_s']:>12,.0f} {r['events_per_s']:>13,.0f} {r['p50_us']:>8.0f} "
                  f"{r['p99_us']:>8.0f} {r['max_us']:>8.0f} {r['drops']:>6.0f}")
    t = measure_throughput()
    print()
    print("core throughput, tracker network (64×64 DVS → 18 LIF), as fast as possible")
    print(f"{'events':>10} {'spikegate ev/s':>15} {'numpy clock 1 ms ev/s':>22} {'ratio':>6}")
    print(f"{t['events']:>10,} {t['ours_ev_s']:>15,.0f} {t['numpy_clock_ev_s']:>22,.0f} "
          f"{t['ratio']:>6.1f}")


if __name__ == "__main__":
    main()
