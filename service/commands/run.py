"""``spikegate run``: run a NIR model on a recorded input, write per-step spike counts.

IN is a ``.npy`` raster of per-step spike counts shaped (T, *input_shape), or
any event file the drivers read (a structured ``.npy`` of events too). OUT
(``.npz``) holds, for each recorded node (default: the output), its counts
per step shaped (T, *node_shape) under the node's name, and the counts of
synaptic operations (``synops__<layer>``, ``synops_total``) and neuron
updates (``neuron_updates__<layer>``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...drivers.files import read_events
from ...models.network import load_model
from ...models.profiles import PROFILE_NAMES
from ...models.signal import signal_to_raster
from ..cli import UsageError

NAME = "run"
HELP = "run a NIR model on a recorded input (.npy raster or event file), write .npz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="NIR graph (.nir)")
    parser.add_argument("--input", required=True, dest="input_path",
                        help=".npy raster (T, *input_shape) or an event file")
    parser.add_argument("--profile", required=True, choices=PROFILE_NAMES,
                        help="semantics: exact, snntorch, norse or sinabs")
    parser.add_argument("--dt", type=float, dest="dt_s", help="time step in seconds")
    parser.add_argument("--reset", choices=["zero", "subtract"],
                        help="override the profile's reset rule")
    parser.add_argument("--record", nargs="+", default=None, metavar="NODE",
                        help="nodes to record (default: the output)")
    parser.add_argument("--event-shape", nargs=3, type=int, metavar=("P", "H", "W"),
                        help="how event (p, y, x) map onto the input (default: from the "
                        "input shape, or the file's sensor geometry)")
    parser.add_argument("--out", required=True, help="output .npz")


def _load_input(path: Path) -> tuple[np.ndarray, tuple[int, int, int] | None]:
    if not path.is_file():
        raise UsageError(f"{path}: no such input file")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise UsageError(f"{path}: not a readable .npy array ({exc})") from None
        return array, None
    header, events = read_events(path)
    geometry = header.geometry
    shape = None
    if geometry is not None:
        shape = (int(geometry.polarities), int(geometry.height), int(geometry.width))
    return events, shape


def run(args: argparse.Namespace) -> int:
    model = Path(args.model)
    if not model.is_file():
        raise UsageError(f"{model}: no such model file")
    data, geometry = _load_input(Path(args.input_path))
    event_shape = tuple(args.event_shape) if args.event_shape else None
    net = load_model(model, args.profile, dt_s=args.dt_s, reset=args.reset)
    if (data.dtype.names is not None and event_shape is None and geometry is not None
            and len(net.input_shape) == 1 and int(np.prod(geometry)) == net.input_size):
        event_shape = geometry
    if event_shape is not None:
        net = load_model(model, args.profile, dt_s=args.dt_s, reset=args.reset,
                         event_shape=event_shape)
    record = list(dict.fromkeys(args.record or [net.output_name]))
    for name in record:
        if name not in net.stages:
            known = ", ".join(layer.name for layer in net.graph.layers)
            raise UsageError(f"--record: no node {name!r} in {model.name} (nodes: {known})")
    net.step(np.zeros((1, *net.input_shape)))  # load the compiled kernels before timing
    net.reset_state()
    started = time.perf_counter()
    result = net.step(data, record=record)
    took = time.perf_counter() - started
    out: dict[str, Any] = {}
    for name in record:
        layer = net.graph.layer(name)
        raster = signal_to_raster(result.recorded[name], result.first_step, result.n_steps,
                                  layer.output_size)
        out[name] = raster.reshape((result.n_steps, *layer.output_shape))
    for name, count in result.synops.items():
        out[f"synops__{name}"] = np.int64(count)
    for name, count in result.neuron_updates.items():
        out[f"neuron_updates__{name}"] = np.int64(count)
    out["synops_total"] = np.int64(result.synops_total)
    out["dt_s"] = np.float64(net.profile.dt_s)
    np.savez(args.out, **out)
    sim_s = result.n_steps * net.profile.dt_s
    speed = f", ×{sim_s / took:.0f} real time" if took > 0 else ""
    n_out = len(result.events) + result.n_truncated
    print(
        f"{model.name} [{net.profile.name}, dt {net.profile.dt_s * 1e3:g} ms, "
        f"reset {net.profile.reset}]: {result.n_steps} steps, {result.n_input_events} input "
        f"spikes → {n_out} output spikes, {result.synops_total} synops, "
        f"{took * 1e3:.1f} ms{speed}; wrote {args.out}"
    )
    return 0
