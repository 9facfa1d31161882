"""AEDAT 2.0 (and 1.0) from jAER: read.

The file starts with ASCII header lines that begin with ``#`` (the first is
``#!AER-DAT2.0``), then big-endian records: AEDAT 2.0 has (u32 address, u32
timestamp µs), AEDAT 1.0 has (u16 address, u32 timestamp µs). The address
layout depends on the camera, which the header names in its ``# AEChip:``
(or ``# HardwareInterface:``) line; we never guess it from the data.

- DVS128 (``DVS128``, ``Tmpdiff128``), 128×128: polarity = bit 0, ON when it
  is 0; x = 127 - bits 1..7; y = bits 8..14. Bit 15 (sync/external input) or
  bit 31 marks a special event, skipped.
- DAVIS (``Davis240*``, ``Davis346*``, ``Davis640``, ``Davis208``,
  ``Davis128``): bit 31 set is an APS (frame) or IMU sample and bit 10 set is
  an external-input event, both skipped; otherwise polarity = bit 11 (1 = ON),
  x = width - 1 - bits 12..21, y = bits 22..30.

The x mirror is jAER's own extractor convention (``sx - 1 - raw x``) for both
families, so events come out as jAER shows them: this is the format's defined
meaning of the address, not a flip added here. Timestamps are unsigned µs; a
step back of more than 2**31 µs is taken as a 32-bit wrap.
"""

from __future__ import annotations

import re
from typing import BinaryIO

import numpy as np

from ..errors import FormatError
from ..packet import EVENT_DTYPE, Geometry
from .base import FileHeader

MAGIC = b"#!AER-DAT"
MAX_HEADER_BYTES = 16 << 20
_WRAP = 1 << 32

# chip-name pattern (lower case, searched in the AEChip / HardwareInterface line)
# → (layout, width, height); more specific names first
CHIPS: tuple[tuple[str, str, int, int], ...] = (
    ("davis346", "davis", 346, 260),
    ("davis240", "davis", 240, 180),
    ("davis640", "davis", 640, 480),
    ("davis208", "davis", 208, 192),
    ("davis128", "davis", 128, 128),
    ("dvs128", "dvs128", 128, 128),
    ("tmpdiff128", "dvs128", 128, 128),
)

RECORD_DTYPES = {
    1: np.dtype([("a", ">u2"), ("t", ">u4")]),
    2: np.dtype([("a", ">u4"), ("t", ">u4")]),
}


def identify_chip(lines: list[str]) -> tuple[str, Geometry] | None:
    """(layout, geometry) from the header's AEChip / HardwareInterface lines, or None."""
    for key in ("aechip", "hardwareinterface"):
        for line in lines:
            body = line.lstrip("#").strip()
            if not body.lower().startswith(key):
                continue
            name = re.sub(r"[^a-z0-9]", "", body.split(":", 1)[-1].lower())
            for pattern, layout, width, height in CHIPS:
                if pattern in name:
                    return layout, Geometry(width, height)
    return None


def decode_davis(a: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    """DAVIS addresses → (keep mask, x, y, p); x mirrored as jAER does."""
    keep = (a & np.uint32(0x80000400)) == 0
    a = a[keep]
    raw_x = ((a >> 12) & 0x3FF).astype(np.int64)
    y = ((a >> 22) & 0x1FF).astype(np.int64)
    p = ((a >> 11) & 1).astype(np.uint8)
    return keep, width - 1 - raw_x, y, p


def decode_dvs128(a: np.ndarray) -> tuple[np.ndarray, ...]:
    """DVS128 addresses → (keep mask, x, y, p); x mirrored, ON when bit 0 is 0."""
    a = a.astype(np.uint32)
    keep = (a & np.uint32(0x80008000)) == 0
    a = a[keep]
    x = 127 - ((a >> 1) & 0x7F).astype(np.int64)
    y = ((a >> 8) & 0x7F).astype(np.int64)
    p = (1 - (a & 1)).astype(np.uint8)
    return keep, x, y, p


_TEXT_BYTES = frozenset({9, 13} | set(range(32, 127)) | set(range(128, 256)))


def read_header_lines(f: BinaryIO, start: int, where: str) -> tuple[list[str], list[int], int]:
    """The ``#`` text lines at ``start``: (lines, the start of each, where data begins).

    A line counts only when it is text (no control bytes but tab and CR), and
    reading stops after jAER's ``#End Of ASCII Header`` mark: binary records
    may begin with the byte ``#``.
    """
    lines: list[str] = []
    starts: list[int] = []
    pos = start
    while True:
        f.seek(pos)
        if f.read(1) != b"#":
            break
        f.seek(pos)
        line = f.readline(MAX_HEADER_BYTES)
        if not line.endswith(b"\n") or not _TEXT_BYTES.issuperset(line[:-1]):
            break
        starts.append(pos)
        pos += len(line)
        if pos - start > MAX_HEADER_BYTES:
            raise FormatError(f"{where}: byte {pos}: AEDAT header longer than 16 MiB")
        lines.append(line.decode("latin-1").rstrip("\r\n"))
        if "end of ascii header" in lines[-1].lower():
            break
    return lines, starts, pos


class Aedat2Decoder:
    """Whole records → DVS events; the timestamp wrap state carries across chunks."""

    def __init__(self, version: int, layout: str, geometry: Geometry, where: str) -> None:
        self._dtype = RECORD_DTYPES[version]
        self._layout = layout
        self._geometry = geometry
        self._where = where
        self._last_t = -1
        self._wraps = 0

    def decode(self, buf: memoryview, offset: int, final: bool) -> tuple[np.ndarray, int]:
        size = self._dtype.itemsize
        n = len(buf) // size
        raw = np.frombuffer(buf, dtype=self._dtype, count=n)
        if self._layout == "davis":
            keep, x, y, p = decode_davis(raw["a"], self._geometry.width, self._geometry.height)
        else:
            keep, x, y, p = decode_dvs128(raw["a"])
        t = raw["t"][keep].astype(np.int64)
        out = np.empty(t.shape[0], dtype=EVENT_DTYPE)
        if t.shape[0]:
            bad = (x < 0) | (y >= self._geometry.height)
            if bad.any():
                i = int(np.flatnonzero(keep)[int(np.argmax(bad))])
                raise FormatError(
                    f"{self._where}: byte {offset + i * size}: event address "
                    f"0x{int(raw['a'][i]):08x} lies outside the {self._geometry.width}×"
                    f"{self._geometry.height} sensor"
                )
            prev = np.empty_like(t)
            prev[0] = self._last_t
            prev[1:] = t[:-1]
            wrapped = (prev - t) > (1 << 31)
            if self._last_t < 0:
                wrapped[0] = False
            epochs = np.cumsum(wrapped) + self._wraps
            out["t"] = t + epochs * _WRAP
            out["x"] = x
            out["y"] = y
            out["p"] = p
            self._last_t = int(t[-1])
            self._wraps = int(epochs[-1])
        return out, n * size


class Aedat2Format:
    """jAER AEDAT 1.0 / 2.0, detected by the ``#!AER-DAT1``/``2`` line."""

    name = "aedat2"
    extensions: tuple[str, ...] = ()  # a headerless .aedat is NAS / AEDAT 1.0 without header

    def sniff(self, head: bytes) -> bool:
        return head.startswith((b"#!AER-DAT2.", b"#!AER-DAT1."))

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        start = f.tell()
        lines, starts, pos = read_header_lines(f, start, where)
        size = f.seek(0, 2)
        record = RECORD_DTYPES[2 if lines and lines[0].startswith("#!AER-DAT2") else 1].itemsize
        # a record whose first byte is '#' may pass for a text line: give back
        # trailing lines until the data is whole records (jAER's end mark stops this)
        while (
            len(lines) > 1 and (size - pos) % record
            and "end of ascii header" not in lines[-1].lower()
        ):
            lines.pop()
            pos = starts.pop()
        f.seek(pos)
        if not lines or not lines[0].startswith("#!AER-DAT"):
            raise FormatError(f"{where}: byte {start}: not an AEDAT 1.0/2.0 file (no #!AER-DAT)")
        version_text = lines[0][len("#!AER-DAT"):].strip()
        try:
            version = int(float(version_text))
        except ValueError:
            raise FormatError(
                f"{where}: byte {start}: bad AEDAT version {version_text!r}"
            ) from None
        if version not in RECORD_DTYPES:
            raise FormatError(f"{where}: byte {start}: AEDAT {version_text} is not 1.x or 2.x")
        chip = identify_chip(lines)
        if chip is None:
            if version == 1:
                chip = ("dvs128", Geometry(128, 128))  # AEDAT 1.0 is DVS128-era, 16-bit
            else:
                names = [ln for ln in lines if "aechip" in ln.lower()] or ["no AEChip line"]
                raise FormatError(
                    f"{where}: byte {start}: unknown camera ({names[0].strip('# ')}); "
                    f"cannot tell the DVS128 from the DAVIS address layout"
                )
        layout, geometry = chip
        if version == 1 and layout == "davis":
            raise FormatError(f"{where}: byte {start}: AEDAT 1.0 cannot hold DAVIS addresses")
        meta = {"version": version_text, "layout": layout}
        return FileHeader(self.name, pos, geometry, meta)

    def decoder(self, header: FileHeader, where: str) -> Aedat2Decoder:
        if header.geometry is None:
            raise FormatError(f"{where}: AEDAT 2.0 header without a known camera")
        version = int(float(header.meta["version"]))
        return Aedat2Decoder(version, header.meta["layout"], header.geometry, where)

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> None:
        return None


FORMAT = Aedat2Format()


def warm_up() -> None:
    """Nothing to compile: decoding is numpy only."""
