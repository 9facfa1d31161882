"""Decoding speed of the iniVation and lab formats, against the installed peers.

AEDAT 4.0: our reader (the shared chunked loop + ``aedat4`` decoder, events
counted chunk by chunk) against the ``aedat`` package (Rust) and
dv-processing's ``MonoCameraRecording`` (C++), each iterating its own
batches, on the real sample, on a 10× file our writer makes from it (LZ4,
read back identically by both peers) and on the sample rewritten with ZSTD.
Repetitions are interleaved round-robin and the best time of each is kept,
so load from other processes hits every decoder alike; best wall and best
CPU time (``time.process_time``) are kept apart. Ratio = our events/s ÷ the
peer's.

The other formats have no installed peer: their rows give our events/s only.

Run: ``.venv/bin/python benchmarks/bench_decode_inivation.py [--rounds N] [--aedat4-only]``
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from spikegate.drivers.files import aedat2, aedat3, aedat4, eventstream, nas, nmnist
from spikegate.drivers.files.base import Format, concat_events, iter_event_chunks
from spikegate.drivers.packet import make_events

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLE = DATA / "aermanager_data_sample.aedat4"


def count_ours(path: Path, fmt: Format) -> int:
    with open(path, "rb") as f:
        _, chunks = iter_event_chunks(f, fmt, path.name)
        return sum(len(c) for c in chunks)


def count_aedat(path: Path) -> int:
    import aedat

    return sum(len(p["events"]) for p in aedat.Decoder(str(path)) if "events" in p)


def count_dv(path: Path) -> int:
    import dv_processing as dv

    reader = dv.io.MonoCameraRecording(str(path))
    n = 0
    while reader.isRunning():
        batch = reader.getNextEventBatch()
        if batch is None:
            break
        n += len(batch.numpy())
    return n


def best_times(
    runs: dict[str, Callable[[], int]], rounds: int
) -> dict[str, tuple[int, float, float]]:
    """Best wall and best CPU time of each run over interleaved rounds, with its event count."""
    best = {name: (run(), float("inf"), float("inf")) for name, run in runs.items()}
    for _ in range(rounds):
        for name, run in runs.items():
            cpu = time.process_time()
            start = time.perf_counter()
            n = run()
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu
            best[name] = (n, min(best[name][1], elapsed), min(best[name][2], cpu))
    return best


def peers_for(path: Path) -> dict[str, Callable[[], int]]:
    runs: dict[str, Callable[[], int]] = {"spikegate": lambda: count_ours(path, aedat4.FORMAT)}
    try:
        import aedat  # noqa: F401 - availability probe

        runs["aedat 2.3 (Rust)"] = lambda: count_aedat(path)
    except ImportError:
        pass
    try:
        import dv_processing  # noqa: F401 - availability probe

        runs["dv-processing (C++)"] = lambda: count_dv(path)
    except ImportError:
        pass
    return runs


def make_big_aedat4(
    out: Path, times: int, compression: aedat4.Compression = aedat4.Compression.LZ4
) -> int:
    with open(SAMPLE, "rb") as f:
        header, chunks = iter_event_chunks(f, aedat4.FORMAT, SAMPLE.name)
        events = concat_events(chunks)
    span = int(events["t"][-1] - events["t"][0]) + 1
    with open(out, "wb") as f:
        writer = aedat4.Aedat4Writer(f, header.geometry, compression, 2048)
        for i in range(times):
            shifted = events.copy()
            shifted["t"] += i * span
            writer.write(shifted)
        writer.close()
    return len(events) * times


def print_peer_table(title: str, best: dict[str, tuple[int, float, float]]) -> None:
    n_ours, wall_ours, cpu_ours = best["spikegate"]
    print(f"\n{title}")
    print("| decoder | events | best wall (ms) | best CPU (ms) | M events/s | "
          "spikegate ÷ peer (wall) | (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (n, wall, cpu) in best.items():
        if name == "spikegate":
            ratios = "— | —"
        else:
            ratios = (f"{n_ours / wall_ours / (n / wall):.2f}× | "
                      f"{n_ours / cpu_ours / (n / cpu):.2f}×")
        print(f"| {name} | {n:,} | {wall * 1e3:.1f} | {cpu * 1e3:.1f} | {n / wall / 1e6:.1f} | "
              f"{ratios} |")


def synthetic(n: int, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return make_events(np.cumsum(rng.integers(0, 20, n)), rng.integers(0, width, n),
                       rng.integers(0, height, n), rng.integers(0, 2, n))


def write_others(tmp: Path) -> dict[str, tuple[Path, Format]]:
    """Files for the formats without a peer: real samples where we have them."""
    files: dict[str, tuple[Path, Format]] = {}
    files["NAS cochlea (real, 49,864 ev)"] = (
        DATA / "pynavis_sound_mono_32ch_ONOFF_addr2b_ts02.aedat", nas.FORMAT)
    files["N-MNIST .bin (real, 4,325 ev)"] = (DATA / "tonic_sample_nmnist.bin", nmnist.FORMAT)
    events = synthetic(2_000_000, 346, 260)
    raw = np.empty(len(events), dtype=[("a", ">u4"), ("t", ">u4")])
    raw["a"] = ((events["y"].astype(np.uint32) << 22)
                | ((345 - events["x"].astype(np.uint32)) << 12)
                | (events["p"].astype(np.uint32) << 11))
    raw["t"] = events["t"]
    path = tmp / "davis.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n# AEChip: Davis346red\r\n" + raw.tobytes())
    files["AEDAT 2.0 DAVIS (synthetic, 2 M ev)"] = (path, aedat2.FORMAT)
    rows = np.zeros((len(events), 2), dtype="<u4")
    rows[:, 0] = ((events["x"].astype(np.uint32) << 17) | (events["y"].astype(np.uint32) << 2)
                  | (events["p"].astype(np.uint32) << 1) | 1)
    rows[:, 1] = events["t"]
    body = b"".join(
        np.array([1, 1], "<i2").tobytes() + np.array([8, 4, 0, m, m, m], "<i4").tobytes()
        + rows[i:i + m].tobytes()
        for i in range(0, len(events), 8192) for m in [min(8192, len(events) - i)])
    path = tmp / "davis3.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n#Source 1: DAVIS346B\r\n#!END-HEADER\r\n" + body)
    files["AEDAT 3.1 (synthetic, 2 M ev)"] = (path, aedat3.FORMAT)
    es = np.empty((len(events), 5), dtype=np.uint8)
    dt = np.diff(events["t"], prepend=0)
    es[:, 0] = (dt << 1) | events["p"]  # dt < 20 µs: no overflow bytes needed
    es[:, 1] = events["x"] & 0xFF
    es[:, 2] = events["x"] >> 8
    es[:, 3] = events["y"] & 0xFF
    es[:, 4] = events["y"] >> 8
    path = tmp / "dvs.es"
    path.write_bytes(b"Event Stream\x02\x00\x00\x01" + (346).to_bytes(2, "little")
                     + (260).to_bytes(2, "little") + es.tobytes())
    files["Event Stream DVS (synthetic, 2 M ev)"] = (path, eventstream.FORMAT)
    out = io.BytesIO()
    nas.FORMAT.writer(out, None).write(make_events(events["t"], events["x"] % 64, 0, events["p"]))
    path = tmp / "nas_big.aedat"
    path.write_bytes(out.getvalue())
    files["NAS cochlea (synthetic, 2 M ev)"] = (path, nas.FORMAT)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--aedat4-only", action="store_true", help="skip the other formats")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    if not SAMPLE.is_file():
        raise SystemExit(f"needs {SAMPLE}")
    aedat4.warm_up()
    eventstream.warm_up()
    best = best_times(peers_for(SAMPLE), args.rounds)
    print_peer_table(f"AEDAT 4.0, real sample ({SAMPLE.name}, LZ4, 323,963 events)", best)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        big = tmp / "big.aedat4"
        make_big_aedat4(big, 10)
        best = best_times(peers_for(big), max(3, args.rounds // 3))
        print_peer_table("AEDAT 4.0, 10× the sample written by our writer (LZ4, 3.2 M events)",
                         best)
        zstd = tmp / "sample_zstd.aedat4"
        make_big_aedat4(zstd, 1, aedat4.Compression.ZSTD)
        best = best_times(peers_for(zstd), args.rounds)
        print_peer_table("AEDAT 4.0, the sample rewritten by our writer with ZSTD (323,963 "
                         "events)", best)
        if args.aedat4_only:
            return
        others = write_others(tmp)
        runs = {name: (lambda p=path, f=fmt: count_ours(p, f)) for name, (path, f) in
                others.items() for fmt in [f]}
        best = best_times(runs, args.rounds)
        print("\nOther formats (no installed peer): spikegate alone")
        print("| format | events | best time (ms) | M events/s |")
        print("|---|---:|---:|---:|")
        for name, (n, seconds, _) in best.items():
            print(f"| {name} | {n:,} | {seconds * 1e3:.2f} | {n / seconds / 1e6:.1f} |")


if __name__ == "__main__":
    main()
