"""The cochlea filterbank: tuning, silence, block-size invariance, a naive reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.audio.cochlea import (
    Cochlea,
    CochleaConfig,
    design_bandpass,
    erb_space_hz,
    warm_up,
)
from spikegate.drivers.packet import EVENT_DTYPE

FS = 16_000


def tone(f_hz: float, seconds: float, amplitude: float = 0.5, fs: int = FS) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * f_hz * np.arange(int(seconds * fs)) / fs)


def naive_cochlea(samples: np.ndarray, config: CochleaConfig) -> np.ndarray:
    """Slow obvious reference: sample by sample, channel by channel, plain Python."""
    fs = config.sample_rate_hz
    centre = erb_space_hz(config.f_min_hz, min(config.f_max_hz, 0.45 * fs), config.n_channels)
    b0, a1, a2 = design_bandpass(centre, fs, config.q_scale)
    z = np.zeros((config.n_channels, config.n_stages, 2))
    v = np.zeros(config.n_channels)
    decay = math.exp(-1.0 / (config.tau_mem_s * fs))
    rows = []
    for i, s in enumerate(samples):
        for k in range(config.n_channels):
            y = s
            for j in range(config.n_stages):
                out = b0[k] * y + z[k, j, 0]
                z[k, j, 0] = z[k, j, 1] - a1[k] * out
                z[k, j, 1] = -b0[k] * y - a2[k] * out
                y = out
            c = max(y, 0.0) ** config.compression_exponent
            v[k] = v[k] * decay + config.drive_hz / fs * c
            if v[k] >= config.threshold:
                v[k] -= config.threshold
                rows.append(((i * 1_000_000) // fs, k))
    events = np.zeros(len(rows), dtype=EVENT_DTYPE)
    if rows:
        events["t"], events["x"] = zip(*rows, strict=True)
    events["p"] = 1
    return events


@pytest.mark.parametrize("n_channels", [64, 700])
def test_a_1khz_tone_excites_the_channels_near_1khz(n_channels: int) -> None:
    cochlea = Cochlea(CochleaConfig(n_channels=n_channels))
    events = cochlea.process(tone(1000.0, 0.3))
    counts = np.bincount(events["x"], minlength=n_channels)
    assert abs(cochlea.centre_hz[counts.argmax()] - 1000.0) < 100.0
    near = (cochlea.centre_hz > 800.0) & (cochlea.centre_hz < 1250.0)
    assert counts[near].sum() >= 0.9 * counts.sum()
    assert events.dtype == EVENT_DTYPE and (events["y"] == 0).all() and (events["p"] == 1).all()
    assert (np.diff(events["t"]) >= 0).all()


@pytest.mark.parametrize("f_hz", [300.0, 3000.0])
def test_the_peak_channel_follows_the_tone(f_hz: float) -> None:
    cochlea = Cochlea(CochleaConfig(n_channels=64))
    counts = np.bincount(cochlea.process(tone(f_hz, 0.3))["x"], minlength=64)
    peak = cochlea.centre_hz[counts.argmax()]
    assert abs(peak - f_hz) < 0.15 * f_hz


def test_silence_and_quiet_give_no_spikes() -> None:
    cochlea = Cochlea(CochleaConfig(n_channels=32))
    assert len(cochlea.process(np.zeros(FS))) == 0
    assert len(cochlea.process(tone(1000.0, 0.2, amplitude=1e-4))) == 0


def test_louder_means_more_spikes() -> None:
    counts = [len(Cochlea().process(tone(1000.0, 0.2, a))) for a in (0.02, 0.1, 0.5)]
    assert counts[0] < counts[1] < counts[2]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=5), st.sampled_from([0.5, 0.3]))
def test_block_size_invariance(cuts: list[int], exponent: float) -> None:
    rng = np.random.default_rng(1)
    signal = tone(800.0, 0.1) + rng.normal(0, 0.05, int(0.1 * FS))
    config = CochleaConfig(n_channels=16, compression_exponent=exponent)
    whole = Cochlea(config).process(signal)
    cochlea = Cochlea(config)
    bounds = np.cumsum([0, *cuts])
    bounds = np.unique(np.clip(bounds, 0, len(signal)))
    parts = [cochlea.process(signal[a:b]) for a, b in itertools.pairwise(bounds)]
    parts.append(cochlea.process(signal[bounds[-1] :]))
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert cochlea.samples_seen == len(signal)


def test_two_halves_equal_the_whole_across_the_kernel_buffer_limit() -> None:
    config = CochleaConfig(n_channels=700)
    signal = tone(1000.0, 0.5)  # 8000 samples × 700 channels > one kernel call
    whole = Cochlea(config).process(signal)
    cochlea = Cochlea(config)
    halves = [cochlea.process(signal[:3001]), cochlea.process(signal[3001:])]
    np.testing.assert_array_equal(np.concatenate(halves), whole)


@pytest.mark.parametrize("exponent", [0.5, 0.3, 1.0])
def test_kernel_equals_naive_reference(exponent: float) -> None:
    config = CochleaConfig(n_channels=6, f_min_hz=400.0, f_max_hz=3000.0,
                           compression_exponent=exponent)
    signal = tone(1000.0, 0.03) + tone(2500.0, 0.03, 0.3)
    np.testing.assert_array_equal(Cochlea(config).process(signal), naive_cochlea(signal, config))


def test_t0_and_times_are_sample_times() -> None:
    cochlea = Cochlea(CochleaConfig(n_channels=8, sample_rate_hz=48_000), t0_us=5_000_000)
    events = cochlea.process(tone(1000.0, 0.05, fs=48_000))
    assert len(events) and (events["t"] >= 5_000_000).all()
    rel = events["t"] - 5_000_000
    index = -((-rel * 48_000) // 1_000_000)  # the sample each time belongs to
    np.testing.assert_array_equal(index * 1_000_000 // 48_000, rel)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_channels": 0}, "n_channels"),
        ({"sample_rate_hz": 100}, "sample_rate_hz"),
        ({"f_min_hz": 9000.0}, "f_min_hz"),
        ({"tau_mem_s": 0.0}, "tau_mem_s"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Cochlea(CochleaConfig(**kwargs))  # type: ignore[arg-type]


def test_bad_samples_are_clear_errors() -> None:
    cochlea = Cochlea()
    with pytest.raises(ValueError, match="1-D"):
        cochlea.process(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        cochlea.process(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="floating"):
        cochlea.process(np.zeros(4, dtype=np.int16))


def test_warm_up_runs() -> None:
    warm_up()
