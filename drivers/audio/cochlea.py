"""A streaming, causal cochlea-like filterbank: audio samples → spikes.

Per channel ``k`` (centre frequency ``f_k``, spaced evenly on the ERB-rate
scale ``E(f) = 21.4 log10(1 + 0.00437 f)`` between ``f_min_hz`` and ``f_max_hz``):

1. band-pass: a cascade of ``n_stages`` identical 2nd-order IIR band-pass
   sections (unit peak gain at ``f_k``, quality ``Q = q_scale · f_k / ERB(f_k)``,
   ``ERB(f) = 24.7 (4.37 f / 1000 + 1)``): a gammatone-like tuning curve;
2. half-wave rectification and power-law compression: ``c = max(y, 0) ** compression_exponent``;
3. a leaky integrate-and-fire encoder per channel, one step per sample:
   ``v ← v · exp(-1 / (tau_mem_s · fs)) + drive_hz · c / fs``; when ``v ≥ threshold``
   the channel spikes and ``v ← v − threshold`` (at most one spike per sample).

Spikes are events with ``x = channel``, ``y = 0``, ``p = 1`` and ``t`` the sample's
time in µs: ``t0_us + (sample index · 10⁶) // fs``. All state (filter memories,
membranes, the sample counter) carries across calls, so processing a signal in
blocks of any size gives exactly the events of processing it whole.

Roughly: a channel at its centre frequency fires at ``drive_hz · mean(c)`` spikes/s,
and stays silent while ``drive_hz · mean(c) · tau_mem_s < threshold`` (the
defaults: a sine at a channel's centre frequency needs about −40 dBFS; a loud
1 kHz tone at −6 dBFS makes a dozen of 64 channels fire). Compression exponents
0.5, 0.25 and 1 take a fast path (square roots); others call ``pow`` and run
several times slower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..packet import EVENT_DTYPE, Geometry

MAX_EVENTS_PER_CALL = 1 << 18
"""Kernel calls see at most this many (sample, channel) pairs: bounds the spike buffers."""


def erb_hz(f_hz: np.ndarray | float) -> np.ndarray | float:
    """Equivalent rectangular bandwidth (Glasberg & Moore) at ``f_hz``."""
    return 24.7 * (4.37 * np.asarray(f_hz) / 1000.0 + 1.0)


def erb_space_hz(f_min_hz: float, f_max_hz: float, n: int) -> np.ndarray:
    """``n`` frequencies evenly spaced on the ERB-rate scale, from ``f_min_hz`` to ``f_max_hz``."""
    e_min = 21.4 * math.log10(1.0 + 0.00437 * f_min_hz)
    e_max = 21.4 * math.log10(1.0 + 0.00437 * f_max_hz)
    e = np.linspace(e_min, e_max, n)
    return (10.0 ** (e / 21.4) - 1.0) / 0.00437


@dataclass(frozen=True, slots=True)
class CochleaConfig:
    """Parameters of the filterbank and its spike encoder (see the module docstring)."""

    n_channels: int = 64
    sample_rate_hz: int = 16_000
    f_min_hz: float = 50.0
    f_max_hz: float = 8_000.0
    n_stages: int = 4
    q_scale: float = 1.0
    compression_exponent: float = 0.5
    drive_hz: float = 3_000.0
    tau_mem_s: float = 0.01
    threshold: float = 1.0

    def validate(self) -> None:
        """Raise ``ValueError`` with a sentence when a parameter is out of range."""
        if not 1 <= self.n_channels <= 65_535:
            raise ValueError(f"cochlea: n_channels {self.n_channels} is not in 1..65535")
        if not isinstance(self.sample_rate_hz, int) or self.sample_rate_hz < 1000:
            raise ValueError(
                f"cochlea: sample_rate_hz must be an integer ≥ 1000, not {self.sample_rate_hz!r}"
            )
        if not 0 < self.f_min_hz < self.f_max_hz:
            raise ValueError(f"cochlea: need 0 < f_min_hz < f_max_hz, got "
                             f"{self.f_min_hz} and {self.f_max_hz}")
        if not 1 <= self.n_stages <= 8:
            raise ValueError(f"cochlea: n_stages {self.n_stages} is not in 1..8")
        if self.q_scale <= 0 or self.compression_exponent <= 0:
            raise ValueError("cochlea: q_scale and compression_exponent must be positive")
        if self.drive_hz <= 0 or self.tau_mem_s <= 0 or self.threshold <= 0:
            raise ValueError("cochlea: drive_hz, tau_mem_s and threshold must be positive")

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.n_channels, 1, 1)


def design_bandpass(
    centre_hz: np.ndarray, sample_rate_hz: float, q_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-peak-gain 2nd-order band-pass sections: (b0, a1, a2); b1 = 0, b2 = −b0."""
    w0 = 2.0 * np.pi * centre_hz / sample_rate_hz
    q = q_scale * centre_hz / erb_hz(centre_hz)
    alpha = np.sin(w0) / (2.0 * q)
    a0 = 1.0 + alpha
    return alpha / a0, -2.0 * np.cos(w0) / a0, (1.0 - alpha) / a0


@njit(cache=True, nogil=True)
def _cochlea_run(
    samples, b0_in, a1_in, a2_in, z, v_in, decay, increment_scale, exponent, threshold,
    out_sample, out_x,
):  # pragma: no cover - compiled
    """Run every sample of ``samples`` through the bank.

    z: (n_stages, 2, n_channels) direct-form-II-transposed memories, v_in:
    membranes; both updated in place. The innermost loops run over channels,
    which are independent; they work on fresh local copies so that LLVM knows
    nothing aliases and vectorises them. Writes (sample index, channel) of each
    spike in time order; the caller sizes the buffers for one spike per sample
    and channel. Returns the count.
    """
    n_ch = v_in.shape[0]
    n_stages = z.shape[0]
    b0 = b0_in.copy()
    a1 = a1_in.copy()
    a2 = a2_in.copy()
    v = v_in.copy()
    drive = np.empty(n_ch)
    z0 = np.empty(n_stages * n_ch)
    z1 = np.empty(n_stages * n_ch)
    for j in range(n_stages):
        for k in range(n_ch):
            z0[j * n_ch + k] = z[j, 0, k]
            z1[j * n_ch + k] = z[j, 1, k]
    n_out = 0
    for i in range(samples.shape[0]):
        s = samples[i]
        for k in range(n_ch):
            drive[k] = s
        for j in range(n_stages):
            o = j * n_ch
            for k in range(n_ch):
                x = drive[k]
                out = b0[k] * x + z0[o + k]
                z0[o + k] = z1[o + k] - a1[k] * out
                z1[o + k] = -b0[k] * x - a2[k] * out
                drive[k] = out
        # half-wave rectification and compression
        if exponent == 0.5:
            for k in range(n_ch):
                drive[k] = math.sqrt(max(drive[k], 0.0))
        elif exponent == 0.25:
            for k in range(n_ch):
                drive[k] = math.sqrt(math.sqrt(max(drive[k], 0.0)))
        elif exponent == 1.0:
            for k in range(n_ch):
                drive[k] = max(drive[k], 0.0)
        else:
            for k in range(n_ch):
                d = drive[k]
                drive[k] = d**exponent if d > 0.0 else 0.0
        for k in range(n_ch):
            v[k] = v[k] * decay + increment_scale * drive[k]
        for k in range(n_ch):
            if v[k] >= threshold:
                v[k] -= threshold
                out_sample[n_out] = i
                out_x[n_out] = k
                n_out += 1
    for j in range(n_stages):
        for k in range(n_ch):
            z[j, 0, k] = z0[j * n_ch + k]
            z[j, 1, k] = z1[j * n_ch + k]
    for k in range(n_ch):
        v_in[k] = v[k]
    return n_out


class Cochlea:
    """The filterbank with its state: ``process(samples)`` → events, block after block."""

    def __init__(self, config: CochleaConfig | None = None, t0_us: int = 0) -> None:
        config = config or CochleaConfig()
        config.validate()
        self.config = config
        f_max = min(config.f_max_hz, 0.45 * config.sample_rate_hz)
        if config.f_min_hz >= f_max:
            raise ValueError(
                f"cochlea: f_min_hz {config.f_min_hz} is not below the usable maximum {f_max} Hz "
                f"at {config.sample_rate_hz} Hz"
            )
        self.centre_hz = erb_space_hz(config.f_min_hz, f_max, config.n_channels)
        self._b0, self._a1, self._a2 = design_bandpass(
            self.centre_hz, config.sample_rate_hz, config.q_scale
        )
        self._decay = math.exp(-1.0 / (config.tau_mem_s * config.sample_rate_hz))
        self._increment = config.drive_hz / config.sample_rate_hz
        self.t0_us = int(t0_us)
        self.reset()

    def reset(self) -> None:
        """Silence: zero filter memories and membranes, sample counter back to 0."""
        self._z = np.zeros((self.config.n_stages, 2, self.config.n_channels), dtype=np.float64)
        self._v = np.zeros(self.config.n_channels, dtype=np.float64)
        self.samples_seen = 0

    @property
    def geometry(self) -> Geometry:
        return self.config.geometry

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Spikes (``EVENT_DTYPE``, time order) of the next block of mono samples in [-1, 1]."""
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise ValueError(f"cochlea: samples must be 1-D (mono), not shape {samples.shape}")
        if not np.issubdtype(samples.dtype, np.floating):
            raise ValueError(f"cochlea: samples must be floating point, not {samples.dtype}")
        data = np.ascontiguousarray(samples, dtype=np.float64)
        if data.shape[0] and not np.isfinite(data).all():
            raise ValueError("cochlea: samples contain NaN or infinity")
        n_ch = self.config.n_channels
        block = max(1, MAX_EVENTS_PER_CALL // n_ch)
        out_sample = np.empty(min(MAX_EVENTS_PER_CALL, max(n_ch, data.shape[0] * n_ch)), np.int64)
        out_x = np.empty(out_sample.shape[0], dtype=np.uint16)
        parts: list[np.ndarray] = []
        fs = self.config.sample_rate_hz
        for start in range(0, data.shape[0], block):
            chunk = data[start : start + block]
            n_out = _cochlea_run(
                chunk, self._b0, self._a1, self._a2, self._z, self._v, self._decay,
                self._increment, self.config.compression_exponent, self.config.threshold,
                out_sample, out_x,
            )
            events = np.empty(n_out, dtype=EVENT_DTYPE)
            sample_index = out_sample[:n_out] + self.samples_seen
            events["t"] = self.t0_us + (sample_index * 1_000_000) // fs
            events["x"] = out_x[:n_out]
            events["y"] = 0
            events["p"] = 1
            parts.append(events)
            self.samples_seen += chunk.shape[0]
        if not parts:
            return np.zeros(0, dtype=EVENT_DTYPE)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def warm_up() -> None:
    """Compile the filterbank kernel on a tiny input."""
    Cochlea(CochleaConfig(n_channels=2)).process(np.zeros(4))
