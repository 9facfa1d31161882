"""One reader loop for every file format, and the small parts each format supplies.

A format is a ``Format`` object: it recognises its header (``sniff``), parses
the header (``read_header``) and makes a ``Decoder`` that turns a run of bytes
into events. The shared loop here reads the file in fixed-size chunks, feeds
each to the decoder, and carries the bytes it did not consume (a partial
record) into the next chunk, so memory stays bounded whatever the file size.

A format whose decoder keeps no views of its input may set ``maps_file = True``:
a regular file is then read through a read-only memory map, handing the
decoder windows of at most ``MAP_WINDOW_BYTES`` without copying the bytes
(pages already consumed are dropped from the map, so memory stays bounded).

Formats register themselves in ``drivers/files/__init__.py``.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ClassVar, Protocol

import numpy as np

from ..errors import FormatError
from ..packet import EVENT_DTYPE, Geometry, as_events

CHUNK_BYTES = 1 << 22
"""Bytes read per step of the reader loop (4 MiB)."""
MAP_WINDOW_BYTES = 1 << 20
"""Largest window of a memory-mapped file per decoder call (1 MiB): small windows cost no
copies there, and each window's events stay in cache (AEDAT4 10× file: 51 → 45 ms)."""


@dataclass(slots=True)
class FileHeader:
    """What a format's header says: where events start, and the sensor if known."""

    format: str
    data_offset: int
    geometry: Geometry | None = None
    meta: dict[str, str] = field(default_factory=dict)


class Decoder(Protocol):
    """Stateful bytes → events for one file (state such as EVT 3.0's time base
    carries across calls)."""

    def decode(self, buf: memoryview, offset: int, final: bool) -> tuple[np.ndarray, int]:
        """Decode the whole records at the start of ``buf``.

        ``offset`` is the file position of ``buf[0]`` (for error messages);
        ``final`` is true when ``buf`` runs to the end of the file. Returns
        ``(events, consumed)``: an ``EVENT_DTYPE`` array and the number of bytes
        used; unconsumed bytes come back at the start of the next call. With
        ``final`` true, bytes that do not make a whole record are a
        ``FormatError`` naming the offset.
        """
        ...


class Writer(Protocol):
    """Events → a file of one format, written incrementally."""

    def write(self, events: np.ndarray) -> None: ...

    def close(self) -> None: ...


class Format(Protocol):
    """The per-format part of reading (and optionally writing) files."""

    name: str
    extensions: tuple[str, ...]

    def sniff(self, head: bytes) -> bool:
        """True when the first bytes of a file (up to 4 KiB) are this format's header."""
        ...

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        """Parse the header from the start of ``f``; ``where`` names the file in errors."""
        ...

    def decoder(self, header: FileHeader, where: str) -> Decoder: ...

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> Writer | None:
        """A writer for this format, or None when the format is read-only."""
        ...


class RecordDecoder:
    """Whole fixed-size records → events (a ``Decoder``); a subclass decodes the bytes of
    ``n`` records into ``out`` (room for ``n`` events) and returns how many it wrote."""

    record_bytes: ClassVar[int]

    def _decode_records(self, data: np.ndarray, out: np.ndarray) -> int:
        raise NotImplementedError

    def decode(self, buf: memoryview, offset: int, final: bool) -> tuple[np.ndarray, int]:
        n = len(buf) // self.record_bytes
        data = np.frombuffer(buf, dtype=np.uint8, count=n * self.record_bytes)
        out = np.empty(n, dtype=EVENT_DTYPE)
        k = self._decode_records(data, out)
        return out if k == n else out[:k], n * self.record_bytes


class RecordWriter:
    """Events → a file of bare records (a ``Writer``); a subclass checks the events fit
    (``ValueError`` otherwise) and turns them into bytes."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def _encode(self, events: np.ndarray) -> bytes:
        raise NotImplementedError

    def write(self, events: np.ndarray) -> None:
        events = as_events(np.asarray(events), "events")
        if events.shape[0] == 0:
            return
        self._f.write(self._encode(events))

    def close(self) -> None:
        self._f.flush()


def refuse_aedat_header(f: BinaryIO, where: str, what: str) -> int:
    """For a headerless format sharing an extension with AEDAT (``.aedat``, ``.bin``):
    raise when ``f`` starts with ``#!AER-DAT`` (it is not ``what``); return the start
    position, where ``f`` is left."""
    start = f.tell()
    if f.read(9).startswith(b"#!AER-DAT"):
        raise FormatError(f"{where}: byte 0: has an AEDAT header, not {what}")
    f.seek(start)
    return start


def iter_event_chunks(
    f: BinaryIO,
    fmt: Format,
    where: str,
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[FileHeader, Iterator[np.ndarray]]:
    """Parse ``f``'s header, then yield its events chunk by chunk (bounded memory)."""
    header = fmt.read_header(f, where)
    decoder = fmt.decoder(header, where)

    def chunks() -> Iterator[np.ndarray]:
        mapped = _map_file(f) if getattr(fmt, "maps_file", False) else None
        if mapped is not None:  # mapped when the first chunk is asked for, not before
            yield from _mapped_chunks(mapped, fmt, decoder, header.data_offset, where,
                                      chunk_bytes)
            return
        f.seek(header.data_offset)
        offset = header.data_offset
        carry = b""
        while True:
            data = f.read(chunk_bytes)
            final = len(data) < chunk_bytes
            if final and data:
                # a short read may not be the end on pipes: confirm
                more = f.read(chunk_bytes)
                while more:
                    data += more
                    more = f.read(chunk_bytes)
            buf = carry + data if carry else data
            if not buf:
                return
            events, used = decoder.decode(memoryview(buf), offset, final)
            if used < 0 or used > len(buf):
                raise FormatError(f"{where}: byte {offset}: decoder consumed {used} bytes")
            if len(events):
                yield events
            offset += used
            carry = bytes(buf[used:])
            del events, buf, data  # hold one chunk, not two, while the next is read
            if final:
                if carry:
                    raise FormatError(
                        f"{where}: byte {offset}: {len(carry)} trailing bytes do not make "
                        f"a whole {fmt.name} record (truncated file?)"
                    )
                return
            if used == 0 and len(carry) > 64 * chunk_bytes:
                raise FormatError(f"{where}: byte {offset}: no whole {fmt.name} record in "
                                  f"{len(carry)} bytes")

    return header, chunks()


def _map_file(f: BinaryIO) -> mmap.mmap | None:
    """A read-only map of a regular, non-empty file; None for anything else (pipes,
    in-memory files)."""
    try:
        fileno = f.fileno()
        info = os.fstat(fileno)
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
            return None
        return mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        return None


def _mapped_chunks(
    mapped: mmap.mmap, fmt: Format, decoder: Decoder, start: int, where: str, chunk_bytes: int
) -> Iterator[np.ndarray]:
    """The reader loop over a memory map, without copies: each window is the bytes the
    decoder left plus the next ``min(chunk_bytes, MAP_WINDOW_BYTES)``, or twice the bytes
    left when they are more (a long record)."""
    step = min(chunk_bytes, MAP_WINDOW_BYTES)
    size = len(mapped)
    view = memoryview(mapped)
    offset = start
    stop = start
    dropped = 0  # map pages below this are released
    try:
        while offset < size:
            stop = min(stop + max(step, stop - offset), size)
            final = stop == size
            events, used = decoder.decode(view[offset:stop], offset, final)
            if used < 0 or used > stop - offset:
                raise FormatError(f"{where}: byte {offset}: decoder consumed {used} bytes")
            if len(events):
                yield events
            del events
            offset += used
            if final:
                if offset < size:
                    raise FormatError(
                        f"{where}: byte {offset}: {size - offset} trailing bytes do not make "
                        f"a whole {fmt.name} record (truncated file?)"
                    )
                return
            if used == 0 and stop - offset > 64 * chunk_bytes:
                raise FormatError(f"{where}: byte {offset}: no whole {fmt.name} record in "
                                  f"{stop - offset} bytes")
            release = offset - offset % mmap.PAGESIZE
            if release - dropped >= chunk_bytes and hasattr(mmap, "MADV_DONTNEED"):
                mapped.madvise(mmap.MADV_DONTNEED, dropped, release - dropped)
                dropped = release
    finally:
        with contextlib.suppress(BufferError):  # a view still held elsewhere: the GC closes
            view.release()
            mapped.close()


def concat_events(chunks: Iterator[np.ndarray] | list[np.ndarray]) -> np.ndarray:
    """Join event arrays into one (an empty ``EVENT_DTYPE`` array for none)."""
    parts = list(chunks)
    if not parts:
        return np.zeros(0, dtype=EVENT_DTYPE)
    if all(p.dtype == EVENT_DTYPE and p.ndim == 1 and p.flags.c_contiguous for p in parts):
        # joined as bytes: numpy copies packed records one by one (4× slower)
        return np.concatenate([p.view(np.uint8) for p in parts]).view(EVENT_DTYPE)
    return np.concatenate(parts)


def round_trip(fmt: Format, events: np.ndarray, geometry: Geometry | None) -> np.ndarray:
    """``events`` written by ``fmt``'s writer and read back, in memory (a ``warm_up``)."""
    buf = io.BytesIO()
    writer = fmt.writer(buf, geometry)
    if writer is None:
        raise ValueError(f"{fmt.name}: the format has no writer")
    writer.write(events)
    writer.close()
    buf.seek(0)
    _, chunks = iter_event_chunks(buf, fmt, "round trip")
    return concat_events(chunks)


def describe(path: str | Path) -> str:
    """The name errors use for a file."""
    return Path(path).name
