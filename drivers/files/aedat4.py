"""AEDAT 4.0 (iniVation DV): read and write.

Layout: the magic ``#!AER-DAT4.0\\r\\n``, a u32 LE length and an ``IOHE``
flatbuffer (compression, data-table position, an XML ``infoNode`` naming every
stream by id with its type identifier and, for events, the sensor size), then
packets of ``(i32 stream id, i32 size)`` followed by ``size`` bytes compressed
with the header's compression. Each decompressed payload is a size-prefixed
flatbuffer with a 4-character identifier (``EVTS``, ``IMUS``, ``TRIG``,
``FRME``...). An ``EVTS`` table holds one vector of 16-byte event structs
``(i64 t µs, i16 x, i16 y, u8 polarity, 3 padding)``. A finished file ends
with a compressed ``FTAB`` data table at the header's data-table position
(-1 when the recording was cut short); the reader stops there.

Events are taken from the ``EVTS`` stream found by its type in the header,
whatever its position; every other stream is skipped without decompressing.

The same body (IOHeader, then packets) is what dv-processing's
``NetworkWriter`` sends over TCP: ``parse_ioheader``, ``decode_packet_payload``
and ``encode_evts_packet`` are the public pieces a live source reuses, and
``Aedat4Decoder(header, body_offset, where)`` decodes such a body from bytes
in any split. ``Aedat4Writer`` (the recorder's format) writes one EVTS stream
that we, the ``aedat`` package and dv-processing read back identically.

Reading files, LZ4 packets of the plain kind dv writes take a fast path: one
numba kernel per window walks the packets and decodes them through liblz4's
block decoder (python-lz4's bundled copy, else the system's). Every other
packet, and every error, goes through the Python path, which is the reference.
Outputs come from a small per-thread pool of buffers no array refers to any more.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import importlib.util
import struct
import sys
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from enum import IntEnum
from typing import BinaryIO

import lz4.frame
import lz4.frame as _lz4f  # the context API: create/decompress_chunk/reset
import numpy as np
import zstandard
from llvmlite import binding as llvm_binding
from numba import config as numba_config
from numba import njit, types

from ..errors import FormatError
from ..packet import EVENT_DTYPE, Geometry, as_events
from .base import FileHeader

MAGIC = b"#!AER-DAT4.0\r\n"
PACKET_HEADER_BYTES = 8
MAX_HEADER_BYTES = 16 << 20
"""Largest IOHeader accepted (its XML is a few KiB in practice)."""
MAX_PACKET_BYTES = 256 << 20
"""Largest packet, compressed or not, accepted: bounds every allocation."""
EVENTS_PER_PACKET = 8192
"""Events per packet the writer emits (dv writes a few thousand per packet)."""

RAW_EVENT_DTYPE = np.dtype(
    {"names": ["t", "x", "y", "p"], "formats": ["<i8", "<i2", "<i2", "u1"],
     "offsets": [0, 8, 10, 12], "itemsize": 16}
)
"""One event struct inside an ``EVTS`` flatbuffer (16 bytes, 3 of them padding)."""

_LZ4_HIGH_LEVEL = 9
_ZSTD_LEVEL = 3
_ZSTD_HIGH_LEVEL = 19


class Compression(IntEnum):
    """The IOHeader's compression type (dv's ``CompressionType``)."""

    NONE = 0
    LZ4 = 1
    LZ4_HIGH = 2
    ZSTD = 3
    ZSTD_HIGH = 4


@dataclass(frozen=True, slots=True)
class Aedat4Stream:
    """One stream the IOHeader declares."""

    id: int
    type_identifier: str
    name: str = ""
    width: int | None = None
    height: int | None = None
    source: str = ""


@dataclass(slots=True)
class Aedat4Header:
    """A parsed IOHeader: compression, data-table position and streams by id."""

    compression: Compression
    data_table_position: int
    streams: dict[int, Aedat4Stream] = field(default_factory=dict)
    info_xml: str = ""

    @property
    def event_stream_id(self) -> int | None:
        """The id of the events (``EVTS``) stream read; the lowest such id, or None."""
        ids = [s.id for s in self.streams.values() if s.type_identifier == "EVTS"]
        return min(ids) if ids else None

    @property
    def geometry(self) -> Geometry | None:
        """The events stream's sensor size, when the header gives it."""
        sid = self.event_stream_id
        if sid is None:
            return None
        stream = self.streams[sid]
        if stream.width is None or stream.height is None:
            return None
        return Geometry(stream.width, stream.height)


# --- a minimal flatbuffer reader: only what the IOHeader and EVTS tables need ---


_U32 = struct.Struct("<I")
_U32_PAIR = struct.Struct("<II")
_PACKET_HEADER = struct.Struct("<ii")
_I32 = struct.Struct("<i")
_U16_PAIR = struct.Struct("<HH")
_U16 = struct.Struct("<H")


class _Place:
    """``"<where>: byte <offset>"``, formatted only when an error message needs it."""

    __slots__ = ("offset", "where")

    def __init__(self, where: str, offset: int) -> None:
        self.where = where
        self.offset = offset

    def __str__(self) -> str:
        return f"{self.where}: byte {self.offset}"


class _Flatbuffer:
    """Bounds-checked reads in the flatbuffer ``buf[base:end]`` (positions are absolute)."""

    __slots__ = ("base", "buf", "end", "where")

    def __init__(self, buf: bytes, base: int, end: int, where: str | _Place) -> None:
        self.buf = buf
        self.base = base
        self.end = end
        self.where = where

    def u32(self, pos: int, what: str) -> int:
        if pos < self.base or pos + 4 > self.end:
            raise FormatError(f"{self.where}: {what} at {pos - self.base} lies outside the "
                              f"{self.end - self.base}-byte flatbuffer")
        value: int = _U32.unpack_from(self.buf, pos)[0]
        return value

    def root(self, ident: bytes) -> int:
        """Position of the root table; checks the 4-character identifier."""
        root = self.u32(self.base, "root offset")
        found = self.buf[self.base + 4:self.base + 8]
        if found != ident:
            raise FormatError(f"{self.where}: flatbuffer identifier {found!r} is not {ident!r}")
        table = self.base + root
        if root < 8 or table + 4 > self.end:
            raise FormatError(f"{self.where}: root table offset {root} outside the buffer")
        return table

    def field(self, table: int, index: int, size: int) -> int:
        """Position of field ``index`` (``size`` bytes) of the table at ``table``; 0 if absent."""
        vtable = table - _I32.unpack_from(self.buf, table)[0]
        if vtable < self.base or vtable + 4 > self.end:
            raise FormatError(f"{self.where}: vtable at {vtable - self.base} outside the buffer")
        vt_size, tbl_size = _U16_PAIR.unpack_from(self.buf, vtable)
        if vt_size < 4 or vt_size % 2 or vtable + vt_size > self.end or table + tbl_size > self.end:
            raise FormatError(f"{self.where}: malformed vtable at {vtable - self.base}")
        slot = 4 + 2 * index
        if slot + 2 > vt_size:
            return 0
        rel: int = _U16.unpack_from(self.buf, vtable + slot)[0]
        if rel == 0:
            return 0
        if rel < 4 or rel + size > tbl_size:
            raise FormatError(f"{self.where}: field {index} at {rel} outside its "
                              f"{tbl_size}-byte table")
        return table + rel

    def vector(self, pos: int, item_bytes: int, what: str) -> tuple[int, int]:
        """(first item position, length) of the vector whose uoffset is at ``pos``."""
        start = pos + self.u32(pos, what)
        n = self.u32(start, what)
        if start + 4 + n * item_bytes > self.end:
            raise FormatError(
                f"{self.where}: {what} claims {n} items of {item_bytes} bytes, past the "
                f"buffer end"
            )
        return start + 4, n


# --- IOHeader ---


def _attr_text(node: ET.Element, key: str) -> str | None:
    for attr in node.findall("attr"):
        if attr.get("key") == key:
            return (attr.text or "").strip()
    return None


def _attr_int(node: ET.Element, key: str, where: str) -> int | None:
    text = _attr_text(node, key)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise FormatError(f"{where}: IOHeader attribute {key}={text!r} is not an integer") from None


def parse_info_xml(xml: str, where: str) -> dict[int, Aedat4Stream]:
    """Streams by id from the IOHeader's XML ``infoNode``."""
    if not xml.strip():
        return {}
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise FormatError(f"{where}: IOHeader infoNode is not valid XML ({exc})") from None
    streams: dict[int, Aedat4Stream] = {}
    for node in root.iter("node"):
        name = node.get("name", "")
        ident = _attr_text(node, "typeIdentifier")
        if not name.isdigit() or ident is None:
            continue
        sid = int(name)
        width = height = None
        source = ""
        for child in node.findall("node"):
            if child.get("name") == "info":
                width = _attr_int(child, "sizeX", where)
                height = _attr_int(child, "sizeY", where)
                source = _attr_text(child, "source") or ""
        if (width is not None and not 0 < width <= 65536) or (
            height is not None and not 0 < height <= 65536
        ):
            raise FormatError(f"{where}: stream {sid}: sensor size {width}×{height} out of range")
        streams[sid] = Aedat4Stream(
            sid, ident, _attr_text(node, "originalOutputName") or "", width, height, source
        )
    return streams


def parse_ioheader(buf: bytes | memoryview, where: str) -> Aedat4Header:
    """Parse an IOHeader flatbuffer (the bytes after its u32 length prefix).

    Returns compression, data-table position and every declared stream by id;
    any malformed offset or field is a ``FormatError`` naming ``where``.
    """
    buf = bytes(buf)
    flat = _Flatbuffer(buf, 0, len(buf), where)
    table = flat.root(b"IOHE")
    pos = flat.field(table, 0, 4)
    raw_compression = _I32.unpack_from(buf, pos)[0] if pos else 0
    try:
        compression = Compression(raw_compression)
    except ValueError:
        raise FormatError(f"{where}: unknown AEDAT4 compression type {raw_compression}") from None
    pos = flat.field(table, 1, 8)
    data_table = int.from_bytes(buf[pos:pos + 8], "little", signed=True) if pos else -1
    xml = ""
    pos = flat.field(table, 2, 4)
    if pos:
        start, n = flat.vector(pos, 1, "infoNode string")
        xml = buf[start:start + n].decode("utf-8", errors="replace")
    return Aedat4Header(compression, data_table, parse_info_xml(xml, where), xml)


# --- compression ---


def decompress(payload: bytes | memoryview, compression: Compression,
               where: str | _Place) -> bytes:
    """Decompress one packet payload (bounded by ``MAX_PACKET_BYTES``)."""
    if compression == Compression.NONE:
        return bytes(payload)
    if compression in (Compression.LZ4, Compression.LZ4_HIGH):
        return _decompress_lz4(_lz4f.create_decompression_context(), payload, where)
    try:
        if compression in (Compression.ZSTD, Compression.ZSTD_HIGH):
            zobj = zstandard.ZstdDecompressor().decompressobj()
            parts: list[bytes] = []
            total = 0
            data = bytes(payload)
            step = 1 << 16
            for i in range(0, len(data), step):
                part = zobj.decompress(data[i:i + step])
                total += len(part)
                if total > MAX_PACKET_BYTES:
                    break
                parts.append(part)
            out = b"".join(parts)
            complete = zobj.eof
        else:
            raise FormatError(f"{where}: unknown compression {compression}")
    except (RuntimeError, zstandard.ZstdError) as exc:
        raise FormatError(
            f"{where}: {compression.name} payload does not decompress ({exc})"
        ) from None
    if len(out) > MAX_PACKET_BYTES:
        raise FormatError(f"{where}: payload decompresses to over {MAX_PACKET_BYTES} bytes")
    if not complete:
        raise FormatError(f"{where}: {compression.name} payload is truncated")
    return out


def _decompress_lz4(context: object, payload: bytes | memoryview, where: str | _Place) -> bytes:
    """One LZ4 frame through a reusable python-lz4 decompression context (reset on failure)."""
    # a tight output cap is faster than a huge one: try 4-fold first (events compress about
    # 2-fold), then the bound (LZ4 expands at most 255-fold) if the output reached the cap
    n = len(payload)
    cap = min(4 * n + 65536, MAX_PACKET_BYTES + 1)
    try:
        out, _, complete = _lz4f.decompress_chunk(context, payload, max_length=cap)
        if not complete and len(out) == cap and cap <= MAX_PACKET_BYTES:
            _lz4f.reset_decompression_context(context)
            cap = min(n * 255 + 1024, MAX_PACKET_BYTES + 1)
            out, _, complete = _lz4f.decompress_chunk(context, payload, max_length=cap)
    except RuntimeError as exc:
        _lz4f.reset_decompression_context(context)
        raise FormatError(f"{where}: LZ4 payload does not decompress ({exc})") from None
    if len(out) > MAX_PACKET_BYTES:
        _lz4f.reset_decompression_context(context)
        raise FormatError(f"{where}: payload decompresses to over {MAX_PACKET_BYTES} bytes")
    if not complete:
        _lz4f.reset_decompression_context(context)
        raise FormatError(f"{where}: LZ4 payload is truncated")
    return out


def compress(payload: bytes, compression: Compression) -> bytes:
    """Compress one packet payload the way dv does (one LZ4 / zstd frame)."""
    if compression == Compression.NONE:
        return payload
    if compression == Compression.LZ4:
        return lz4.frame.compress(payload)
    if compression == Compression.LZ4_HIGH:
        return lz4.frame.compress(payload, compression_level=_LZ4_HIGH_LEVEL)
    if compression == Compression.ZSTD:
        return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(payload)
    if compression == Compression.ZSTD_HIGH:
        return zstandard.ZstdCompressor(level=_ZSTD_HIGH_LEVEL).compress(payload)
    raise ValueError(f"unknown compression {compression!r}")


# --- packets ---


def _raw_evts(data: bytes, where: str | _Place) -> np.ndarray | None:
    """The raw 16-byte event structs of a size-prefixed flatbuffer, None if it is not EVTS."""
    n_data = len(data)
    if n_data < 12:
        raise FormatError(f"{where}: packet payload of {n_data} bytes is too short")
    size, root = _U32_PAIR.unpack_from(data, 0)
    end = 4 + size
    if end > n_data:
        raise FormatError(f"{where}: flatbuffer claims {size} bytes, payload has {n_data - 4}")
    if data[8:12] != b"EVTS":
        return None
    # the checks of _Flatbuffer.root / field / vector, inlined (this runs once a packet)
    table = 4 + root
    if root < 8 or table + 4 > end:
        raise FormatError(f"{where}: root table offset {root} outside the buffer")
    vtable = table - _I32.unpack_from(data, table)[0]
    if vtable < 4 or vtable + 4 > end:
        raise FormatError(f"{where}: vtable at {vtable - 4} outside the buffer")
    vt_size, tbl_size = _U16_PAIR.unpack_from(data, vtable)
    if vt_size < 4 or vt_size % 2 or vtable + vt_size > end or table + tbl_size > end:
        raise FormatError(f"{where}: malformed vtable at {vtable - 4}")
    rel = _U16.unpack_from(data, vtable + 4)[0] if vt_size >= 6 else 0
    if rel == 0:
        return np.zeros(0, dtype=RAW_EVENT_DTYPE)
    if rel < 4 or rel + 4 > tbl_size:
        raise FormatError(f"{where}: field 0 at {rel} outside its {tbl_size}-byte table")
    pos = table + rel
    start = pos + _U32.unpack_from(data, pos)[0]
    if start + 4 > end:
        raise FormatError(f"{where}: events vector at {start - 4} lies outside the "
                          f"{size}-byte flatbuffer")
    n = _U32.unpack_from(data, start)[0]
    if start + 4 + n * 16 > end:
        raise FormatError(
            f"{where}: events vector claims {n} items of 16 bytes, past the buffer end"
        )
    return np.frombuffer(data, dtype=RAW_EVENT_DTYPE, count=n, offset=start + 4)


@njit(cache=True, nogil=True)
def _copy_events(raw, out, k0):
    """raw EVTS structs → ``out[k0:]``; returns the index of a negative coordinate or -1."""
    bad = -1
    for i in range(raw.shape[0]):
        r = raw[i]
        o = out[k0 + i]
        if r["x"] < 0 or r["y"] < 0:
            bad = i
        o["t"] = r["t"]
        o["x"] = r["x"]
        o["y"] = r["y"]
        o["p"] = 1 if r["p"] else 0
    return bad


def _fill_events(out: np.ndarray, raws: list[np.ndarray], where: str) -> np.ndarray:
    """Copy raw event structs into ``out`` (EVENT_DTYPE), packet by packet."""
    k = 0
    for raw in raws:
        if _copy_events(raw, out, k) >= 0:
            raise FormatError(f"{where}: event with a negative coordinate")
        k += raw.shape[0]
    return out


def _convert_raw(raw: np.ndarray, where: str) -> np.ndarray:
    return _fill_events(np.empty(raw.shape[0], dtype=EVENT_DTYPE), [raw], where)


# --- the fast path: one kernel call decodes a run of packets ---
#
# liblz4's block decoder (the copy python-lz4 ships, else the system's) and libzstd's frame
# decoder are called from numba kernels, their addresses handed to LLVM. A kernel walks
# packets, decodes LZ4 frames of the plain kind dv writes (no checksums, no dictionary id)
# block by block, or single zstd frames stating their size, into a reused scratch buffer and
# copies the events out. Anything else (another frame kind, a bad size, a malformed
# flatbuffer, a negative coordinate, the data table, the end of the buffer) stops the run
# at that packet: the Python loop then takes that packet, so errors and rare frame kinds
# keep one implementation.


def _load_liblz4() -> bool:
    """Make liblz4 callable from kernels; False when no library exporting it loads."""
    candidates: list[str] = []
    try:
        bundled = importlib.import_module("lz4.block._block").__file__
        if bundled:
            candidates.append(bundled)
    except ImportError:
        pass
    system = ctypes.util.find_library("lz4")
    if system:
        candidates.append(system)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)  # RTLD_LOCAL: no symbol is made global for other libraries
            addresses = [ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                         for name in _LZ4_SYMBOLS]
        except (OSError, AttributeError):
            continue
        for name, address in zip(_LZ4_SYMBOLS, addresses, strict=True):
            llvm_binding.add_symbol(name, address)
        _LIBLZ4.append(lib)
        return True
    return False


_LIBLZ4: list[ctypes.CDLL] = []
"""The library the kernels call (kept referenced)."""


def _load_libzstd() -> bool:
    """Make libzstd callable from kernels: the system's, else zstandard's cffi build (12 %
    slower here than the system's and dv-processing's copies, all measured)."""
    candidates: list[str] = []
    system = ctypes.util.find_library("zstd")
    if system:
        candidates.append(system)
    spec = importlib.util.find_spec("zstandard._cffi")
    if spec is not None and spec.origin:
        candidates.append(spec.origin)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            addresses = [ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                         for name in _ZSTD_SYMBOLS]
            create, free = lib.ZSTD_createDCtx, lib.ZSTD_freeDCtx
        except (OSError, AttributeError):
            continue
        create.restype = ctypes.c_void_p
        free.argtypes = [ctypes.c_void_p]
        free.restype = ctypes.c_size_t
        for name, address in zip(_ZSTD_SYMBOLS, addresses, strict=True):
            llvm_binding.add_symbol(name, address)
        _LIBZSTD.append(lib)
        return True
    return False


_ZSTD_SYMBOLS = ("ZSTD_decompressDCtx", "ZSTD_getFrameContentSize",
                 "ZSTD_findFrameCompressedSize")
_LIBZSTD: list[ctypes.CDLL] = []
_zstd_decompress_dctx = types.ExternalFunction(
    "ZSTD_decompressDCtx",
    types.uintp(types.voidptr, types.voidptr, types.uintp, types.voidptr, types.uintp))
_zstd_frame_content_size = types.ExternalFunction(
    "ZSTD_getFrameContentSize", types.uint64(types.voidptr, types.uintp))
_zstd_frame_compressed_size = types.ExternalFunction(
    "ZSTD_findFrameCompressedSize", types.uintp(types.voidptr, types.uintp))
_FAST_ZSTD = not getattr(numba_config, "DISABLE_JIT", False) and _load_libzstd()
"""True when the kernels can call libzstd (else every ZSTD packet takes the Python path)."""


class _ZstdDctx:
    """One libzstd decompression context, freed with this object."""

    __slots__ = ("_free", "address")

    def __init__(self) -> None:
        address = _LIBZSTD[0].ZSTD_createDCtx()
        if not address:
            raise MemoryError("ZSTD_createDCtx failed")
        self.address: int = address
        self._free = _LIBZSTD[0].ZSTD_freeDCtx  # held: module globals are gone at shutdown

    def __del__(self) -> None:
        self._free(self.address)


class _ZstdContext(threading.local):
    """Each thread's decompression context (made on first use, freed when the thread ends)."""

    def get(self) -> int:
        dctx: _ZstdDctx | None = getattr(self, "dctx", None)
        if dctx is None:
            dctx = self.dctx = _ZstdDctx()
        return dctx.address


_ZSTD_CONTEXT = _ZstdContext()


_LZ4_SYMBOLS = ("LZ4_decompress_safe", "LZ4_decompress_safe_usingDict")
_lz4_safe = types.ExternalFunction(
    "LZ4_decompress_safe", types.int32(types.voidptr, types.voidptr, types.int32, types.int32))
_lz4_safe_using_dict = types.ExternalFunction(
    "LZ4_decompress_safe_usingDict",
    types.int32(types.voidptr, types.voidptr, types.int32, types.int32, types.voidptr,
                types.int32))
_FAST_LZ4 = not getattr(numba_config, "DISABLE_JIT", False) and _load_liblz4()
"""True when the kernels can call liblz4 (else every LZ4 packet takes the Python path)."""

_OUT_WORDS_DTYPE = np.dtype([("t", "<i8"), ("xy", "<u4"), ("p", "u1")])
"""``EVENT_DTYPE``'s 13 bytes with x and y as one word: the kernels' view of the output."""
_RUN_STOP = 0
"""The kernel stopped at ``pos``: the Python loop handles that packet (or the end)."""
_RUN_OK = 3
_KERNEL_LZ4 = 1
_KERNEL_ZSTD = 2
_RUN_GROW_OUT = 1
_RUN_GROW_SCRATCH = 2
_LZ4_MAGIC = 0x184D2204
_XXH_P1 = np.uint64(2654435761)
_XXH_P2 = np.uint64(2246822519)
_XXH_P3 = np.uint64(3266489917)
_XXH_P4 = np.uint64(668265263)
_XXH_P5 = np.uint64(374761393)
_MASK32 = np.uint64(0xFFFFFFFF)
"""XXH32 in uint64: every product of two 32-bit values fits, so nothing overflows (the same
with or without the JIT)."""


@njit(cache=True, nogil=True)
def _u32_at(b, i):
    return np.int64(b[i]) | (np.int64(b[i + 1]) << 8) | (np.int64(b[i + 2]) << 16) | (
        np.int64(b[i + 3]) << 24)


@njit(cache=True, nogil=True)
def _i32_at(b, i):
    v = _u32_at(b, i)
    return v - (np.int64(1) << 32) if v >= (np.int64(1) << 31) else v


@njit(cache=True, nogil=True)
def _rotl32(v, r):
    return ((v << np.uint64(r)) | (v >> np.uint64(32 - r))) & _MASK32


@njit(cache=True, nogil=True)
def _xxh32_short(b, start, n):
    """XXH32 (seed 0) of ``b[start:start + n]`` for n < 16: the LZ4 frame header checksum."""
    h = (_XXH_P5 + np.uint64(n)) & _MASK32
    i = start
    stop = start + n
    while i + 4 <= stop:
        h = (h + np.uint64(_u32_at(b, i)) * _XXH_P3) & _MASK32
        h = (_rotl32(h, 17) * _XXH_P4) & _MASK32
        i += 4
    while i < stop:
        h = (h + np.uint64(b[i]) * _XXH_P5) & _MASK32
        h = (_rotl32(h, 11) * _XXH_P1) & _MASK32
        i += 1
    h ^= h >> np.uint64(15)
    h = (h * _XXH_P2) & _MASK32
    h ^= h >> np.uint64(13)
    h = (h * _XXH_P3) & _MASK32
    h ^= h >> np.uint64(16)
    return np.int64(h)


@njit(cache=True, nogil=True)
def _lz4_frame(src, start, end, scratch):
    """Decode the plain LZ4 frame ``src[start:end]`` into ``scratch[0:]``.

    Returns the decoded size; -1 for a frame this path leaves to python-lz4; -2 - need when
    ``scratch`` needs ``need`` bytes.
    """
    if end - start < 7 or _u32_at(src, start) != _LZ4_MAGIC:
        return -1
    flg = src[start + 4]
    bd = src[start + 5]
    # version 01; no block checksum (0x10), content checksum (0x04), reserved (0x02), dict id
    if flg & 0xC0 != 0x40 or flg & 0x17 != 0 or bd & 0x8F != 0:
        return -1
    size_id = (bd >> 4) & 7
    if size_id < 4:
        return -1
    block_max = np.int64(1) << (8 + 2 * size_id)
    linked = flg & 0x20 == 0
    head = 2 + (8 if flg & 0x08 else 0)
    if end - start < 4 + head + 1:
        return -1
    if src[start + 4 + head] != (_xxh32_short(src, start + 4, head) >> 8) & 0xFF:
        return -1
    content_size = -1
    if flg & 0x08:
        content_size = _u32_at(src, start + 6) | (_u32_at(src, start + 10) << 32)
        if content_size < 0 or content_size > MAX_PACKET_BYTES:
            return -1
    pos = start + 4 + head + 1
    total = 0
    base = np.uint64(scratch.ctypes.data)
    src_base = np.uint64(src.ctypes.data)
    while True:
        if pos + 4 > end:
            return -1
        word = _u32_at(src, pos)
        pos += 4
        if word == 0:
            break
        raw = word >> 31
        csize = word & 0x7FFFFFFF
        if csize > block_max or pos + csize > end:
            return -1
        room = block_max if raw == 0 else csize
        if total + room > scratch.shape[0]:
            if total + room > MAX_PACKET_BYTES + (4 << 20):
                return -1
            return -2 - (total + room)
        if raw:
            scratch[total:total + csize] = src[pos:pos + csize]
            got = csize
        elif linked and total > 0:
            got = _lz4_safe_using_dict(src_base + np.uint64(pos), base + np.uint64(total),
                                       csize, block_max, base, total)
        else:
            got = _lz4_safe(src_base + np.uint64(pos), base + np.uint64(total), csize,
                            block_max)
        if got < 0:
            return -1
        total += got
        if total > MAX_PACKET_BYTES:
            return -1
        pos += csize
    if pos != end or (content_size >= 0 and total != content_size):
        return -1
    return total


@njit(cache=True, nogil=True)
def _evts_vector(data, n_data):
    """(first struct position, count) of the EVTS flatbuffer ``data[:n_data]``; count -1
    when the Python path must look at it (not EVTS, malformed)."""
    if n_data < 12:
        return 0, -1
    size = _u32_at(data, 0)
    root = _u32_at(data, 4)
    end = 4 + size
    if end > n_data or data[8] != 69 or data[9] != 86 or data[10] != 84 or data[11] != 83:
        return 0, -1
    table = 4 + root
    if root < 8 or table + 4 > end:
        return 0, -1
    vtable = table - _i32_at(data, table)
    if vtable < 4 or vtable + 4 > end:
        return 0, -1
    vt_size = data[vtable] | (np.int64(data[vtable + 1]) << 8)
    tbl_size = data[vtable + 2] | (np.int64(data[vtable + 3]) << 8)
    if vt_size < 4 or vt_size % 2 or vtable + vt_size > end or table + tbl_size > end:
        return 0, -1
    rel = data[vtable + 4] | (np.int64(data[vtable + 5]) << 8) if vt_size >= 6 else 0
    if rel == 0:
        return 0, 0
    if rel < 4 or rel + 4 > tbl_size:
        return 0, -1
    pos = table + rel
    start = pos + _u32_at(data, pos)
    if start + 4 > end:
        return 0, -1
    n = _u32_at(data, start)
    if start + 4 + n * 16 > end:
        return 0, -1
    return start + 4, n


@njit(cache=True, nogil=True)
def _copy_evts(data, start, m, out, k):
    """``m`` raw EVTS structs at ``data[start:]`` → ``out[k:]`` (``_OUT_WORDS_DTYPE``);
    False on a negative x or y."""
    bad = np.uint32(0)
    if start % 8 == 0 and data.shape[0] % 8 == 0:
        # strided views indexed from 0: the loop carries no negative-index wrapping (2× faster)
        src_t = data.view(np.int64)[start // 8:start // 8 + 2 * m:2]
        src_xy = data.view(np.uint32)[start // 4 + 2:start // 4 + 2 + 4 * m:4]
        src_p = data[start + 12:start + 12 + 16 * m:16]
        dst = out[k:k + m]
        dst_t = dst["t"]
        dst_xy = dst["xy"]
        dst_p = dst["p"]
        for i in range(m):
            xy = src_xy[i]
            bad |= xy
            dst_t[i] = src_t[i]
            dst_xy[i] = xy
            dst_p[i] = src_p[i] != 0
    else:
        for i in range(m):
            b = start + 16 * i
            xy = np.uint32(_u32_at(data, b + 8))
            bad |= xy
            o = out[k + i]
            o["t"] = _u32_at(data, b) | (_u32_at(data, b + 4) << 32)
            o["xy"] = xy
            o["p"] = data[b + 12] != 0
    return bad & 0x80008000 == 0


@njit(cache=True, nogil=True)
def _next_events_packet(buf, pos, n, offset, table_at, stream_ids, events_id):
    """Skip other streams' packets from ``pos``: (pos, end) of the next events packet, or
    (pos, -1) where the Python loop must take over (end of buffer, data table, bad header)."""
    while True:
        if table_at >= 0 and offset + pos >= table_at:
            return pos, -1
        if pos + PACKET_HEADER_BYTES > n:
            return pos, -1
        sid = _i32_at(buf, pos)
        size = _i32_at(buf, pos + 4)
        if size < 0 or size > MAX_PACKET_BYTES:
            return pos, -1
        end = pos + PACKET_HEADER_BYTES + size
        if (table_at >= 0 and offset + end > table_at) or end > n:
            return pos, -1
        declared = False
        for s in stream_ids:
            if s == sid:
                declared = True
        if not declared:
            return pos, -1
        if sid == events_id:
            return pos, end
        pos = end


@njit(cache=True, nogil=True)
def _take_events(scratch, total, out, k):
    """Copy the events of the EVTS flatbuffer ``scratch[:total]`` to ``out[k:]``: (status,
    new k, need) with status ``_RUN_OK``, ``_RUN_STOP``, ``_RUN_GROW_OUT`` or
    ``_RUN_GROW_SCRATCH``.

    ``total`` is a frame decoder's result: the decoded size, -1 for a frame left to
    Python, -2 - need when ``scratch`` needs ``need`` bytes.
    """
    if total <= -2:
        return _RUN_GROW_SCRATCH, k, -2 - total
    if total < 0:
        return _RUN_STOP, k, 0
    start, m = _evts_vector(scratch, total)
    if m < 0:
        return _RUN_STOP, k, 0
    if k + m > out.shape[0]:
        return _RUN_GROW_OUT, k, k + m
    if not _copy_evts(scratch, start, m, out, k):
        return _RUN_STOP, k, 0
    return _RUN_OK, k + m, 0


@njit(cache=True, nogil=True)
def _decode_lz4_run(buf, pos, n, offset, table_at, stream_ids, events_id, scratch, out, k):
    """Decode packets from ``buf[pos:n]`` while each is plain; returns (status, pos, k, need).

    ``status`` is ``_RUN_STOP`` (the Python loop takes the packet at ``pos``),
    ``_RUN_GROW_OUT`` (``out`` is too small for that packet) or ``_RUN_GROW_SCRATCH``
    (``scratch`` needs ``need`` bytes).
    """
    while True:
        pos, end = _next_events_packet(buf, pos, n, offset, table_at, stream_ids, events_id)
        if end < 0:
            return _RUN_STOP, pos, k, 0
        total = _lz4_frame(buf, pos + PACKET_HEADER_BYTES, end, scratch)
        status, k_next, need = _take_events(scratch, total, out, k)
        if status != _RUN_OK:
            return status, pos, k, need
        k = k_next
        pos = end


@njit(cache=True, nogil=True)
def _zstd_frame(src, start, end, dctx, scratch):
    """Decode the single zstd frame ``src[start:end]`` (content size stated) into ``scratch``.

    Returns the decoded size; -1 for a frame this path leaves to zstandard; -2 - need when
    ``scratch`` needs ``need`` bytes.
    """
    size = end - start
    at = np.uint64(src.ctypes.data) + np.uint64(start)
    if np.int64(_zstd_frame_compressed_size(at, size)) != size:
        return -1  # an error, or more than one frame (zstandard reads the first only)
    content = np.int64(_zstd_frame_content_size(at, size))
    if content < 0 or content > MAX_PACKET_BYTES:
        return -1  # unknown, an error, or too large
    if content > scratch.shape[0]:
        return -2 - content
    got = np.int64(_zstd_decompress_dctx(dctx, np.uint64(scratch.ctypes.data),
                                         scratch.shape[0], at, size))
    if got != content:
        return -1
    return got


@njit(cache=True, nogil=True)
def _decode_zstd_run(buf, pos, n, offset, table_at, stream_ids, events_id, dctx, scratch,
                     out, k):
    """``_decode_lz4_run`` for zstd packets, through the decompression context ``dctx``.

    A loop of its own, not a codec flag on one loop: each kernel links only its own
    library, so a machine without libzstd (or liblz4) still gets the other fast path."""
    while True:
        pos, end = _next_events_packet(buf, pos, n, offset, table_at, stream_ids, events_id)
        if end < 0:
            return _RUN_STOP, pos, k, 0
        total = _zstd_frame(buf, pos + PACKET_HEADER_BYTES, end, dctx, scratch)
        status, k_next, need = _take_events(scratch, total, out, k)
        if status != _RUN_OK:
            return status, pos, k, need
        k = k_next
        pos = end


def decode_packet_payload(
    payload: bytes | memoryview, compression: Compression | int, where: str, offset: int = 0
) -> np.ndarray | None:
    """Events (``EVENT_DTYPE``) of one packet payload, or None when it is not ``EVTS``.

    ``payload`` is the packet's bytes after its (stream id, size) header, still
    compressed; ``offset`` is its position in the file or stream, for errors.
    """
    place = f"{where}: byte {offset}"
    try:
        comp = Compression(int(compression))
    except ValueError:
        raise FormatError(f"{place}: unknown AEDAT4 compression type {compression}") from None
    raw = _raw_evts(decompress(payload, comp, place), place)
    if raw is None:
        return None
    return _convert_raw(raw, place)


def encode_evts_flatbuffer(events: np.ndarray) -> bytes:
    """A size-prefixed ``EVTS`` flatbuffer holding ``events`` (uncompressed)."""
    events = as_events(np.asarray(events), "events")
    n = events.shape[0]
    raw = np.zeros(n, dtype=RAW_EVENT_DTYPE)
    raw["t"] = events["t"]
    if n and (int(events["x"].max()) > 32767 or int(events["y"].max()) > 32767):
        raise ValueError("AEDAT4 stores x and y as int16: coordinates above 32767")
    raw["x"] = events["x"]
    raw["y"] = events["y"]
    raw["p"] = events["p"] != 0
    # [size][root=16][EVTS][pad 2][vtable 6,8,4][table: soffset 6, uoffset 4][len][structs]
    head = struct.pack("<I4s2xHHHiII", 28 + 16 * n, b"EVTS", 6, 8, 4, 6, 4, n)
    head = head[:4] + struct.pack("<I", 16) + head[4:]
    return head + raw.tobytes()


def encode_evts_packet(
    events: np.ndarray, stream_id: int = 0, compression: Compression | int = Compression.LZ4
) -> bytes:
    """One AEDAT4 packet: ``(i32 stream id, i32 size)`` + the compressed EVTS flatbuffer."""
    body = compress(encode_evts_flatbuffer(events), Compression(int(compression)))
    return struct.pack("<ii", stream_id, len(body)) + body


def make_info_xml(geometry: Geometry | None, compression: Compression, stream_id: int = 0) -> str:
    """The infoNode XML of a file with one events stream."""
    width, height = (geometry.width, geometry.height) if geometry else (0, 0)
    size = (
        f'                <attr key="sizeX" type="int">{width}</attr>\n'
        f'                <attr key="sizeY" type="int">{height}</attr>\n'
        if geometry else ""
    )
    return (
        '<dv version="2.0">\n'
        '    <node name="outInfo" path="/outInfo/">\n'
        f'        <node name="{stream_id}" path="/outInfo/{stream_id}/">\n'
        f'            <attr key="compression" type="string">{compression.name}</attr>\n'
        '            <attr key="originalModuleName" type="string">spikegate</attr>\n'
        '            <attr key="originalOutputName" type="string">events</attr>\n'
        '            <attr key="typeDescription" type="string">'
        'Array of events (polarity ON/OFF).</attr>\n'
        '            <attr key="typeIdentifier" type="string">EVTS</attr>\n'
        f'            <node name="info" path="/outInfo/{stream_id}/info/">\n'
        f"{size}"
        '                <attr key="source" type="string">spikegate</attr>\n'
        '                <attr key="tsOffset" type="long">0</attr>\n'
        "            </node>\n"
        "        </node>\n"
        "    </node>\n"
        "</dv>\n"
    )


def encode_ioheader(
    compression: Compression, info_xml: str, data_table_position: int = -1
) -> bytes:
    """An IOHeader flatbuffer with its u32 length prefix (int64 field 8-aligned)."""
    text = info_xml.encode("utf-8")
    # [size][root=24][IOHE][pad 6][vtable 10 bytes][table @28: soffset 10, compression,
    #  uoffset to string (12), int64 data table][string @48: len, bytes, NUL, pad]
    body = struct.pack(
        "<I4s6xHHHHHiiIqI",
        24, b"IOHE", 10, 20, 4, 12, 8, 10, int(compression), 12, data_table_position, len(text),
    )
    body += text + b"\0"
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<I", len(body)) + body


# --- the file format ---


class Aedat4Decoder:
    """Packets → events of the events stream; other streams skipped undecompressed."""

    def __init__(self, header: Aedat4Header, data_offset: int, where: str) -> None:
        self._header = header
        self._where = where
        self._events_id = header.event_stream_id
        table = header.data_table_position
        self._end = table if table >= data_offset else -1
        self._lz4_context = _lz4f.create_decompression_context()
        if header.compression in (Compression.LZ4, Compression.LZ4_HIGH):
            self._kernel = _KERNEL_LZ4 if _FAST_LZ4 else 0
        elif header.compression in (Compression.ZSTD, Compression.ZSTD_HIGH):
            self._kernel = _KERNEL_ZSTD if _FAST_ZSTD else 0
        else:
            self._kernel = 0
        self._stream_ids = np.array(sorted(header.streams), dtype=np.int64)
        self._scratch = np.empty(0, dtype=np.uint8)

    def decode(self, buf: memoryview, offset: int, final: bool) -> tuple[np.ndarray, int]:
        where = self._where
        n = len(buf)
        pos = 0
        # events are copied packet by packet while the packet is still in cache, into an
        # output sized for 3-fold compression (grown by doubling, bounded by the data)
        comp = self._header.compression
        lz4 = comp in (Compression.LZ4, Compression.LZ4_HIGH)
        out = _take_output(n // 16 + 1 if comp == Compression.NONE else n // 5 + 1024)
        k = 0
        table_at = self._end
        streams = self._header.streams
        events_id = self._events_id
        context = self._lz4_context
        unpack_header = _PACKET_HEADER.unpack_from
        kernel = self._kernel
        data = np.frombuffer(buf, dtype=np.uint8) if kernel else None
        if data is not None:
            data.flags.writeable = False  # one kernel specialisation for bytes, maps, bytearrays
        fast_events_id = -1 if events_id is None else events_id
        while True:
            if data is not None:
                if kernel == _KERNEL_LZ4:
                    status, pos, k, need = _decode_lz4_run(
                        data, pos, n, offset, table_at, self._stream_ids, fast_events_id,
                        self._scratch, out.view(_OUT_WORDS_DTYPE), k)
                else:
                    status, pos, k, need = _decode_zstd_run(
                        data, pos, n, offset, table_at, self._stream_ids, fast_events_id,
                        _ZSTD_CONTEXT.get(), self._scratch, out.view(_OUT_WORDS_DTYPE), k)
                if status == _RUN_GROW_OUT:
                    out = _grown(out, k, need)
                    continue
                if status == _RUN_GROW_SCRATCH:
                    size = max(2 * self._scratch.shape[0], need, 1 << 18)
                    self._scratch = np.empty(min(size, MAX_PACKET_BYTES + (4 << 20)) + 7 & ~7,
                                             dtype=np.uint8)
                    continue
            at = offset + pos
            if 0 <= table_at <= at:
                pos = n  # the FTAB data table (and anything after it) holds no events
                break
            if pos + PACKET_HEADER_BYTES > n:
                break
            sid, size = unpack_header(buf, pos)
            if size < 0 or size > MAX_PACKET_BYTES:
                raise FormatError(f"{where}: byte {at}: packet size {size} out of range")
            end = pos + PACKET_HEADER_BYTES + size
            if table_at >= 0 and offset + end > table_at:
                raise FormatError(
                    f"{where}: byte {at}: packet runs past the data table at {table_at}"
                )
            if end > n:
                break
            if sid not in streams:
                raise FormatError(f"{where}: byte {at}: packet of undeclared stream id {sid}")
            if sid == events_id:
                place = _Place(where, at)
                payload = buf[pos + PACKET_HEADER_BYTES:end]
                if lz4:
                    flat = _decompress_lz4(context, payload, place)
                else:
                    flat = decompress(payload, comp, place)
                raw = _raw_evts(flat, place)
                if raw is None:
                    raise FormatError(f"{place}: stream {sid} is declared EVTS but its "
                                      f"packet is {flat[8:12]!r}")
                m = raw.shape[0]
                if k + m > out.shape[0]:
                    out = _grown(out, k, k + m)
                if _copy_events(raw, out, k) >= 0:
                    raise FormatError(f"{place}: event with a negative coordinate")
                k += m
            pos = end
        if 2 * k < out.shape[0] - 1024:
            return _head_copy(out, k, k), pos  # a mostly empty output is not kept alive
        return out[:k], pos


class _OutputPool(threading.local):
    """Each thread's recent output buffers, handed out again once no array refers to them."""

    def __init__(self) -> None:
        self.buffers: list[np.ndarray] = []


_POOL = _OutputPool()
_POOL_BUFFERS = 3
_POOL_MAX_BYTES = 4 << 20


def _references(buffers: list[np.ndarray], i: int) -> int:
    """References to ``buffers[i]`` (the list's, this call's argument, and any other)."""
    return sys.getrefcount(buffers[i])


_FREE_REFERENCES = _references([np.empty(1, dtype=EVENT_DTYPE)], 0)
"""What ``_references`` reports for a buffer only the pool holds (measured, not assumed)."""


def _take_output(n_events: int) -> np.ndarray:
    """An uninitialised ``EVENT_DTYPE`` buffer of at least ``n_events``.

    A pooled buffer is reused only when nothing else refers to it: every array
    handed out (and any view of it) keeps its buffer referenced, so a chunk the
    consumer still holds is never overwritten. Reuse spares the page faults of
    fresh multi-MiB allocations, which the allocator often returns to the system.
    """
    buffers = _POOL.buffers
    for i in range(len(buffers)):
        if buffers[i].shape[0] >= n_events and _references(buffers, i) <= _FREE_REFERENCES:
            return buffers[i]
    out = np.empty(n_events, dtype=EVENT_DTYPE)
    if out.nbytes <= _POOL_MAX_BYTES:
        if len(buffers) >= _POOL_BUFFERS:
            del buffers[0]
        buffers.append(out)
    return out


def _grown(out: np.ndarray, k: int, need: int) -> np.ndarray:
    """A larger output holding ``out[:k]`` (doubled, at least ``need`` events)."""
    return _head_copy(out, k, max(2 * out.shape[0], need))


def _head_copy(events: np.ndarray, k: int, size: int) -> np.ndarray:
    """A new ``size``-event array starting with ``events[:k]``, copied as bytes (numpy copies
    a packed record array element by element, 30× slower)."""
    copy = np.empty(size, dtype=EVENT_DTYPE)
    nbytes = k * EVENT_DTYPE.itemsize
    copy.view(np.uint8)[:nbytes] = events.view(np.uint8)[:nbytes]
    return copy


def encode_data_table(rows: list[tuple[int, int, int, int, int, int]]) -> bytes:
    """A size-prefixed ``FTAB`` flatbuffer (uncompressed): one FileDataDefinition per packet.

    ``rows`` are (payload byte offset, stream id, packet size, element count,
    first t, last t). The layout follows dv's: each table is (soffset,
    PacketHeader struct, ByteOffset, NumElements, TimestampStart,
    TimestampEnd), every int64 8-aligned from the buffer start.
    """
    n = len(rows)
    # [size][root=16][FTAB][vtable 6,8,4][pad 2][root @20: soffset 8, uoffset 4]
    # [vector @28: n, n uoffsets][shared vtable, 14 bytes][tables @ 4 mod 8, 48 apart]
    vtable_at = 32 + 4 * n
    first_table = vtable_at + 14
    first_table += (4 - first_table) % 8
    head = struct.pack("<II4sHHH2xiII", 0, 16, b"FTAB", 6, 8, 4, 8, 4, n)
    entries = b"".join(
        struct.pack("<I", first_table + 48 * i - (32 + 4 * i)) for i in range(n)
    )
    vtable = struct.pack("<7H", 14, 44, 12, 4, 20, 28, 36)
    pad = bytes(first_table - vtable_at - 14)
    tables = b"".join(
        struct.pack("<iiiqqqq4x", first_table + 48 * i - vtable_at, sid, size, offset, count,
                    t_first, t_last)
        for i, (offset, sid, size, count, t_first, t_last) in enumerate(rows)
    )
    body = head + entries + vtable + pad + tables
    return struct.pack("<I", len(body) - 4) + body[4:]


class Aedat4Writer:
    """Events → an AEDAT4 file with one EVTS stream (id 0).

    Packets are written as they come, so a recording cut short is still
    readable up to its last whole packet (its data-table position stays -1,
    which readers treat as "scan to the end"). On a seekable file ``close``
    appends the ``FTAB`` data table and patches its position into the header,
    as dv does for a finished recording.
    """

    _TABLE_FIELD = len(MAGIC) + 40
    """File offset of the IOHeader's int64 data-table position (see encode_ioheader)."""

    def __init__(
        self,
        f: BinaryIO,
        geometry: Geometry | None,
        compression: Compression = Compression.LZ4,
        events_per_packet: int = EVENTS_PER_PACKET,
    ) -> None:
        if events_per_packet < 1:
            raise ValueError("events_per_packet must be at least 1")
        self._f = f
        self._compression = Compression(compression)
        self._per_packet = events_per_packet
        try:
            self._start: int | None = f.tell() if f.seekable() else None
        except OSError:
            self._start = None
        self._rows: list[tuple[int, int, int, int, int, int]] = []
        header = MAGIC + encode_ioheader(self._compression,
                                         make_info_xml(geometry, self._compression))
        f.write(header)
        self._written = len(header)
        self._closed = False

    def write(self, events: np.ndarray) -> None:
        if self._closed:
            raise ValueError("write to a closed Aedat4Writer")
        events = as_events(np.asarray(events), "events")
        for i in range(0, events.shape[0], self._per_packet):
            part = events[i:i + self._per_packet]
            packet = encode_evts_packet(part, 0, self._compression)
            self._f.write(packet)
            if len(part):
                self._rows.append((self._written + PACKET_HEADER_BYTES, 0,
                                   len(packet) - PACKET_HEADER_BYTES,
                                   len(part), int(part["t"][0]), int(part["t"][-1])))
            self._written += len(packet)

    def close(self) -> None:
        """Append the data table (seekable files) and flush; the file stays open."""
        if self._closed:
            return
        self._closed = True
        if self._start is not None:
            table = compress(encode_data_table(self._rows), self._compression)
            position = self._written
            self._f.write(table)
            end = self._f.tell()
            self._f.seek(self._start + self._TABLE_FIELD)
            self._f.write(struct.pack("<q", position))
            self._f.seek(end)
        self._f.flush()


class Aedat4Format:
    """AEDAT 4.0, detected by its magic line."""

    name = "aedat4"
    label = "AEDAT 4.0 (iniVation DV)"
    extensions = (".aedat4",)
    maps_file = True
    """The decoder copies every event out of its input: the reader loop may pass map views."""

    def __init__(self) -> None:
        self._last_parsed: tuple[str | None, dict[int, Aedat4Stream]] = (None, {})

    def sniff(self, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        head = f.read(len(MAGIC) + 4)
        if not head.startswith(MAGIC):
            raise FormatError(f"{where}: byte 0: not an AEDAT 4.0 file (no {MAGIC!r} magic)")
        if len(head) < len(MAGIC) + 4:
            raise FormatError(f"{where}: byte {len(MAGIC)}: truncated IOHeader length")
        size = int.from_bytes(head[len(MAGIC):], "little")
        if size > MAX_HEADER_BYTES:
            raise FormatError(f"{where}: byte {len(MAGIC)}: IOHeader length {size} too large")
        buf = f.read(size)
        if len(buf) < size:
            raise FormatError(f"{where}: byte {len(MAGIC) + 4}: truncated IOHeader")
        header = parse_ioheader(buf, f"{where}: IOHeader at byte {len(MAGIC) + 4}")
        meta = {
            "compression": header.compression.name,
            "data_table_position": str(header.data_table_position),
            "streams": ",".join(f"{s.id}:{s.type_identifier}" for s in header.streams.values()),
            "info_xml": header.info_xml,
        }
        self._last_parsed = (header.info_xml, header.streams)
        return FileHeader(self.name, len(MAGIC) + 4 + size, header.geometry, meta)

    def decoder(self, header: FileHeader, where: str) -> Aedat4Decoder:
        try:
            xml = header.meta["info_xml"]
            last_xml, last_streams = self._last_parsed
            # the header read_header just parsed (the same string object): not parsed again
            streams = dict(last_streams) if last_xml is xml else parse_info_xml(xml, where)
            parsed = Aedat4Header(
                Compression[header.meta["compression"]],
                int(header.meta["data_table_position"]),
                streams,
                xml,
            )
        except (KeyError, ValueError):
            raise FormatError(f"{where}: not a header from Aedat4Format.read_header") from None
        return Aedat4Decoder(parsed, header.data_offset, where)

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> Aedat4Writer:
        return Aedat4Writer(f, geometry)


FORMAT = Aedat4Format()


def warm_up() -> None:
    """Compile the event-copy kernel and the fast LZ4 and ZSTD paths on tiny packets."""
    decode_packet_payload(encode_evts_packet(np.zeros(1, EVENT_DTYPE), 0, 0)[8:], 0, "warm-up")
    for compression in (Compression.LZ4, Compression.ZSTD):
        header = Aedat4Header(compression, -1, {0: Aedat4Stream(0, "EVTS")})
        packet = encode_evts_packet(np.zeros(1, EVENT_DTYPE), 0, compression)
        Aedat4Decoder(header, 0, "warm-up").decode(memoryview(bytearray(packet)), 0, True)
