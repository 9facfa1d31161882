"""Audio sources: WAV replay and live microphone capture, both turned into spikes by ``Cochlea``.

``WavSource`` reads 16-bit PCM WAV files with the standard library (several
channels are mixed down to mono) and can pace itself in real time.
``MicrophoneSource`` needs the optional ``sounddevice`` package (the ``audio``
extra) and an input device; without either it raises ``SourceUnavailableError``
with a one-line sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError
from ..packet import EventPacket, Geometry
from ..sources import SourceStats, SourceUnavailableError
from .cochlea import Cochlea, CochleaConfig

logger = logging.getLogger(__name__)

DEFAULT_BLOCK_SAMPLES = 1024

# what the standard library's wave module raises on a malformed file
_WAVE_ERRORS = (wave.Error, EOFError, RuntimeError, ValueError, OverflowError, struct.error)


def read_wav_blocks(
    path: str | Path, block_samples: int = DEFAULT_BLOCK_SAMPLES
) -> tuple[int, Iterator[np.ndarray]]:
    """(sample rate, blocks of mono float64 samples in [-1, 1)) of a 16-bit PCM WAV file."""
    if block_samples < 1:
        raise ValueError(f"block_samples must be at least 1, not {block_samples}")
    where = Path(path).name
    f = open(path, "rb")  # noqa: SIM115 - closed by blocks() or below
    try:
        try:
            wav = wave.open(f, "rb")  # noqa: SIM115 - reads from f, which blocks() closes
        except _WAVE_ERRORS as exc:
            raise FormatError(
                f"{where}: bytes 0-{f.tell()}: not a PCM WAV header ({exc!r})"
            ) from None
        width = wav.getsampwidth()
        channels = wav.getnchannels()
        rate = wav.getframerate()
        if width != 2:
            raise FormatError(
                f"{where}: byte 34: {8 * width}-bit samples; only 16-bit PCM WAV is read"
            )
        if channels < 1 or rate < 1:
            raise FormatError(f"{where}: byte 22: {channels} channels at {rate} Hz")
    except BaseException:
        f.close()
        raise

    def blocks() -> Iterator[np.ndarray]:
        with f:
            while True:
                offset = f.tell()
                try:
                    frames = wav.readframes(block_samples)
                except _WAVE_ERRORS as exc:
                    raise FormatError(
                        f"{where}: byte {offset}: unreadable sample data ({exc!r})"
                    ) from None
                usable = len(frames) - len(frames) % (2 * channels)
                if usable == 0:
                    return
                pcm = np.frombuffer(frames[:usable], dtype="<i2").reshape(-1, channels)
                mono = pcm.mean(axis=1) if channels > 1 else pcm[:, 0].astype(np.float64)
                yield mono / 32768.0

    return rate, blocks()


def write_wav(path: str | Path, samples: np.ndarray, sample_rate_hz: int) -> None:
    """Mono float samples in [-1, 1] → a 16-bit PCM WAV file (for tests and demos)."""
    pcm = np.clip(np.round(np.asarray(samples) * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(int(sample_rate_hz))
        wav.writeframes(pcm.tobytes())


class WavSource:
    """Spikes of a WAV file's cochleagram, block after block.

    ``config.sample_rate_hz`` is replaced by the file's rate. With ``realtime``
    the source sleeps so that audio time runs at ``speed`` × wall time.
    """

    def __init__(
        self,
        path: str | Path,
        config: CochleaConfig | None = None,
        *,
        name: str = "wav",
        block_samples: int = DEFAULT_BLOCK_SAMPLES,
        realtime: bool = False,
        speed: float = 1.0,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"{name}: speed must be positive, not {speed}")
        self.path = Path(path)
        self.config = config or CochleaConfig()
        self.name = name
        self.block_samples = block_samples
        self.realtime = realtime
        self.speed = speed
        self.stats = SourceStats()
        self.cochlea: Cochlea | None = None

    @property
    def geometry(self) -> Geometry:
        return self.config.geometry

    async def packets(self) -> AsyncIterator[EventPacket]:
        rate, blocks = read_wav_blocks(self.path, self.block_samples)
        cochlea = Cochlea(replace(self.config, sample_rate_hz=rate))
        self.cochlea = cochlea
        loop = asyncio.get_running_loop()
        start_s = loop.time()
        seq = 0
        while True:
            try:
                block = next(blocks, None)
            except FormatError as exc:  # a damaged tail: what came before stands
                self.stats.count_drop("unreadable", str(exc), logger=logger)
                return
            if block is None:
                return
            events = await asyncio.to_thread(cochlea.process, block)
            if self.realtime:
                due_s = start_s + cochlea.samples_seen / rate / self.speed
                delay_s = due_s - loop.time()
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
            if events.shape[0] == 0:
                continue
            self.stats.count_packet(int(events.shape[0]))
            yield EventPacket(events, source=self.name, geometry=cochlea.geometry, seq=seq)
            seq += 1


def _import_sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError:
        raise SourceUnavailableError(
            "microphone: the optional 'sounddevice' package is not installed "
            "(pip install 'spikegate[audio]')"
        ) from None
    except OSError as exc:  # the package is there but the PortAudio library is not
        raise SourceUnavailableError(
            f"microphone: the PortAudio library is missing ({exc})"
        ) from None
    return sounddevice


class MicrophoneSource:
    """Spikes of live audio from an input device (``sounddevice``), one packet per block.

    Audio blocks wait in a bounded queue (``max_pending_blocks``); when the
    consumer falls behind, new blocks are dropped and counted ("overflow"),
    and the cochlea's clock still advances by their length.
    """

    def __init__(
        self,
        config: CochleaConfig | None = None,
        *,
        name: str = "microphone",
        device: int | str | None = None,
        block_samples: int = DEFAULT_BLOCK_SAMPLES,
        max_pending_blocks: int = 64,
    ) -> None:
        self.config = config or CochleaConfig()
        self.name = name
        self.device = device
        self.block_samples = block_samples
        self.max_pending_blocks = max_pending_blocks
        self.stats = SourceStats()
        self._stream: Any = None
        self._queue: asyncio.Queue[np.ndarray] | None = None
        self._closed = False

    @property
    def geometry(self) -> Geometry:
        return self.config.geometry

    def open_stream(self, callback: Any) -> Any:
        """Open the input stream, or raise ``SourceUnavailableError`` saying why not."""
        sd = _import_sounddevice()
        try:
            stream = sd.InputStream(
                samplerate=self.config.sample_rate_hz,
                blocksize=self.block_samples,
                device=self.device,
                channels=1,
                dtype="float32",
                callback=callback,
            )
        except Exception as exc:  # PortAudioError, ValueError: no such device, bad rate
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SourceUnavailableError(
                f"{self.name}: no usable audio input device "
                f"(device={self.device!r}, {self.config.sample_rate_hz} Hz): {message}"
            ) from None
        return stream

    def close(self) -> None:
        self._closed = True
        if self._stream is not None:
            self._stream.stop()
        if self._queue is not None:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(np.zeros(0))  # wake packets()

    async def packets(self) -> AsyncIterator[EventPacket]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[np.ndarray] = asyncio.Queue(self.max_pending_blocks)
        self._queue = queue
        cochlea = Cochlea(self.config)
        skipped = [0]  # samples dropped since the last processed block

        def put(block: np.ndarray) -> None:
            try:
                queue.put_nowait(block)
            except asyncio.QueueFull:
                skipped[0] += block.shape[0]
                self.stats.count_drop(
                    "overflow",
                    f"{self.name}: audio block of {block.shape[0]} samples dropped, "
                    f"consumer behind",
                    logger=logger,
                )

        def callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            if status:
                self.stats.last_error = f"{self.name}: {status}"
            loop.call_soon_threadsafe(put, indata[:, 0].astype(np.float64))

        self._stream = self.open_stream(callback)
        self._stream.start()
        seq = 0
        try:
            while not self._closed:
                block = await queue.get()
                if self._closed:
                    break
                cochlea.samples_seen += skipped[0]  # the clock counts dropped audio too
                skipped[0] = 0
                events = await asyncio.to_thread(cochlea.process, block)
                if events.shape[0] == 0:
                    continue
                self.stats.count_packet(int(events.shape[0]))
                yield EventPacket(events, source=self.name, geometry=cochlea.geometry, seq=seq)
                seq += 1
        finally:
            stream, self._stream = self._stream, None
            stream.close()
