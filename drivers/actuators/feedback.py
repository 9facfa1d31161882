"""Actuator feedback channels: encoder values in, send-on-delta spikes out.

A feedback sample is ``(t_us, channel, value)`` (``SAMPLE_DTYPE``). Per channel
the encoder keeps a reference level, set by the channel's first sample. When a
value has risen by ``k · delta`` (``k ≥ 1``) above the reference, the channel
emits ``k`` ON spikes (``p = 1``) at the sample's time and the reference moves
up by ``k · delta``; a fall emits OFF spikes (``p = 0``) likewise. Spikes are
events with ``x = channel``, ``y = 0``.

Samples are taken in time order: a sample older than the last one seen, a
channel outside ``n_channels`` or a value that is not finite is dropped and
counted; a jump beyond ``max_spikes_per_sample`` deltas emits that many spikes
(the reference still moves the whole way) and is counted as clipped.

Sources of samples: any async iterator of samples (one tuple, a list of
tuples, or a ``SAMPLE_DTYPE`` array per item), and ``UdpJsonFeed``, which
reads JSON datagrams.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any

import numpy as np
from numba import njit

from ..packet import EVENT_DTYPE, EventPacket, Geometry
from ..sources import SourceStats

logger = logging.getLogger(__name__)

SAMPLE_DTYPE = np.dtype([("t", "<i8"), ("channel", "<u2"), ("value", "<f8")])
"""A feedback sample: time (µs), channel, encoder value."""

# counters the kernel reports
_C_BACKWARDS, _C_CHANNEL, _C_NOT_FINITE, _C_CLIPPED, _N_COUNTERS = 0, 1, 2, 3, 4
_COUNTER_NAMES = ("time went backwards", "channel out of range", "value not finite")


@njit(cache=True, nogil=True)
def _send_on_delta(
    t, channel, value, delta, ref, have_ref, last_t, max_spikes, write,
    out_t, out_x, out_p, counters,
):  # pragma: no cover - compiled
    """Encode samples; with ``write`` false only count (state untouched by the caller's copy)."""
    n_ch = ref.shape[0]
    n_out = 0
    for i in range(t.shape[0]):
        c = channel[i]
        v = value[i]
        if t[i] < last_t[0]:
            counters[_C_BACKWARDS] += 1
            continue
        if c >= n_ch:
            counters[_C_CHANNEL] += 1
            continue
        if not np.isfinite(v):
            counters[_C_NOT_FINITE] += 1
            continue
        last_t[0] = t[i]
        if have_ref[c] == 0:
            ref[c] = v
            have_ref[c] = 1
            continue
        d = delta[c]
        diff = v - ref[c]
        if diff >= d:
            k = np.floor(diff / d)
            polarity = 1
            ref[c] += k * d
        elif -diff >= d:
            k = np.floor(-diff / d)
            polarity = 0
            ref[c] -= k * d
        else:
            continue
        n = np.int64(k)
        if n > max_spikes:
            counters[_C_CLIPPED] += 1
            n = max_spikes
        if write:
            for _ in range(n):
                out_t[n_out] = t[i]
                out_x[n_out] = c
                out_p[n_out] = polarity
                n_out += 1
        else:
            n_out += n
    return n_out


class SendOnDelta:
    """The encoder with its per-channel reference levels: ``encode(samples)`` → events."""

    def __init__(
        self,
        n_channels: int,
        delta: float | Sequence[float] | np.ndarray,
        max_spikes_per_sample: int = 256,
    ) -> None:
        if not 1 <= n_channels <= 65_536:
            raise ValueError(f"send-on-delta: n_channels {n_channels} is not in 1..65536")
        deltas = np.broadcast_to(np.asarray(delta, dtype=np.float64), (n_channels,)).copy()
        if not (np.isfinite(deltas).all() and (deltas > 0).all()):
            raise ValueError("send-on-delta: every delta must be finite and positive")
        if max_spikes_per_sample < 1:
            raise ValueError("send-on-delta: max_spikes_per_sample must be at least 1")
        self.n_channels = n_channels
        self.delta = deltas
        self.max_spikes_per_sample = max_spikes_per_sample
        self.ref = np.zeros(n_channels, dtype=np.float64)
        self.have_ref = np.zeros(n_channels, dtype=np.uint8)
        self.last_t = np.full(1, np.iinfo(np.int64).min, dtype=np.int64)
        self.counters = np.zeros(_N_COUNTERS, dtype=np.int64)

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.n_channels, 1, 2)

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """Spikes (``EVENT_DTYPE``) of the next samples (``SAMPLE_DTYPE``, time order)."""
        if samples.dtype != SAMPLE_DTYPE:
            raise ValueError(f"send-on-delta: samples dtype {samples.dtype} is not {SAMPLE_DTYPE}")
        t = np.ascontiguousarray(samples["t"])
        ch = np.ascontiguousarray(samples["channel"])
        val = np.ascontiguousarray(samples["value"])
        empty = np.zeros(0, dtype=np.int64)
        n = _send_on_delta(
            t, ch, val, self.delta, self.ref.copy(), self.have_ref.copy(), self.last_t.copy(),
            self.max_spikes_per_sample, False, empty, empty.astype(np.uint16),
            empty.astype(np.uint8), np.zeros(_N_COUNTERS, dtype=np.int64),
        )
        events = np.empty(n, dtype=EVENT_DTYPE)
        events["y"] = 0
        _send_on_delta(
            t, ch, val, self.delta, self.ref, self.have_ref, self.last_t,
            self.max_spikes_per_sample, True, events["t"], events["x"], events["p"],
            self.counters,
        )
        return events


def as_samples(item: Any) -> np.ndarray:
    """One tuple, a list of tuples or an array → a ``SAMPLE_DTYPE`` array."""
    if isinstance(item, np.ndarray):
        if item.dtype == SAMPLE_DTYPE:
            return item
        out = np.empty(item.shape[0], dtype=SAMPLE_DTYPE)
        for name in ("t", "channel", "value"):
            out[name] = item[name]
        return out
    if isinstance(item, tuple):
        item = [item]
    return np.array([tuple(row) for row in item], dtype=SAMPLE_DTYPE)


class FeedbackSource:
    """Send-on-delta spikes of an encoder-value stream, as ``EventPacket``s.

    A reader task drains ``samples`` into a bounded buffer
    (``max_pending_items``; more is dropped as "overflow"); each packet encodes
    everything pending, so bursts become one packet, not many.
    """

    def __init__(
        self,
        samples: AsyncIterable[Any],
        n_channels: int,
        delta: float | Sequence[float] | np.ndarray,
        *,
        name: str = "feedback",
        max_spikes_per_sample: int = 256,
        max_pending_items: int = 4096,
    ) -> None:
        self.samples = samples
        self.name = name
        self.encoder = SendOnDelta(n_channels, delta, max_spikes_per_sample)
        self.stats = SourceStats()
        self.max_pending_items = max_pending_items
        self._pending: deque[np.ndarray] = deque()
        self._wake = asyncio.Event()
        self._done = False
        self._items = 0
        self._reported = np.zeros(_N_COUNTERS, dtype=np.int64)

    @property
    def geometry(self) -> Geometry:
        return self.encoder.geometry

    async def _read(self) -> None:
        try:
            async for item in self.samples:
                index = self._items
                self._items += 1
                try:
                    batch = as_samples(item)
                except (TypeError, ValueError, KeyError, OverflowError) as exc:
                    self.stats.count_drop(
                        "malformed", f"{self.name}: item {index}: not feedback samples ({exc})",
                        logger=logger,
                    )
                    continue
                if len(self._pending) >= self.max_pending_items:
                    self.stats.count_drop(
                        "overflow", f"{self.name}: item {index}: dropped, consumer behind",
                        n=max(1, batch.shape[0]), logger=logger,
                    )
                    continue
                self._pending.append(batch)
                self._wake.set()
        finally:
            self._done = True
            self._wake.set()

    def _report(self) -> None:
        counters = self.encoder.counters
        for i, reason in enumerate(_COUNTER_NAMES):
            new = int(counters[i] - self._reported[i])
            if new:
                self.stats.count_drop(
                    reason, f"{self.name}: {new} sample(s) dropped: {reason}", n=new,
                    logger=logger,
                )
        clipped = int(counters[_C_CLIPPED] - self._reported[_C_CLIPPED])
        if clipped:
            self.stats.count_drop(
                "clipped",
                f"{self.name}: {clipped} jump(s) beyond "
                f"{self.encoder.max_spikes_per_sample} deltas clipped", n=clipped,
                logger=logger,
            )
        self._reported[:] = counters

    async def packets(self) -> AsyncIterator[EventPacket]:
        reader = asyncio.ensure_future(self._read())
        seq = 0
        try:
            while True:
                if not self._pending:
                    if self._done:
                        break
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                batches = list(self._pending)
                self._pending.clear()
                samples = batches[0] if len(batches) == 1 else np.concatenate(batches)
                events = self.encoder.encode(samples)
                self._report()
                if events.shape[0] == 0:
                    continue
                self.stats.count_packet(int(events.shape[0]))
                yield EventPacket(events, source=self.name, geometry=self.encoder.geometry,
                                  seq=seq)
                seq += 1
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                exc = reader.exception()
                self.stats.last_error = f"{self.name}: sample stream failed: {exc}"


class _JsonReceiver(asyncio.DatagramProtocol):
    def __init__(self, feed: UdpJsonFeed) -> None:
        self._feed = feed

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._feed._on_datagram(data, addr)


class UdpJsonFeed:
    """Feedback samples from JSON datagrams on a UDP port.

    A datagram holds one sample ``{"t_us": 10, "channel": 0, "value": 1.5}``,
    a list of them, or columns ``{"t_us": [...], "channel": [...], "value": [...]}``.
    A datagram that is not that is a counted drop naming the byte offset.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, name: str = "feedback-udp",
        max_pending_datagrams: int = 4096,
    ) -> None:
        self.host = host
        self.port = port
        self.name = name
        self.stats = SourceStats()
        self.datagrams = 0
        self.max_pending_datagrams = max_pending_datagrams
        self._queue: asyncio.Queue[np.ndarray | None] = asyncio.Queue(max_pending_datagrams)
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> tuple[str, int]:
        """Bind (port 0 picks a free port); returns the bound (host, port)."""
        if self._transport is None:
            loop = asyncio.get_running_loop()
            self._transport, _ = await loop.create_datagram_endpoint(
                lambda: _JsonReceiver(self), local_addr=(self.host, self.port)
            )
        sockname = self._transport.get_extra_info("sockname")
        return sockname[0], sockname[1]

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self._queue.get_nowait()
            self._queue.put_nowait(None)

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        index = self.datagrams
        self.datagrams += 1
        where = f"{self.name}: datagram {index} from {addr[0]}:{addr[1]}"
        try:
            samples = parse_feedback_json(data, where)
        except ValueError as exc:
            self.stats.count_drop("malformed", str(exc), n_bytes=len(data), logger=logger)
            return
        try:
            self._queue.put_nowait(samples)
        except asyncio.QueueFull:
            self.stats.count_drop("overflow", f"{where}: byte 0: dropped, consumer behind",
                                  n_bytes=len(data), logger=logger)
            return
        self.stats.count_packet(int(samples.shape[0]))

    async def samples(self) -> AsyncIterator[np.ndarray]:
        """Sample arrays as datagrams arrive, until ``close()``."""
        await self.start()
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    return
                yield item
        finally:
            if self._transport is not None:
                self._transport.close()


def parse_feedback_json(data: bytes, where: str) -> np.ndarray:
    """One JSON datagram → ``SAMPLE_DTYPE`` samples; ``ValueError`` naming the byte offset."""
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: byte {exc.pos}: not JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where}: byte {exc.start}: not UTF-8 text") from None
    try:
        if isinstance(doc, dict) and isinstance(doc.get("t_us"), list):
            columns = (doc["t_us"], doc["channel"], doc["value"])
            if not len(columns[0]) == len(columns[1]) == len(columns[2]):
                raise ValueError("columns of different lengths")
            rows = list(zip(*columns, strict=True))
        else:
            items = doc if isinstance(doc, list) else [doc]
            rows = [(s["t_us"], s["channel"], s["value"]) for s in items]
        for row in rows:
            if not (isinstance(row[0], int) and isinstance(row[1], int)
                    and isinstance(row[2], int | float)) or isinstance(row[2], bool):
                raise ValueError(f"sample {row!r} is not (int, int, number)")
            if not 0 <= row[1] < 65_536:
                raise ValueError(f"channel {row[1]} out of range")
            if not -(2**63) <= row[0] < 2**63:
                raise ValueError(f"t_us {row[0]} out of range")
        return np.array(rows, dtype=SAMPLE_DTYPE) if rows else np.zeros(0, SAMPLE_DTYPE)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{where}: byte 0: not feedback samples ({exc})") from None


def warm_up() -> None:
    """Compile the encoder kernel on a tiny input."""
    SendOnDelta(1, 1.0).encode(np.zeros(2, dtype=SAMPLE_DTYPE))
