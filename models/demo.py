"""The embedded demo network: a spiking tracker built at start-up, no training.

Input: a DVS of ``width × height`` (both polarities). Output: ``n_x`` LIF
neurons tuned to horizontal positions and ``n_y`` to vertical ones, each with a
Gaussian receptive field over its axis. Whatever pixel fires, only the
``n_x + n_y`` neurons fed by it are touched (all of them here, with weights
that fall off with distance); the leak since each neuron's last update is
applied lazily, ``v ← v·exp(−Δt/τ)``, then the weight is added and the
threshold checked. A population read-out of the output spikes gives where the
object is, which the service turns into steering commands.

ODE per neuron (continuous time, exact between events)::

    τ dv/dt = −v + τ Σ w_i δ(t − t_i),   spike and v ← 0 when v > v_th
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from spikegate.drivers.packet import EVENT_DTYPE, SPIKE_DTYPE, Geometry


@njit(cache=True, nogil=True)
def _lif_dense_step(
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    width: int,
    height: int,
    w: np.ndarray,
    v: np.ndarray,
    t_last: np.ndarray,
    tau_us: float,
    v_th: float,
    out_t: np.ndarray,
    out_neuron: np.ndarray,
    start: int,
) -> tuple[int, int, int]:
    """Feed events ``start..`` (time, x, y; input address y·width + x) to dense LIF
    outputs; events outside ``width × height`` are skipped.

    Returns (spikes written, events done, events skipped): it stops early, before
    an event whose spikes might not fit in the output buffers, and the caller
    goes on with fresh buffers. Every event reaches every output here, so all
    neurons share one last-update time (``t_last[0]``): one ``exp`` per event.
    """
    n_out = v.shape[0]
    cap = out_t.shape[0]
    k = 0
    skipped = 0
    last = t_last[0]
    for e in range(start, t.shape[0]):
        if k + n_out > cap:
            t_last[0] = last
            return k, e, skipped
        xe = np.int64(x[e])
        ye = np.int64(y[e])
        if xe >= width or ye >= height:
            skipped += 1
            continue
        te = t[e]
        if te > last:
            decay = np.exp(-(te - last) / tau_us)
            for j in range(n_out):
                v[j] *= decay
            last = te
        row = ye * width + xe
        for j in range(n_out):
            vj = v[j] + w[row, j]
            if vj > v_th:
                vj = 0.0
                out_t[k] = te
                out_neuron[k] = j
                k += 1
            v[j] = vj
    t_last[0] = last
    return k, t.shape[0], skipped


@dataclass(slots=True)
class StepResult:
    spikes: np.ndarray  # SPIKE_DTYPE
    synops: int
    neuron_updates: int

    @property
    def synops_total(self) -> int:
        return self.synops


class TrackerNetwork:
    """Position-tuned LIF populations over a DVS; ``step(events)`` runs them event by event."""

    def __init__(
        self,
        geometry: Geometry,
        n_x: int = 9,
        n_y: int = 9,
        tau_ms: float = 20.0,
        v_th: float = 1.0,
        sigma_fraction: float = 0.08,
        gain: float = 0.005,
    ) -> None:
        self.geometry = geometry
        self.n_x, self.n_y = n_x, n_y
        self.tau_us = tau_ms * 1000.0
        self.v_th = v_th
        width, height = geometry.width, geometry.height
        self.centres_x = np.linspace(0, width - 1, n_x)
        self.centres_y = np.linspace(0, height - 1, n_y)
        gx = np.exp(-0.5 * ((np.arange(width)[:, None] - self.centres_x) /
                            (sigma_fraction * width)) ** 2)
        gy = np.exp(-0.5 * ((np.arange(height)[:, None] - self.centres_y) /
                            (sigma_fraction * height)) ** 2)
        # input address = (y * width + x); both polarities feed the same weights
        w = np.zeros((height * width, n_x + n_y), dtype=np.float64)
        w[:, :n_x] = np.tile(gx, (height, 1))
        w[:, n_x:] = np.repeat(gy, width, axis=0)
        self.w = gain * w
        self.reset_state()

    @property
    def output_size(self) -> int:
        return self.n_x + self.n_y

    def reset_state(self) -> None:
        self.v = np.zeros(self.output_size)
        self.t_last = np.zeros(1, dtype=np.int64)  # shared: every event reaches every output

    def step(self, events: np.ndarray) -> StepResult:
        """Run a packet's events in time order; return output spikes and operation counts."""
        if events.dtype != EVENT_DTYPE:
            raise ValueError(f"tracker: events dtype {events.dtype} is not {EVENT_DTYPE}")
        width, height = self.geometry.width, self.geometry.height
        t, x, y = events["t"], events["x"], events["y"]
        cap = max(4 * self.output_size, events.shape[0] // 4)
        parts = []
        done = 0
        outside = 0
        while True:
            out_t = np.empty(cap, dtype=np.int64)
            out_n = np.empty(cap, dtype=np.int64)
            k, done, skipped = _lif_dense_step(t, x, y, width, height, self.w, self.v,
                                               self.t_last, self.tau_us, self.v_th, out_t,
                                               out_n, done)
            outside += skipped
            part = np.empty(k, dtype=SPIKE_DTYPE)
            part["t"] = out_t[:k]
            part["neuron"] = out_n[:k]
            parts.append(part)
            if done == t.shape[0]:
                break
        spikes = parts[0] if len(parts) == 1 else np.concatenate(parts)
        ops = (int(events.shape[0]) - outside) * self.output_size
        return StepResult(spikes, synops=ops, neuron_updates=ops)

    def decode(self, counts: np.ndarray) -> tuple[float, float] | None:
        """Object position in [-1, 1]² from spike counts per output neuron (None: no spikes)."""
        if counts.shape[0] != self.output_size:
            raise ValueError(f"tracker decode: {counts.shape[0]} counts for "
                             f"{self.output_size} output neurons")
        cx, cy = counts[: self.n_x], counts[self.n_x:]
        if cx.sum() == 0 or cy.sum() == 0:
            return None
        x = float(cx @ self.centres_x / cx.sum())
        y = float(cy @ self.centres_y / cy.sum())
        half_w = (self.geometry.width - 1) / 2
        half_h = (self.geometry.height - 1) / 2
        return (x - half_w) / half_w, (y - half_h) / half_h

    def warm_up(self) -> None:
        """Compile the kernel now (start-up), not on the first event."""
        events = np.zeros(2, dtype=EVENT_DTYPE)
        events["t"] = [0, 1]
        saved = (self.v.copy(), self.t_last.copy())
        self.step(events)
        self.v, self.t_last = saved


def warm_up() -> None:
    """Compile the demo tracker's kernel."""
    TrackerNetwork(Geometry(8, 8), n_x=2, n_y=2).warm_up()
