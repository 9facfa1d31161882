"""Binary websocket frames: a fixed 40-byte little-endian header, then a packed record array.

Layout (all little-endian, no padding; ``HEADER_BYTES`` = 40)::

    offset  size  field
    0       4     magic       b"SGWF"
    4       1     version     1
    5       1     kind        1 = events (EVENT_DTYPE, 13-byte records)
                              2 = spikes (SPIKE_DTYPE, 12-byte records)
    6       2     flags       bit 0: DECIMATED (the server kept a subset of the events)
                              other bits are reserved and must be 0
    8       4     count       number of records after the header (uint32)
    12      4     missed      messages this receiver missed just before this one (uint32)
    16      8     seq         source packet / pipeline output sequence number (uint64)
    24      8     t0_us       time of the packet (µs, the sensor clock; int64)
    32      8     ingress_ns  gateway monotonic clock when the packet entered (int64; 0: unknown)
    40      ...   records     count × record size bytes, the raw little-endian array

``EVENT_DTYPE`` is (t int64 µs, x uint16, y uint16, p uint8); ``SPIKE_DTYPE`` is
(t int64 µs, neuron uint32); see ``drivers/packet.py``. A frame's length must be
exactly ``HEADER_BYTES + count × record size`` and at most ``max_bytes``.

``decode_frame`` raises ``FormatError`` naming ``where`` and the byte offset of
the first field that is wrong; it never allocates from ``count`` (the payload
is a view of the buffer unless ``copy``).
"""

from __future__ import annotations

import struct
from enum import IntEnum, IntFlag
from typing import NamedTuple

import numpy as np

from ..errors import FormatError
from ..packet import EVENT_DTYPE, SPIKE_DTYPE

MAGIC = b"SGWF"
VERSION = 1
HEADER = struct.Struct("<4sBBHIIQqq")
HEADER_BYTES = HEADER.size  # 40
MAX_FRAME_BYTES = HEADER_BYTES + EVENT_DTYPE.itemsize * (1 << 20)
"""Default size limit: about 1 M events (13 MiB)."""

OFFSET_VERSION = 4
OFFSET_KIND = 5
OFFSET_FLAGS = 6
OFFSET_COUNT = 8
OFFSET_MISSED = 12
OFFSET_SEQ = 16


class FrameKind(IntEnum):
    EVENTS = 1
    SPIKES = 2


class FrameFlag(IntFlag):
    NONE = 0
    DECIMATED = 1


KNOWN_FLAGS = int(FrameFlag.DECIMATED)

RECORD_DTYPES: dict[FrameKind, np.dtype] = {
    FrameKind.EVENTS: EVENT_DTYPE,
    FrameKind.SPIKES: SPIKE_DTYPE,
}


class Frame(NamedTuple):
    """A decoded frame: the header fields and the records (a read-only view unless copied)."""

    kind: FrameKind
    flags: FrameFlag
    seq: int
    t0_us: int
    ingress_ns: int
    missed: int
    records: np.ndarray


def kind_of(records: np.ndarray) -> FrameKind:
    """The frame kind that carries ``records`` (by dtype), or ``FormatError``."""
    for kind, dtype in RECORD_DTYPES.items():
        if records.dtype == dtype:
            return kind
    raise FormatError(
        f"frame: records dtype {records.dtype} is neither EVENT_DTYPE nor SPIKE_DTYPE")


def encode_frame(
    records: np.ndarray,
    *,
    seq: int = 0,
    t0_us: int | None = None,
    ingress_ns: int = 0,
    missed: int = 0,
    flags: int = 0,
) -> bytes:
    """Records (``EVENT_DTYPE`` or ``SPIKE_DTYPE``) → one frame; the kind follows the dtype.

    ``t0_us`` defaults to the first record's time (0 when empty).
    """
    kind = kind_of(records)
    if records.ndim != 1:
        raise FormatError(f"frame: records must be 1-D, not {records.ndim}-D")
    n = int(records.shape[0])
    if n > 0xFFFFFFFF:
        raise FormatError(f"frame: {n} records do not fit the uint32 count")
    if flags & ~KNOWN_FLAGS:
        raise FormatError(f"frame: unknown flag bits {flags & ~KNOWN_FLAGS:#x}")
    if t0_us is None:
        t0_us = int(records["t"][0]) if n else 0
    header = HEADER.pack(MAGIC, VERSION, int(kind), int(flags), n, min(int(missed), 0xFFFFFFFF),
                         int(seq) & 0xFFFFFFFFFFFFFFFF, int(t0_us), int(ingress_ns))
    return header + np.ascontiguousarray(records).tobytes()


def with_missed(frame: bytes, missed: int) -> bytes:
    """A copy of an encoded ``frame`` whose header says ``missed`` (saturating at 2³²-1)."""
    out = bytearray(frame)
    struct.pack_into("<I", out, OFFSET_MISSED, min(int(missed), 0xFFFFFFFF))
    return bytes(out)


def decode_header(buf: bytes | bytearray | memoryview, where: str = "frame",
                  max_bytes: int = MAX_FRAME_BYTES) -> tuple[FrameKind, int, int]:
    """Check the header of ``buf``: (kind, flags, count), or ``FormatError`` with the offset."""
    n_bytes = len(buf)
    if n_bytes > max_bytes:
        raise FormatError(f"{where}: byte 0: frame of {n_bytes} bytes is over the "
                          f"{max_bytes}-byte limit")
    if n_bytes < HEADER_BYTES:
        raise FormatError(f"{where}: byte {n_bytes}: frame of {n_bytes} bytes is shorter than "
                          f"the {HEADER_BYTES}-byte header")
    magic, version, kind, flags, count, _, _, _, _ = HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise FormatError(f"{where}: byte 0: magic {bytes(magic)!r} is not {MAGIC!r}")
    if version != VERSION:
        raise FormatError(f"{where}: byte {OFFSET_VERSION}: version {version} is not {VERSION}")
    if kind not in FrameKind._value2member_map_:
        raise FormatError(f"{where}: byte {OFFSET_KIND}: unknown kind {kind} "
                          f"(1 = events, 2 = spikes)")
    if flags & ~KNOWN_FLAGS:
        raise FormatError(f"{where}: byte {OFFSET_FLAGS}: unknown flag bits "
                          f"{flags & ~KNOWN_FLAGS:#x}")
    frame_kind = FrameKind(kind)
    record_bytes = RECORD_DTYPES[frame_kind].itemsize
    payload = n_bytes - HEADER_BYTES
    if count * record_bytes != payload:
        raise FormatError(
            f"{where}: byte {OFFSET_COUNT}: count {count} × {record_bytes}-byte "
            f"{frame_kind.name.lower()} records is {count * record_bytes} bytes, but "
            f"{payload} bytes follow the header")
    return frame_kind, flags, count


def decode_frame(buf: bytes | bytearray | memoryview, where: str = "frame", *,
                 max_bytes: int = MAX_FRAME_BYTES, copy: bool = False) -> Frame:
    """One frame → ``Frame``; ``FormatError`` naming ``where`` and the byte offset if bad."""
    kind, flags, count = decode_header(buf, where, max_bytes)
    _, _, _, _, _, missed, seq, t0_us, ingress_ns = HEADER.unpack_from(buf, 0)
    records = np.frombuffer(buf, dtype=RECORD_DTYPES[kind], count=count, offset=HEADER_BYTES)
    if copy:
        records = records.copy()
    return Frame(kind, FrameFlag(flags), seq, t0_us, ingress_ns, missed, records)
