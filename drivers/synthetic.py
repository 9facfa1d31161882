"""A synthetic DVS: a disk moving through a fixed tour of directions.

The embedded demo's sensor. It needs no hardware and no files, and it is
deterministic: the same seed and rate give the same events. The disk's edge
makes the events: points on the leading half of the edge are ON (it brightens
what it enters), the trailing half OFF; a small fraction of uniform noise is
added, as a real sensor has.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from .packet import EVENT_DTYPE, EventPacket, Geometry

# The tour, in fractions of the sensor: right, down, left, up, then both diagonals.
_TOUR = np.array(
    [
        [0.2, 0.5], [0.8, 0.5], [0.8, 0.8], [0.2, 0.8], [0.2, 0.2],
        [0.8, 0.2], [0.2, 0.8], [0.5, 0.5], [0.8, 0.8], [0.2, 0.2], [0.2, 0.5],
    ]
)


@dataclass(frozen=True)
class MovingDisk:
    """The scene: geometry, disk radius (px), speed (px/s) and the event rate."""

    width: int = 64
    height: int = 64
    radius_px: float = 6.0
    speed_px_s: float = 40.0
    rate_ev_s: float = 200_000.0
    noise_fraction: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.width < 8 or self.height < 8:
            raise ValueError(f"synthetic sensor: {self.width}x{self.height} is below 8x8")
        if self.rate_ev_s <= 0 or self.speed_px_s <= 0 or self.radius_px <= 0:
            raise ValueError("synthetic sensor: rate, speed and radius must be positive")
        if not 0.0 <= self.noise_fraction < 1.0:
            raise ValueError("synthetic sensor: noise_fraction must be in [0, 1)")
        points = _TOUR * np.array([self.width - 1, self.height - 1])
        seg = np.diff(points, axis=0)
        seg_len = np.hypot(seg[:, 0], seg[:, 1])
        ends = np.cumsum(seg_len)
        # the tour, precomputed once: start point, direction and velocity per segment
        object.__setattr__(self, "_starts", points[:-1])
        object.__setattr__(self, "_unit", seg / seg_len[:, None])
        object.__setattr__(self, "_ends", ends)
        object.__setattr__(self, "_begins", ends - seg_len)

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.width, self.height, 2)

    def position(self, t_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Disk centre and velocity (px, px/s) at times ``t_us`` (the tour repeats)."""
        ends: np.ndarray = self._ends  # type: ignore[attr-defined]
        dist = (np.asarray(t_us, dtype=np.float64) * (1e-6 * self.speed_px_s)) % ends[-1]
        i = np.minimum(np.searchsorted(ends, dist, side="right"), ends.shape[0] - 1)
        unit = self._unit[i]  # type: ignore[attr-defined]
        centre = self._starts[i] + (dist - self._begins[i])[:, None] * unit  # type: ignore[attr-defined]
        return centre, unit * self.speed_px_s

    def events(self, t0_us: int, t1_us: int, rng: np.random.Generator | int) -> np.ndarray:
        """The events in ``[t0_us, t1_us)``, drawn with ``rng`` (an int seeds a new one)."""
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng((self.seed, rng))
        n = rng.poisson(self.rate_ev_s * (t1_us - t0_us) * 1e-6)
        t = np.sort(rng.integers(t0_us, max(t1_us, t0_us + 1), n))
        centre, velocity = self.position(t)
        angle = rng.uniform(0.0, 2.0 * np.pi, n)
        normal = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        edge = centre + self.radius_px * normal
        out = np.empty(n, dtype=EVENT_DTYPE)
        out["t"] = t
        out["x"] = np.clip(np.rint(edge[:, 0]), 0, self.width - 1)
        out["y"] = np.clip(np.rint(edge[:, 1]), 0, self.height - 1)
        out["p"] = (np.einsum("ij,ij->i", normal, velocity) > 0).astype(np.uint8)
        noise = rng.random(n) < self.noise_fraction
        k = int(noise.sum())
        out["x"][noise] = rng.integers(0, self.width, k)
        out["y"][noise] = rng.integers(0, self.height, k)
        out["p"][noise] = rng.integers(0, 2, k)
        return out


class SyntheticDvsSource:
    """A live source of the moving-disk scene: one packet per ``packet_us`` of sensor time.

    ``realtime`` paces packets to the wall clock; otherwise they come as fast
    as the consumer takes them. ``duration_s`` bounds the stream (None: forever).
    """

    def __init__(
        self,
        scene: MovingDisk,
        name: str = "demo",
        packet_us: int = 5_000,
        realtime: bool = True,
        duration_s: float | None = None,
    ) -> None:
        if packet_us <= 0:
            raise ValueError(f"{name}: packet_us must be positive, not {packet_us}")
        self.scene = scene
        self.name = name
        self.packet_us = packet_us
        self.realtime = realtime
        self.duration_s = duration_s

    @property
    def geometry(self) -> Geometry:
        return self.scene.geometry

    async def packets(self) -> AsyncIterator[EventPacket]:
        start = time.monotonic()
        rng = np.random.default_rng(self.scene.seed)
        end_us = None if self.duration_s is None else int(self.duration_s * 1e6)
        seq = 0
        while end_us is None or seq * self.packet_us < end_us:
            t0 = seq * self.packet_us
            t1 = t0 + self.packet_us
            # always yield: a source running behind its clock must not starve the loop
            delay = start + t1 * 1e-6 - time.monotonic() if self.realtime else 0.0
            await asyncio.sleep(max(delay, 0.0))
            events = self.scene.events(t0, t1, rng)
            yield EventPacket(events, source=self.name, geometry=self.geometry, seq=seq)
            seq += 1
