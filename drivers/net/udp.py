"""UDP ingest in the SPIF / AEStream layout.

Each datagram is a run of 32-bit little-endian words. Two layouts:

- no timestamp: one word per event, bit 31 = 1, x = bits 30..16, polarity =
  bit 15, y = bits 14..0; the event's time is the datagram's arrival (µs of a
  monotonic clock, from the source's start);
- timestamp: two words per event, an address word as above but with bit 31 = 0,
  then the low 32 bits of the event's time in µs. The 32-bit wrap is unwrapped
  into int64 by taking each step as the signed 32-bit difference to the last
  time seen, so the first event's time is its low word.

``layout="auto"`` chooses per datagram from bit 31 of its first word.

A datagram can be longer than its events (AEStream sends a full buffer at the
end of a stream): decoding stops at the first invalid word — the wrong bit 31
for the layout, x or y outside the geometry, or (timestamp layout) a time that
steps backwards or jumps more than ``max_step_us`` inside the datagram — and at
trailing bytes that do not make a whole event. What is cut is a counted, logged
drop naming the datagram and byte offset; the source keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Literal

import numpy as np
from numba import njit

from ..errors import FormatError
from ..packet import EVENT_DTYPE, EventPacket, Geometry
from ..sources import SourceStats

logger = logging.getLogger(__name__)

Layout = Literal["auto", "no_timestamp", "timestamp"]
_LAYOUT_CODES = {"auto": 0, "no_timestamp": 1, "timestamp": 2}

SPIF_MAX_COORD = 1 << 15
"""x and y are 15-bit fields."""

MAX_DATAGRAM_BYTES = 65_535
"""Largest UDP payload read."""

DEFAULT_MAX_STEP_US = 10_000_000
"""Largest forward time step between two events of one datagram (timestamp layout)."""

# state slots of the timestamp unwrapper
_S_LAST_T, _S_LAST_LOW, _S_HAVE_T = 0, 1, 2


@njit(cache=True, nogil=True)
def _decode_spif(
    words, starts, lengths, layout, arrival_us, width, height, max_step_us, state,
    out_t, out_x, out_y, out_p, used_words,
):  # pragma: no cover - compiled
    n_out = 0
    for i in range(starts.shape[0]):
        start = starts[i]
        length = lengths[i]
        used_words[i] = 0
        if length == 0:
            continue
        mode = layout
        if mode == 0:
            mode = 1 if (words[start] >> 31) == 1 else 2
        if mode == 1:
            j = 0
            while j < length:
                w = words[start + j]
                if (w >> 31) == 0:
                    break
                x = (w >> 16) & 0x7FFF
                y = w & 0x7FFF
                if x >= width or y >= height:
                    break
                out_t[n_out] = arrival_us[i]
                out_x[n_out] = x
                out_y[n_out] = y
                out_p[n_out] = (w >> 15) & 1
                n_out += 1
                j += 1
            used_words[i] = j
        else:
            j = 0
            first = True
            while j + 1 < length:
                w = words[start + j]
                if (w >> 31) == 1:
                    break
                x = (w >> 16) & 0x7FFF
                y = w & 0x7FFF
                if x >= width or y >= height:
                    break
                low = np.int64(words[start + j + 1])
                if state[_S_HAVE_T] == 0:
                    t = low
                else:
                    step = (low - state[_S_LAST_LOW]) & 0xFFFFFFFF
                    if step >= 0x80000000:
                        step -= 0x100000000
                    if not first and (step < 0 or step > max_step_us):
                        break
                    t = state[_S_LAST_T] + step
                state[_S_LAST_T] = t
                state[_S_LAST_LOW] = low
                state[_S_HAVE_T] = 1
                first = False
                out_t[n_out] = t
                out_x[n_out] = x
                out_y[n_out] = y
                out_p[n_out] = (w >> 15) & 1
                n_out += 1
                j += 2
            used_words[i] = j
    return n_out


class SpifDecoder:
    """Stateful datagrams → events (the timestamp unwrapper carries across calls).

    ``decode`` takes a batch of datagrams at once: one kernel call per batch.
    """

    def __init__(
        self,
        layout: Layout = "auto",
        geometry: Geometry | None = None,
        max_step_us: int = DEFAULT_MAX_STEP_US,
    ) -> None:
        if layout not in _LAYOUT_CODES:
            raise ValueError(f"SPIF layout {layout!r} is not one of {', '.join(_LAYOUT_CODES)}")
        if geometry is not None and not (
            0 < geometry.width <= SPIF_MAX_COORD and 0 < geometry.height <= SPIF_MAX_COORD
        ):
            raise ValueError(f"SPIF geometry {geometry} does not fit 15-bit x and y")
        if max_step_us <= 0:
            raise ValueError(f"SPIF max_step_us must be positive, not {max_step_us}")
        self.layout = layout
        self.geometry = geometry
        self.max_step_us = int(max_step_us)
        self._state = np.zeros(3, dtype=np.int64)

    def decode(
        self, datagrams: list[bytes], arrival_us: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decode ``datagrams``; returns (events, bytes used per datagram).

        ``arrival_us`` (int64, one per datagram) times the no-timestamp layout;
        zeros when omitted. A datagram's bytes past its used count were dropped.
        """
        n = len(datagrams)
        if arrival_us is None:
            arrival_us = np.zeros(n, dtype=np.int64)
        if arrival_us.shape[0] != n:
            raise ValueError(f"SPIF decode: {n} datagrams but {arrival_us.shape[0]} arrival times")
        lengths_bytes = np.fromiter((len(d) for d in datagrams), dtype=np.int64, count=n)
        lengths = lengths_bytes // 4
        if np.any(lengths * 4 != lengths_bytes):
            joined = b"".join(
                d[: len(d) - len(d) % 4] if len(d) % 4 else d for d in datagrams
            )
        else:
            joined = b"".join(datagrams)
        words = np.frombuffer(joined, dtype="<u4")
        starts = np.zeros(n, dtype=np.int64)
        if n > 1:
            np.cumsum(lengths[:-1], out=starts[1:])
        events = np.empty(words.shape[0], dtype=EVENT_DTYPE)
        used = np.zeros(n, dtype=np.int64)
        width = self.geometry.width if self.geometry else SPIF_MAX_COORD
        height = self.geometry.height if self.geometry else SPIF_MAX_COORD
        n_out = _decode_spif(
            words, starts, lengths, _LAYOUT_CODES[self.layout],
            np.ascontiguousarray(arrival_us, dtype=np.int64), width, height,
            self.max_step_us, self._state,
            events["t"], events["x"], events["y"], events["p"], used,
        )
        return events[:n_out], used * 4


def decode_spif(
    data: bytes, layout: Layout = "auto", geometry: Geometry | None = None
) -> tuple[np.ndarray, int]:
    """One datagram → (events, bytes used); no-timestamp events get t = 0."""
    events, used = SpifDecoder(layout, geometry).decode([bytes(data)])
    return events, int(used[0])


def encode_spif(events: np.ndarray, timestamp: bool) -> bytes:
    """Events → SPIF words (one datagram's worth; the caller splits into datagrams)."""
    if events.dtype != EVENT_DTYPE:
        raise FormatError(f"SPIF encode: events dtype {events.dtype} is not {EVENT_DTYPE}")
    if events.shape[0] and (
        int(events["x"].max()) >= SPIF_MAX_COORD or int(events["y"].max()) >= SPIF_MAX_COORD
    ):
        raise FormatError("SPIF encode: x or y does not fit 15 bits")
    address = (
        (events["x"].astype(np.uint32) << 16)
        | ((events["p"].astype(np.uint32) & 1) << 15)
        | events["y"].astype(np.uint32)
    )
    if not timestamp:
        return (address | np.uint32(0x80000000)).astype("<u4").tobytes()
    pairs = np.empty((events.shape[0], 2), dtype="<u4")
    pairs[:, 0] = address
    pairs[:, 1] = (events["t"] & 0xFFFFFFFF).astype(np.uint32)
    return pairs.tobytes()


def split_datagrams(data: bytes, datagram_bytes: int) -> list[bytes]:
    """Cut an encoded run into datagrams of at most ``datagram_bytes``."""
    return [data[i : i + datagram_bytes] for i in range(0, len(data), datagram_bytes)]


class UdpSource:
    """Live SPIF / AEStream datagrams on a UDP port → ``EventPacket``s.

    Datagrams queue up in a bounded buffer (``max_pending_datagrams``; more
    are dropped as "overflow") and each packet decodes everything pending, up
    to ``max_datagrams_per_packet``, in one kernel call. ``recv_buffer_bytes``
    asks the kernel for a bigger socket buffer (capped by ``net.core.rmem_max``);
    what the kernel itself drops when that is full cannot be counted here.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3333,
        *,
        name: str = "udp",
        layout: Layout = "auto",
        geometry: Geometry | None = None,
        max_step_us: int = DEFAULT_MAX_STEP_US,
        max_pending_datagrams: int = 65_536,
        max_datagrams_per_packet: int = 4096,
        recv_buffer_bytes: int | None = 4 << 20,
    ) -> None:
        if max_pending_datagrams < 1 or max_datagrams_per_packet < 1:
            raise ValueError(f"{name}: datagram limits must be at least 1")
        self.host = host
        self.port = port
        self.name = name
        self.geometry = geometry or Geometry(SPIF_MAX_COORD, SPIF_MAX_COORD, 2)
        self.decoder = SpifDecoder(layout, geometry, max_step_us)
        self.stats = SourceStats()
        self.datagrams = 0
        self.max_pending_datagrams = max_pending_datagrams
        self.max_datagrams_per_packet = max_datagrams_per_packet
        self.recv_buffer_bytes = recv_buffer_bytes
        self._pending: deque[tuple[bytes, int, tuple[str, int], int]] = deque()
        self._wake = asyncio.Event()
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._t0_ns = time.monotonic_ns()
        self._seq = 0

    async def start(self) -> tuple[str, int]:
        """Bind the socket (port 0 picks a free port); returns the bound (host, port)."""
        if self._sock is None:
            self._loop = asyncio.get_running_loop()
            self._t0_ns = time.monotonic_ns()
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                if self.recv_buffer_bytes:
                    # the kernel caps this at net.core.rmem_max; a bigger buffer rides out bursts
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                        self.recv_buffer_bytes)
                sock.bind((self.host, self.port))
            except OSError:
                sock.close()
                raise
            self._sock = sock
            # our own reader drains every datagram waiting at each wake-up (asyncio's
            # datagram transport takes one per loop iteration), so packets batch
            self._loop.add_reader(sock.fileno(), self._drain_socket)
        sockname = self._sock.getsockname()
        return sockname[0], sockname[1]

    def close(self) -> None:
        """Stop: the socket closes and ``packets()`` ends after what is pending."""
        self._closed = True
        self._close_socket()
        self._wake.set()

    def _close_socket(self) -> None:
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _drain_socket(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(self.max_datagrams_per_packet):
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.stats.last_error = f"{self.name}: socket error: {exc}"
                logger.warning("%s", self.stats.last_error)
                return
            self._on_datagram(data, addr)

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams += 1
        if len(self._pending) >= self.max_pending_datagrams:
            self.stats.count_drop(
                "overflow",
                f"{self.name}: datagram {self.datagrams - 1} from {addr[0]}:{addr[1]}: byte 0: "
                f"{len(data)} bytes dropped, {len(self._pending)} datagrams already pending",
                n_bytes=len(data), logger=logger,
            )
            return
        self._pending.append((data, time.monotonic_ns(), addr, self.datagrams - 1))
        self._wake.set()

    def _decode_pending(self) -> np.ndarray:
        n = min(len(self._pending), self.max_datagrams_per_packet)
        batch = [self._pending.popleft() for _ in range(n)]
        datagrams = [d for d, _, _, _ in batch]
        arrival_us = (np.fromiter((a for _, a, _, _ in batch), np.int64, n) - self._t0_ns) // 1000
        events, used = self.decoder.decode(datagrams, arrival_us)
        lengths = np.fromiter((len(d) for d in datagrams), dtype=np.int64, count=n)
        short = np.flatnonzero(used < lengths)
        if short.shape[0]:
            i = int(short[0])
            data, _, addr, index = batch[i]
            cut = int(used[i])
            tail = data[cut : cut + 4]
            what = f"word 0x{int.from_bytes(tail, 'little'):08x}" if len(tail) == 4 else (
                f"{len(tail)} trailing byte(s)")
            self.stats.count_drop(
                "garbage",
                f"{self.name}: datagram {index} from {addr[0]}:{addr[1]}: byte {cut}: "
                f"invalid {what}; {len(data) - cut} bytes dropped",
                n=int(short.shape[0]),
                n_bytes=int((lengths[short] - used[short]).sum()),
                logger=logger,
            )
        return events

    async def packets(self) -> AsyncIterator[EventPacket]:
        """Packets of everything received, until ``close()``."""
        if not self._closed:
            await self.start()
        try:
            while True:
                if not self._pending:
                    if self._closed:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                events = self._decode_pending()
                if events.shape[0] == 0:
                    continue
                self.stats.count_packet(int(events.shape[0]))
                packet = EventPacket(
                    events, source=self.name, geometry=self.geometry, seq=self._seq
                )
                self._seq += 1
                yield packet
        finally:
            self._close_socket()


def warm_up() -> None:
    """Compile the decode kernel on a tiny input."""
    SpifDecoder("auto").decode([b"\x00\x00\x00\x80", b"\x00" * 8])
