"""Compile every numba kernel once, at start-up or image build, never on the first event.

Each entry names a module with a ``warm_up()`` function; a layer adds its own
here. numba's cache is keyed to the CPU, so a cache warmed at image build is
reused on the same CPU and rebuilt at start-up on another.
"""

from __future__ import annotations

import importlib
import time

WARM_UPS: tuple[str, ...] = (
    "spikegate.models.demo",
    "spikegate.models.kernels.conv",
    "spikegate.models.kernels.pool",
    "spikegate.models.kernels.alif",
    "spikegate.drivers.files.evt3",
    "spikegate.drivers.files.evt2",
    "spikegate.drivers.files.evt21",
    "spikegate.drivers.files.dat",
    "spikegate.drivers.files.numpy_files",
    "spikegate.drivers.files.aedat4",
    "spikegate.drivers.files.aedat2",
    "spikegate.drivers.files.aedat3",
    "spikegate.drivers.files.eventstream",
    "spikegate.drivers.files.nas",
    "spikegate.drivers.files.nmnist",
    "spikegate.drivers.net.udp",
    "spikegate.drivers.audio.cochlea",
    "spikegate.drivers.actuators.feedback",
    "spikegate.drivers.ops",
    "spikegate.models.pruning",
    "spikegate.models.network",
)


def warm_up_all() -> dict[str, float]:
    """Run every registered ``warm_up()``; return seconds per module."""
    took: dict[str, float] = {}
    for name in WARM_UPS:
        t0 = time.perf_counter()
        importlib.import_module(name).warm_up()
        took[name] = round(time.perf_counter() - t0, 3)
    return took
