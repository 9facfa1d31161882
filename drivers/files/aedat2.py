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
from numba import njit

from ..errors import FormatError
from ..packet import EVENT_DTYPE, Geometry
from .base import FileHeader

MAGIC = b"#!AER-DAT"
MAX_HEADER_BYTES = 16 << 20

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


@njit(cache=True, nogil=True)
def _decode_records(buf, addr_bytes, davis, width, height, last_t, wraps, out):
    """Big-endian (address, u32 t) records → DVS events in ``out`` (records).

    Returns (n_out, bad record index or -1, last raw t, wraps). APS/IMU (bit
    31), external-input (bit 10, DAVIS) and special (bit 15, DVS128) records
    are skipped; a 32-bit time wrap is a step back of more than 2**31 µs.
    """
    size = addr_bytes + 4
    n = buf.shape[0] // size
    k = 0
    for i in range(n):
        j = i * size
        a = np.int64(0)
        for b in range(addr_bytes):
            a = (a << 8) | np.int64(buf[j + b])
        j += addr_bytes
        t = (np.int64(buf[j]) << 24) | (np.int64(buf[j + 1]) << 16) | (
            np.int64(buf[j + 2]) << 8) | np.int64(buf[j + 3])
        if davis:
            if a & 0x80000400:
                continue
            x = width - 1 - ((a >> 12) & 0x3FF)
            y = (a >> 22) & 0x1FF
            p = (a >> 11) & 1
        else:
            if a & 0x80008000:
                continue
            x = 127 - ((a >> 1) & 0x7F)
            y = (a >> 8) & 0x7F
            p = 1 - (a & 1)
        if x < 0 or y >= height:
            return k, i, last_t, wraps
        if last_t >= 0 and last_t - t > 0x80000000:
            wraps += 1
        last_t = t
        o = out[k]
        o["t"] = t + (wraps << 32)
        o["x"] = x
        o["y"] = y
        o["p"] = p
        k += 1
    return k, -1, last_t, wraps


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
        data = np.frombuffer(buf, dtype=np.uint8, count=n * size)
        out = np.empty(n, dtype=EVENT_DTYPE)
        k, bad, self._last_t, self._wraps = _decode_records(
            data, size - 4, self._layout == "davis", self._geometry.width,
            self._geometry.height, self._last_t, self._wraps, out,
        )
        if bad >= 0:
            address = int.from_bytes(data[bad * size:bad * size + size - 4].tobytes(), "big")
            raise FormatError(
                f"{self._where}: byte {offset + bad * size}: event address 0x{address:08x} "
                f"lies outside the {self._geometry.width}×{self._geometry.height} sensor"
            )
        return out[:k], n * size


class Aedat2Format:
    """jAER AEDAT 1.0 / 2.0, detected by the ``#!AER-DAT1``/``2`` line."""

    name = "aedat2"
    label = "AEDAT 1.0/2.0 (jAER)"
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
    """Compile the record kernel (both layouts) on a tiny input."""
    out = np.empty(1, dtype=EVENT_DTYPE)
    for davis in (True, False):
        _decode_records(np.zeros(8, np.uint8), 4, davis, 346, 260, -1, 0, out)
