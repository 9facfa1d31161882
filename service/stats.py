"""Counters and latency percentiles kept by pipelines and sinks."""

from __future__ import annotations

import bisect
import time

import numpy as np

LATENCY_BUCKETS_US: tuple[float, ...] = (
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    1_000_000, 2_500_000, 10_000_000)
"""Upper bounds (µs) of the cumulative latency histogram (Prometheus buckets)."""


class LatencyWindow:
    """The last ``size`` latencies (µs) in a ring; percentiles on demand.

    Every latency is also counted for good in a histogram over
    ``LATENCY_BUCKETS_US`` (``bucket_counts``, ``sum_us``), which ``/metrics``
    exports as a Prometheus histogram.
    """

    def __init__(self, size: int = 4096) -> None:
        self._ring = np.zeros(size, dtype=np.float64)
        self._n = 0
        self.count = 0
        self.bucket_counts = [0] * (len(LATENCY_BUCKETS_US) + 1)  # the last one is +Inf
        self.sum_us = 0.0

    def add_ns(self, ingress_ns: int, now_ns: int | None = None) -> float:
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        latency_us = (now_ns - ingress_ns) / 1000.0
        self._ring[self._n % self._ring.shape[0]] = latency_us
        self._n += 1
        self.count += 1
        self.bucket_counts[bisect.bisect_left(LATENCY_BUCKETS_US, latency_us)] += 1
        self.sum_us += latency_us
        return latency_us

    def percentiles_us(self) -> dict[str, float | None]:
        filled = self._ring[: min(self._n, self._ring.shape[0])]
        if filled.size == 0:
            return {"p50": None, "p90": None, "p99": None, "max": None}
        p50, p90, p99 = np.percentile(filled, [50, 90, 99])
        return {"p50": round(float(p50), 1), "p90": round(float(p90), 1),
                "p99": round(float(p99), 1), "max": round(float(filled.max()), 1)}


class RateMeter:
    """Events per second over a sliding interval (updated as counts arrive)."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self.total = 0
        self._mark_total = 0
        self._mark_time = time.monotonic()
        self.rate = 0.0

    def add(self, n: int) -> None:
        self.total += n
        now = time.monotonic()
        elapsed = now - self._mark_time
        if elapsed >= self.interval_s:
            self.rate = (self.total - self._mark_total) / elapsed
            self._mark_total = self.total
            self._mark_time = now

    def current(self) -> float:
        if time.monotonic() - self._mark_time > 2 * self.interval_s:
            return 0.0
        return round(self.rate, 1)
