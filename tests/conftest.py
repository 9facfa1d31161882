"""Shared fixtures: the packet factory and the path to ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from spikegate.drivers.packet import EventPacket, Geometry, make_events

DEFAULT_GEOMETRY = Geometry(32, 32)
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def make_packet(
    n: int = 10,
    *,
    source: str = "test",
    geometry: Geometry = DEFAULT_GEOMETRY,
    seq: int = 0,
    t0_us: int = 0,
    dt_us: int = 10,
    seed: int = 0,
) -> EventPacket:
    """A packet of ``n`` random events in time order."""
    rng = np.random.default_rng(seed)
    events = make_events(
        t0_us + dt_us * np.arange(n),
        rng.integers(0, geometry.width, n),
        rng.integers(0, geometry.height, n),
        rng.integers(0, 2, n),
    )
    return EventPacket(events, source=source, geometry=geometry, seq=seq)


@pytest.fixture
def shared() -> Path:
    """../shared, or a clean skip when it is absent (a user's machine).

    Under CI (``REQUIRE_SHARED_DATA=1``) its absence is a failure.
    """
    if not (SHARED / "data").is_dir():
        if os.environ.get("REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"{SHARED} is missing but REQUIRE_SHARED_DATA=1")
        pytest.skip(f"real data not available: {SHARED} is absent")
    return SHARED


async def eventually(condition, timeout_s: float = 10.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    """Await ``condition()`` becoming true, yielding to the loop; fail after ``timeout_s``."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.005)
