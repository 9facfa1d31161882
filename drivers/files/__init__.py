"""Event files: one module per format, each exposing ``FORMAT`` (a ``base.Format``).

A module holding several formats exposes them as ``FORMATS`` instead
(``numpy_files``: npy, npz, csv). ``detect`` picks the format by header first,
extension second; ``open_events`` runs the shared chunked reader loop of
``base``. The one exception: a format that is not a byte stream (``.npz``, a
zip archive) provides ``open_chunks(f, where, chunk_bytes)``, which
``open_events`` calls instead of the shared loop.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import FormatError
from .base import FileHeader, Format, concat_events, describe, iter_event_chunks

# Each name is a module of this package with a module-level ``FORMAT``.
# Order matters for detection: more specific headers first.
_FORMAT_MODULES: tuple[str, ...] = (
    "aedat4",
    "evt3",
    "evt2",
    "evt21",
    "dat",
    "numpy_files",
    "nmnist",
    "aedat2",
    "aedat3",
    "eventstream",
    "nas",
)

SNIFF_BYTES = 4096


def formats() -> dict[str, Format]:
    """Every registered format by name."""
    found: dict[str, Format] = {}
    for module in _FORMAT_MODULES:
        loaded = importlib.import_module(f"{__name__}.{module}")
        for fmt in getattr(loaded, "FORMATS", (loaded.FORMAT,)):
            found[fmt.name] = fmt
    return found


def detect(path: str | Path, head: bytes | None = None) -> Format:
    """The format of ``path``: by its header first, by its extension second."""
    if head is None:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    registered = formats()
    for fmt in registered.values():
        if fmt.sniff(head):
            return fmt
    suffix = "".join(Path(path).suffixes[-1:]).lower()
    for fmt in registered.values():
        if suffix in fmt.extensions:
            return fmt
    raise FormatError(
        f"{describe(path)}: byte 0: unknown event file format (no known header, "
        f"extension {suffix or 'none'!r}); known: {', '.join(sorted(registered))}"
    )


def get_format(name: str) -> Format:
    registered = formats()
    if name not in registered:
        raise FormatError(f"unknown format {name!r}; known: {', '.join(sorted(registered))}")
    return registered[name]


def open_events(
    f: BinaryIO, where: str, fmt: Format, chunk_bytes: int | None = None
) -> tuple[FileHeader, Iterator[np.ndarray]]:
    """Header and chunked events of an open binary file."""
    open_chunks = getattr(fmt, "open_chunks", None)
    if open_chunks is not None:  # not a byte stream (a zip archive): the format reads itself
        if chunk_bytes is None:
            return open_chunks(f, where)
        return open_chunks(f, where, chunk_bytes)
    if chunk_bytes is None:
        return iter_event_chunks(f, fmt, where)
    return iter_event_chunks(f, fmt, where, chunk_bytes)


def read_events(path: str | Path, format: str | None = None) -> tuple[FileHeader, np.ndarray]:
    """Read a whole file into memory (for small files and tests)."""
    fmt = get_format(format) if format else detect(path)
    with open(path, "rb") as f:
        header, chunks = open_events(f, describe(path), fmt)
        return header, concat_events(chunks)


__all__ = ["FileHeader", "Format", "FormatError", "detect", "formats", "get_format",
           "open_events", "read_events"]
