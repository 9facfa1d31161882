"""Read and write a format's files in memory (the helpers the format tests share)."""

from __future__ import annotations

import io

import numpy as np

from spikegate.drivers.files.base import FileHeader, Format, concat_events, iter_event_chunks
from spikegate.drivers.packet import Geometry


def read_bytes(fmt: Format, data: bytes, chunk_bytes: int = 1 << 22
               ) -> tuple[FileHeader, np.ndarray]:
    """The header and all events of an in-memory file, read ``chunk_bytes`` at a time."""
    header, chunks = iter_event_chunks(io.BytesIO(data), fmt, f"mem.{fmt.name}", chunk_bytes)
    return header, concat_events(chunks)


def decode_bytes(fmt: Format, data: bytes, chunk_bytes: int = 1 << 22) -> np.ndarray:
    """All events of an in-memory file."""
    return read_bytes(fmt, data, chunk_bytes)[1]


def write_bytes(fmt: Format, events: np.ndarray, geometry: Geometry | None = None) -> bytes:
    """``events`` written by the format's writer, in one call."""
    out = io.BytesIO()
    writer = fmt.writer(out, geometry)
    assert writer is not None, f"{fmt.name} has no writer"
    writer.write(events)
    writer.close()
    return out.getvalue()


def rows(events: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Events as ``(t, x, y, p)`` tuples, for readable comparisons."""
    return [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in events]
