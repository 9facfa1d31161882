"""File-level tools: summarise a file and convert between formats, streaming chunk by chunk.

Both keep memory bounded by one chunk, whatever the file size.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FormatError
from . import detect, formats, get_format, open_events
from .base import Format, describe

TOOL_CHUNK_BYTES = 1 << 20
"""Bytes per read step for the tools (events of one chunk are the peak memory)."""


@dataclass(slots=True)
class EventSummary:
    """Running figures over event chunks (O(1) memory)."""

    count: int = 0
    t_first_us: int | None = None
    t_last_us: int | None = None
    t_min_us: int | None = None
    t_max_us: int | None = None
    x_min: int | None = None
    x_max: int | None = None
    y_min: int | None = None
    y_max: int | None = None
    n_on: int = 0
    n_off: int = 0
    monotonic: bool = True

    def add(self, events: np.ndarray) -> None:
        """Fold one chunk in."""
        if len(events) == 0:
            return
        t = events["t"]
        if self.t_last_us is not None and int(t[0]) < self.t_last_us:
            self.monotonic = False
        if self.monotonic and len(t) > 1 and bool(np.any(t[1:] < t[:-1])):
            self.monotonic = False
        if self.t_first_us is None:
            self.t_first_us = int(t[0])
        self.t_last_us = int(t[-1])
        self.t_min_us = _fold(min, self.t_min_us, int(t.min()))
        self.t_max_us = _fold(max, self.t_max_us, int(t.max()))
        for name in ("x", "y"):
            column = events[name]
            setattr(self, f"{name}_min", _fold(min, getattr(self, f"{name}_min"),
                                               int(column.min())))
            setattr(self, f"{name}_max", _fold(max, getattr(self, f"{name}_max"),
                                               int(column.max())))
        n_on = int(np.count_nonzero(events["p"] == 1))
        self.n_on += n_on
        self.n_off += int(np.count_nonzero(events["p"] == 0))
        self.count += len(events)


def _fold(pick: Any, current: int | None, value: int) -> int:
    return value if current is None else int(pick(current, value))


def inspect_file(
    path: str | Path, format: str | None = None, chunk_bytes: int = TOOL_CHUNK_BYTES
) -> dict[str, Any]:
    """Format, geometry, event count, first/last t (µs), x/y ranges, ON/OFF counts of a file.

    Streams the file: memory stays bounded by one chunk whatever its size.
    """
    fmt = get_format(format) if format else detect(path)
    summary = EventSummary()
    with open(path, "rb") as f:
        header, chunks = open_events(f, describe(path), fmt, chunk_bytes)
        for events in chunks:
            summary.add(events)
            del events  # let the chunk go before the next one is decoded
    geometry = header.geometry
    return {
        "path": str(path),
        "format": fmt.name,
        "label": getattr(fmt, "label", fmt.name),
        "size_bytes": os.path.getsize(path),
        "geometry": None if geometry is None else {
            "width": geometry.width, "height": geometry.height,
            "polarities": geometry.polarities},
        "count": summary.count,
        "t_first_us": summary.t_first_us,
        "t_last_us": summary.t_last_us,
        "t_min_us": summary.t_min_us,
        "t_max_us": summary.t_max_us,
        "monotonic": summary.monotonic,
        "x_min": summary.x_min,
        "x_max": summary.x_max,
        "y_min": summary.y_min,
        "y_max": summary.y_max,
        "n_on": summary.n_on,
        "n_off": summary.n_off,
    }


def writable_formats() -> dict[str, Format]:
    """Registered formats that have a writer (probed once on an in-memory file)."""
    return {name: formats()[name] for name in _writable_names()}


@functools.cache
def _writable_names() -> tuple[str, ...]:
    names = []
    for name, fmt in formats().items():
        with contextlib.suppress(FormatError, OSError, TypeError, ValueError):
            writer = fmt.writer(io.BytesIO(), None)
            if writer is not None:
                writer.close()
                names.append(name)
    return tuple(names)


def output_format(dst: str | Path, format: str | None = None) -> Format:
    """The format to write ``dst`` in: ``format`` if given, else by the extension."""
    writable = writable_formats()
    if format:
        fmt = get_format(format)
        if fmt.name not in writable:
            raise FormatError(f"format {fmt.name!r} is read-only; writable: "
                              f"{', '.join(sorted(writable))}")
        return fmt
    suffix = Path(dst).suffix.lower()
    for fmt in writable.values():
        if suffix in fmt.extensions:
            return fmt
    raise FormatError(f"{describe(dst)}: no writable format has the extension "
                      f"{suffix or 'none'!r}; pass a format (writable: "
                      f"{', '.join(sorted(writable))})")


def convert_file(
    src: str | Path,
    dst: str | Path,
    format: str | None = None,
    input_format: str | None = None,
    chunk_bytes: int = TOOL_CHUNK_BYTES,
) -> dict[str, Any]:
    """Stream ``src`` (any readable format) into ``dst`` (``format``, or by extension).

    The source's geometry goes into the output header where the format has one.
    A failed conversion removes the partial output. Returns a short summary.
    """
    src_fmt = get_format(input_format) if input_format else detect(src)
    dst_fmt = output_format(dst, format)
    if Path(src).resolve() == Path(dst).resolve():
        raise FormatError(f"{describe(dst)}: output is the input file")
    count = 0
    writer = None
    try:
        with open(src, "rb") as f_in, open(dst, "wb") as f_out:
            header, chunks = open_events(f_in, describe(src), src_fmt, chunk_bytes)
            writer = dst_fmt.writer(f_out, header.geometry)
            if writer is None:  # checked by output_format; a format may still refuse
                raise FormatError(f"format {dst_fmt.name!r} is read-only")
            for events in chunks:
                writer.write(events)
                count += len(events)
                del events  # let the chunk go before the next one is decoded
            done, writer = writer, None
            done.close()
    except BaseException:
        if writer is not None:  # release what it holds (a spool file); the output goes anyway
            with contextlib.suppress(Exception):
                writer.close()
        with contextlib.suppress(OSError):
            os.unlink(dst)
        raise
    return {"src": str(src), "dst": str(dst), "input_format": src_fmt.name,
            "output_format": dst_fmt.name, "count": count}
