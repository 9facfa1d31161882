"""Live sources: UDP (SPIF) ingest over loopback, and cochlea throughput.

    .venv/bin/python benchmarks/bench_live.py [--datagrams 20000] [--audio-s 3]

UDP: a sender process pushes pre-built SPIF datagrams (no-timestamp layout,
128 events = 512 bytes each, as AEStream sends them; and 1024-event ones) at
full speed to a ``UdpSource`` bound on 127.0.0.1:0; we count what arrives as
``EventPacket``s. Received events/s is the figure; the loss column is what the
kernel dropped because the Python side fell behind. The decode-only row runs
``SpifDecoder`` on the same datagrams without sockets (the ceiling). Both
asyncio's default loop and uvloop are measured.

Cochlea: audio seconds processed per wall second (16 kHz noise + tones) at 64
and 700 channels (the Spiking Heidelberg Digits' count), for the fast
(square-root) compression and the general ``pow`` path.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket
import time

import numpy as np

from spikegate.drivers.audio.cochlea import Cochlea, CochleaConfig
from spikegate.drivers.net.udp import SpifDecoder, UdpSource, encode_spif, split_datagrams
from spikegate.drivers.packet import make_events

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
    uvloop = None


def send_datagrams(host: str, port: int, datagrams: list[bytes]) -> None:
    """The sender: a separate process, so it does not share the receiver's GIL."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, (host, port))


def build_datagrams(n_datagrams: int, events_per_datagram: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    n = events_per_datagram * min(n_datagrams, 64)
    events = make_events(np.zeros(n), rng.integers(0, 640, n), rng.integers(0, 480, n),
                         rng.integers(0, 2, n))
    distinct = split_datagrams(encode_spif(events, timestamp=False), 4 * events_per_datagram)
    return [distinct[i % len(distinct)] for i in range(n_datagrams)]


async def udp_ingest(datagrams: list[bytes], events_per_datagram: int) -> tuple[float, float]:
    """(received events/s, fraction lost) for one run."""
    source = UdpSource(port=0, name="bench")
    host, port = await source.start()
    sender = multiprocessing.get_context("spawn").Process(
        target=send_datagrams, args=(host, port, datagrams)
    )

    expected = len(datagrams) * events_per_datagram
    got = 0
    t_first = t_last = 0.0
    loop = asyncio.get_running_loop()

    async def consume() -> None:
        nonlocal got, t_first, t_last
        async for packet in source.packets():
            if got == 0:
                t_first = time.perf_counter()
            got += len(packet)
            t_last = time.perf_counter()
            if got >= expected:
                return

    async def stop_when_quiet() -> None:
        await loop.run_in_executor(None, sender.join)
        last = -1
        while got != last:  # the sender is done: stop once nothing more arrives
            last = got
            await asyncio.sleep(0.2)
        source.close()

    sender.start()
    await asyncio.gather(consume(), stop_when_quiet())
    elapsed = max(t_last - t_first, 1e-9)
    return got / elapsed, 1.0 - got / expected


def decode_only(datagrams: list[bytes], repeat: int = 3) -> float:
    decoder = SpifDecoder("auto")
    arrival = np.zeros(len(datagrams), dtype=np.int64)
    decoder.decode(datagrams[:4], arrival[:4])
    best = 1e9
    n = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i in range(0, len(datagrams), 4096):
            events, _ = decoder.decode(datagrams[i : i + 4096], arrival[i : i + 4096])
            n = len(events)
        best = min(best, time.perf_counter() - t0)
    del n
    total = sum(len(d) for d in datagrams) // 4
    return total / best


def cochlea_speed(n_channels: int, exponent: float, audio_s: float) -> float:
    fs = 16_000
    rng = np.random.default_rng(0)
    t = np.arange(int(audio_s * fs)) / fs
    signal = 0.1 * rng.normal(size=t.shape[0]) + 0.3 * np.sin(2 * np.pi * 440 * t)
    cochlea = Cochlea(CochleaConfig(n_channels=n_channels, compression_exponent=exponent))
    cochlea.process(signal[:256])
    best = 1e9
    for _ in range(2):
        cochlea.reset()
        t0 = time.perf_counter()
        for i in range(0, signal.shape[0], 1024):  # live-sized blocks
            cochlea.process(signal[i : i + 1024])
        best = min(best, time.perf_counter() - t0)
    return audio_s / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datagrams", type=int, default=20_000)
    parser.add_argument("--audio-s", type=float, default=3.0)
    args = parser.parse_args()

    rows: list[tuple[str, str, str]] = []
    for per in (128, 1024):
        datagrams = build_datagrams(args.datagrams if per == 128 else args.datagrams // 8, per)
        ceiling = decode_only(datagrams)
        rows.append((f"SPIF decode only, {per} ev/datagram", f"{ceiling / 1e6:8.1f} M ev/s", "-"))
        loops = [("asyncio", asyncio.new_event_loop)]
        if uvloop is not None:
            loops.append(("uvloop", uvloop.new_event_loop))
        for loop_name, factory in loops:
            loop = factory()
            try:
                rate, lost = loop.run_until_complete(udp_ingest(datagrams, per))
            finally:
                loop.close()
            rows.append((f"UDP ingest {loop_name}, {per} ev/datagram",
                         f"{rate / 1e6:8.2f} M ev/s", f"{100 * lost:5.1f} % lost"))
    for n_channels in (64, 700):
        for exponent in (0.5, 0.3):
            speed = cochlea_speed(n_channels, exponent, args.audio_s)
            rows.append((f"cochlea {n_channels} ch, exponent {exponent}",
                         f"{speed:8.1f} × realtime", "16 kHz"))

    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {'throughput':>20}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>20}  {note}")


if __name__ == "__main__":
    main()
