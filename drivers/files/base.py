"""One reader loop for every file format, and the small parts each format supplies.

A format is a ``Format`` object: it recognises its header (``sniff``), parses
the header (``read_header``) and makes a ``Decoder`` that turns a run of bytes
into events. The shared loop here reads the file in fixed-size chunks, feeds
each to the decoder, and carries the bytes it did not consume (a partial
record) into the next chunk, so memory stays bounded whatever the file size.

Formats register themselves in ``drivers/files/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

from ..errors import FormatError
from ..packet import EVENT_DTYPE, Geometry

CHUNK_BYTES = 1 << 22
"""Bytes read per step of the reader loop (4 MiB)."""


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


def concat_events(chunks: Iterator[np.ndarray] | list[np.ndarray]) -> np.ndarray:
    """Join event arrays into one (an empty ``EVENT_DTYPE`` array for none)."""
    parts = list(chunks)
    if not parts:
        return np.zeros(0, dtype=EVENT_DTYPE)
    return np.concatenate(parts)


def describe(path: str | Path) -> str:
    """The name errors use for a file."""
    return Path(path).name
