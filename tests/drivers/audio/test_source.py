"""WAV replay and the microphone's clear failure without a device."""

from __future__ import annotations

import asyncio
import os
import sys
import types
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.audio.cochlea import Cochlea, CochleaConfig
from spikegate.drivers.audio.source import (
    MicrophoneSource,
    WavSource,
    read_wav_blocks,
    write_wav,
)
from spikegate.drivers.errors import FormatError
from spikegate.drivers.sources import SourceUnavailableError

FS = 16_000


def tone(f_hz: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * f_hz * np.arange(int(seconds * FS)) / FS)


async def test_wav_source_equals_the_cochlea_on_the_same_samples(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    write_wav(path, tone(1000.0, 0.25), FS)
    config = CochleaConfig(n_channels=32)
    source = WavSource(path, config, name="mic-replay", block_samples=500)
    packets = [p async for p in source.packets()]
    assert [p.seq for p in packets] == list(range(len(packets)))
    assert all(p.source == "mic-replay" and p.geometry == (32, 1, 1) for p in packets)
    events = np.concatenate([p.events for p in packets])
    _, blocks = read_wav_blocks(path)
    expected = Cochlea(config).process(np.concatenate(list(blocks)))
    np.testing.assert_array_equal(events, expected)
    assert source.stats.events == len(events) and source.stats.packets == len(packets)


async def test_wav_source_realtime_pacing_keeps_events(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    write_wav(path, tone(2000.0, 0.05), FS)
    fast = [p.events async for p in WavSource(path, block_samples=200).packets()]
    paced = [
        p.events async for p in WavSource(path, block_samples=200, realtime=True,
                                          speed=50.0).packets()
    ]
    np.testing.assert_array_equal(np.concatenate(fast), np.concatenate(paced))


def test_stereo_is_mixed_down(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left = (tone(500.0, 0.01) * 32767).astype("<i2")
    pcm = np.stack([left, np.zeros_like(left)], axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(FS)
        w.writeframes(pcm.tobytes())
    rate, blocks = read_wav_blocks(path, 64)
    mono = np.concatenate(list(blocks))
    assert rate == FS
    np.testing.assert_allclose(mono, left / 2 / 32768.0)


def test_non_16_bit_and_non_wav_are_format_errors(tmp_path: Path) -> None:
    path = tmp_path / "eight.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(FS)
        w.writeframes(bytes(100))
    with pytest.raises(FormatError, match=r"eight\.wav: .*8-bit"):
        read_wav_blocks(path)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    with pytest.raises(FormatError, match=r"junk\.wav: bytes 0-8: not a PCM WAV header"):
        read_wav_blocks(junk)


async def test_microphone_without_sounddevice_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as if absent
    source = MicrophoneSource()
    with pytest.raises(SourceUnavailableError, match="'sounddevice' package is not installed") as e:
        async for _ in source.packets():
            pass
    assert "\n" not in str(e.value)


async def test_microphone_without_a_device_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("sounddevice")

    class PortAudioError(Exception):
        pass

    def input_stream(**kwargs: object) -> None:
        raise PortAudioError("Error querying device -1\nmore detail")

    fake.InputStream = input_stream  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    with pytest.raises(SourceUnavailableError, match="no usable audio input device") as e:
        async for _ in MicrophoneSource(name="mic").packets():
            pass
    assert str(e.value).startswith("mic: ") and "\n" not in str(e.value)


async def test_microphone_on_a_real_machine_fails_cleanly_or_works() -> None:
    """Whatever this machine has (no package, no PortAudio, no device): one clear line."""
    source = MicrophoneSource()
    try:
        stream = source.open_stream(lambda *a: None)
    except SourceUnavailableError as exc:
        assert "\n" not in str(exc)
    else:  # a machine with a microphone
        stream.close()


async def test_microphone_with_a_fake_device_yields_spikes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = types.ModuleType("sounddevice")
    signal = tone(1000.0, 0.2).astype(np.float32)

    class Stream:
        def __init__(self, callback: object, blocksize: int, **kwargs: object) -> None:
            self.callback = callback
            self.blocksize = blocksize

        def start(self) -> None:
            for i in range(0, len(signal), self.blocksize):
                block = signal[i : i + self.blocksize, None]
                self.callback(block, len(block), None, None)  # type: ignore[operator]

        def stop(self) -> None:
            pass

        def close(self) -> None:
            pass

    fake.InputStream = Stream  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    config = CochleaConfig(n_channels=16)
    source = MicrophoneSource(config, block_samples=400)
    got = []

    async def collect() -> None:
        async for packet in source.packets():
            got.append(packet.events)
            if sum(len(e) for e in got) >= 50:
                source.close()

    await asyncio.wait_for(collect(), 20)
    expected = Cochlea(config).process(signal.astype(np.float64))
    events = np.concatenate(got)
    np.testing.assert_array_equal(events, expected[: len(events)])


def test_sources_declare_geometry_before_starting(tmp_path: Path) -> None:
    config = CochleaConfig(n_channels=40)
    assert WavSource(tmp_path / "later.wav", config).geometry == (40, 1, 1)
    assert MicrophoneSource(config).geometry == (40, 1, 1)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 200), st.integers(0, 255))
def test_truncated_corrupted_or_random_wav_only_raises_format_error(
    noise: bytes, cut: int, flip: int
) -> None:
    import io

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(FS)
        w.writeframes((tone(440.0, 0.005) * 32767).astype("<i2").tobytes())
    data = bytearray(buf.getvalue()[: 44 + cut])
    if flip < len(data):
        data[flip] ^= 0xFF
    for candidate in (bytes(data), noise, bytes(data) + noise):
        path = Path(f"/tmp/spikegate-wav-fuzz-{os.getpid()}.wav")
        path.write_bytes(candidate)
        try:
            _, blocks = read_wav_blocks(path, 16)
            for block in blocks:
                assert block.ndim == 1 and np.abs(block).max(initial=0) <= 1.0
        except FormatError:
            pass
        finally:
            path.unlink()


async def test_wav_source_with_a_damaged_tail_keeps_what_came_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tail.wav"
    write_wav(path, tone(1000.0, 0.1), FS)
    real_readframes = wave.Wave_read.readframes
    calls = [0]

    def failing_readframes(self: wave.Wave_read, n: int) -> bytes:
        calls[0] += 1
        if calls[0] > 2:
            raise wave.Error("damaged")
        return real_readframes(self, n)

    monkeypatch.setattr(wave.Wave_read, "readframes", failing_readframes)
    source = WavSource(path, CochleaConfig(n_channels=8), block_samples=400)
    packets = [p async for p in source.packets()]
    assert source.stats.dropped == {"unreadable": 1}
    assert "tail.wav: byte " in source.stats.last_error
    assert sum(len(p) for p in packets) == source.stats.events
