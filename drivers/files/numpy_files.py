"""Generic event files: ``.npy``, ``.npz`` and ``.csv`` of (t, x, y, p): read and write.

Accepted arrays: a structured array with integer fields t, x, y, p in any
order (extra fields ignored), or a plain integer array of shape (N, 4) with
the columns t, x, y, p. Polarity may be 0/1, -1/1 (-1 is OFF) or bool.

- ``.npy`` streams like every other format: the header gives the dtype and
  count, the data are fixed-size records read chunk by chunk (a
  Fortran-ordered (N, 4) array is refused with a sentence: its columns are
  not records). Records already in ``EVENT_DTYPE`` are handed out as
  read-only views of the chunk read (no copy): copy before changing them.
  The writer writes the ``EVENT_DTYPE`` structured array and fills the
  count in at close (the file must be seekable).
- ``.npz`` is a zip archive, so it is read through ``open_chunks`` (the one
  exception the registry knows): members ``t``, ``x``, ``y``, ``p`` read side
  by side, or one member (``events``, or the only one) read as an ``.npy``;
  both stream, decompressing chunk by chunk. The writer spools an ``.npy`` to
  a temporary file and stores it as member ``events`` at close.
- ``.csv``: a header line naming the columns (``t,x,y,p`` in any order;
  ``timestamp``/``ts`` and ``polarity``/``pol`` accepted), then one event per
  line, decimal integers. A file without a header line is read as t,x,y,p.
"""

from __future__ import annotations

import ast
import io
import shutil
import struct
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from numba import njit

from ..errors import FormatError
from ..packet import EVENT_DTYPE, Geometry, as_events
from .base import CHUNK_BYTES, FileHeader

NPY_MAGIC = b"\x93NUMPY"
FIELDS = ("t", "x", "y", "p")
_LIMITS = {"x": (0, 0xFFFF), "y": (0, 0xFFFF), "p": (-1, 1)}
_ALIASES = {"t": "t", "ts": "t", "timestamp": "t", "time": "t", "t_us": "t",
            "x": "x", "y": "y", "p": "p", "pol": "p", "polarity": "p"}
MAX_CSV_HEADER_BYTES = 4096
MAX_RECORD_BYTES = 4096
"""Largest ``.npy`` record accepted (an event needs a few dozen bytes)."""

# what numpy's header parser and zipfile raise on hostile input
_NPY_HEADER_ERRORS = (ValueError, TypeError, KeyError, SyntaxError, OSError, EOFError,
                      OverflowError, MemoryError, RecursionError, ArithmeticError,
                      tokenize.TokenError, zipfile.BadZipFile, zlib.error)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
               NotImplementedError, KeyError, IndexError, OverflowError, UnicodeDecodeError,
               struct.error, zlib.error)


# ---------------------------------------------------------------- arrays → events


def columns_to_events(
    columns: dict[str, np.ndarray], where: str, first_index: int
) -> np.ndarray:
    """Checked integer columns → an ``EVENT_DTYPE`` array (p = -1 becomes 0)."""
    n = len(columns["t"])
    events = np.empty(n, dtype=EVENT_DTYPE)
    for name in FIELDS:
        values = columns[name]
        if values.dtype.kind == "b":
            values = values.astype(np.uint8)
        if values.dtype.kind not in "iu":
            raise FormatError(f"{where}: field {name} has dtype {values.dtype}, "
                              "not an integer type")
        if name in _LIMITS and n:
            lo, hi = _LIMITS[name]
            bad = np.flatnonzero((values < lo) | (values > hi))
            if bad.size:
                k = int(bad[0])
                raise FormatError(f"{where}: event {first_index + k}: {name} = {values[k]} "
                                  f"is out of range [{lo}, {hi}]")
        elif name == "t" and values.dtype == np.uint64 and n and values.max() > 2**63 - 1:
            k = int(np.argmax(values > 2**63 - 1))
            raise FormatError(f"{where}: event {first_index + k}: t does not fit int64")
        if name == "p":
            events["p"] = np.where(values < 0, 0, values)
        else:
            events[name] = values
    return events


def array_to_events(array: np.ndarray, where: str, first_index: int = 0) -> np.ndarray:
    """A structured (t, x, y, p) array or a plain (N, 4) integer array → events."""
    if array.dtype == EVENT_DTYPE:
        return np.ascontiguousarray(array)
    if array.dtype.names:
        missing = [name for name in FIELDS if name not in array.dtype.names]
        if missing:
            raise FormatError(f"{where}: missing event field(s) {', '.join(missing)}")
        return columns_to_events({name: array[name] for name in FIELDS}, where, first_index)
    if array.ndim == 2 and array.shape[1] == 4:
        return columns_to_events({name: array[:, k] for k, name in enumerate(FIELDS)},
                                 where, first_index)
    raise FormatError(f"{where}: an array of shape {array.shape} and dtype {array.dtype} is "
                      "neither structured (t, x, y, p) nor (N, 4) columns t, x, y, p")


@dataclass(frozen=True, slots=True)
class ArrayLayout:
    """What an ``.npy`` header says: the record dtype, the row width (0: structured), count."""

    dtype: np.dtype
    columns: int
    count: int

    @property
    def record_bytes(self) -> int:
        return self.dtype.itemsize * max(self.columns, 1)

    def records_to_events(self, data: memoryview | bytes, n: int, where: str,
                          first_index: int) -> np.ndarray:
        raw = np.frombuffer(data, dtype=self.dtype, count=n * max(self.columns, 1))
        if self.columns:
            raw = raw.reshape(n, self.columns)
        return array_to_events(raw, where, first_index)


def _read_npy_header(f: BinaryIO, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = np.lib.format.read_magic(f)
        reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = reader(f)
    except _NPY_HEADER_ERRORS as exc:
        raise FormatError(f"{where}: byte 0: not a readable .npy header ({exc})") from None
    if dtype.hasobject or dtype.itemsize > MAX_RECORD_BYTES or dtype.itemsize == 0:
        raise FormatError(f"{where}: .npy dtype {dtype} cannot hold events")
    return shape, fortran, dtype


def read_npy_layout(f: BinaryIO, where: str) -> ArrayLayout:
    """Parse an ``.npy`` header from the current position of ``f``."""
    shape, fortran, dtype = _read_npy_header(f, where)
    if dtype.names:
        if len(shape) != 1:
            raise FormatError(f"{where}: structured .npy of shape {shape}, expected 1-D")
        for name in FIELDS:
            if name not in dtype.names:
                raise FormatError(f"{where}: .npy has no field {name}")
            field = dtype.fields[name][0]  # type: ignore[index]
            if field.shape != () or field.kind not in "iub":
                raise FormatError(f"{where}: .npy field {name} has dtype {field}, "
                                  "not an integer scalar")
        return ArrayLayout(dtype, 0, int(shape[0]))
    if len(shape) == 2 and shape[1] == 4 and dtype.kind in "iub" and dtype.shape == ():
        if fortran and shape[0] > 1:
            raise FormatError(f"{where}: a Fortran-ordered (N, 4) .npy cannot be streamed; "
                              "save np.ascontiguousarray(array) instead")
        return ArrayLayout(dtype, 4, int(shape[0]))
    raise FormatError(f"{where}: .npy of shape {shape} and dtype {dtype} is neither "
                      "structured (t, x, y, p) nor an (N, 4) integer array")


class ArrayDecoder:
    """Fixed-size records of an ``.npy`` body → events, checking the count at the end."""

    def __init__(self, layout: ArrayLayout, where: str) -> None:
        self.layout = layout
        self.where = where
        self.done = 0

    def decode(self, buf: memoryview, offset: int, final: bool) -> tuple[np.ndarray, int]:
        size = self.layout.record_bytes
        n = min(len(buf) // size, self.layout.count - self.done) if size else 0
        # records that are already EVENT_DTYPE come back as a read-only view of the chunk
        events = self.layout.records_to_events(buf, n, self.where, self.done)
        self.done += n
        used = n * size
        if final and (self.done != self.layout.count or used != len(buf)):
            raise FormatError(
                f"{self.where}: byte {offset + used}: .npy header says {self.layout.count} "
                f"events, the file holds {self.done} and {len(buf) - used} more bytes "
                "(truncated or padded file)"
            )
        return events, used


def _layout_meta(layout: ArrayLayout) -> dict[str, str]:
    return {"descr": repr(np.lib.format.dtype_to_descr(layout.dtype)),
            "columns": str(layout.columns), "count": str(layout.count)}


def _layout_from_meta(meta: dict[str, str]) -> ArrayLayout:
    dtype = np.lib.format.descr_to_dtype(ast.literal_eval(meta["descr"]))
    return ArrayLayout(dtype, int(meta["columns"]), int(meta["count"]))


def _npy_header_bytes(count: int) -> bytes:
    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(EVENT_DTYPE), "fortran_order": False,
              "shape": (count,)}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


# ---------------------------------------------------------------- .npy


class NpyWriter:
    """Events → an ``.npy`` of ``EVENT_DTYPE``; the count is filled in at close."""

    def __init__(self, f: BinaryIO, where: str = "npy writer") -> None:
        if not f.seekable():
            raise FormatError(f"{where}: the .npy writer needs a seekable file")
        self.f = f
        self.where = where
        self.start = f.tell()
        self.n_events = 0
        f.write(_npy_header_bytes(0))

    def write(self, events: np.ndarray) -> None:
        events = array_to_events(events, self.where, self.n_events)
        self.f.write(events.tobytes())
        self.n_events += len(events)

    def close(self) -> None:
        end = self.f.tell()
        self.f.seek(self.start)
        self.f.write(_npy_header_bytes(self.n_events))
        self.f.seek(end)
        self.f.flush()


class NpyFormat:
    name: str = "npy"
    extensions: tuple[str, ...] = (".npy",)
    label = "NumPy .npy (t, x, y, p)"

    def sniff(self, head: bytes) -> bool:
        return head.startswith(NPY_MAGIC)

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        f.seek(0)
        layout = read_npy_layout(f, where)
        return FileHeader(self.name, f.tell(), None, _layout_meta(layout))

    def decoder(self, header: FileHeader, where: str) -> ArrayDecoder:
        return ArrayDecoder(_layout_from_meta(header.meta), where)

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> NpyWriter:
        return NpyWriter(f)


# ---------------------------------------------------------------- .npz


class NpzWriter:
    """Events → an ``.npz`` with one member ``events`` (spooled to a temporary file)."""

    def __init__(self, f: BinaryIO, where: str = "npz writer") -> None:
        self.f = f
        self.where = where
        self.spool = tempfile.TemporaryFile()  # noqa: SIM115 - lives until close()
        self.npy = NpyWriter(self.spool, where)

    def write(self, events: np.ndarray) -> None:
        self.npy.write(events)

    def close(self) -> None:
        try:
            self.npy.close()
            self.spool.seek(0)
            with (
                zipfile.ZipFile(self.f, "w", compression=zipfile.ZIP_STORED,
                                allowZip64=True) as z,
                z.open("events.npy", "w", force_zip64=True) as member,
            ):
                shutil.copyfileobj(self.spool, member, CHUNK_BYTES)
            self.f.flush()
        finally:
            self.spool.close()


class NpzFormat:
    name: str = "npz"
    extensions: tuple[str, ...] = (".npz",)
    label = "NumPy .npz (t, x, y, p)"

    def sniff(self, head: bytes) -> bool:
        # a zip whose first member is an .npy
        if not head.startswith(b"PK\x03\x04") or len(head) < 30:
            return False
        name_len = int.from_bytes(head[26:28], "little")
        return head[30 : 30 + name_len].endswith(b".npy")

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        names = _npz_members(f, where)
        return FileHeader(self.name, 0, None, {"members": ",".join(names)})

    def decoder(self, header: FileHeader, where: str) -> ArrayDecoder:
        raise FormatError(f"{where}: .npz is read with open_chunks, not a byte decoder")

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> NpzWriter:
        return NpzWriter(f)

    def open_chunks(
        self, f: BinaryIO, where: str, chunk_bytes: int = CHUNK_BYTES
    ) -> tuple[FileHeader, Iterator[np.ndarray]]:
        """Header and chunked events of an ``.npz`` (members decompressed as they are read)."""
        header = self.read_header(f, where)
        names = header.meta["members"].split(",")
        if all(name in names for name in FIELDS):
            return header, _npz_columns(f, where, chunk_bytes)
        single = "events" if "events" in names else (names[0] if len(names) == 1 else None)
        if single is None:
            raise FormatError(f"{where}: .npz members {', '.join(names)}: expected t, x, y, p "
                              "or one events array")
        return header, _npz_single(f, where, single, chunk_bytes)


def _npz_members(f: BinaryIO, where: str) -> list[str]:
    f.seek(0)
    try:
        with zipfile.ZipFile(f) as z:
            names = [info.filename for info in z.infolist()]
    except _ZIP_ERRORS as exc:
        raise FormatError(f"{where}: byte 0: not a readable .npz archive ({exc})") from None
    return [name[:-4] if name.endswith(".npy") else name for name in names]


def _open_member(z: zipfile.ZipFile, name: str, where: str) -> BinaryIO:
    try:
        names = set(z.namelist())
        return z.open(f"{name}.npy" if f"{name}.npy" in names else name)  # type: ignore[return-value]
    except _ZIP_ERRORS as exc:
        raise FormatError(f"{where}[{name}]: cannot open member ({exc})") from None


def _column_layout(stream: BinaryIO, where: str) -> ArrayLayout:
    """The header of a 1-D integer column member."""
    shape, _, dtype = _read_npy_header(stream, where)
    if len(shape) != 1 or dtype.names or dtype.kind not in "iub" or dtype.shape != ():
        raise FormatError(f"{where}: expected a 1-D integer column, got shape {shape} "
                          f"and dtype {dtype}")
    return ArrayLayout(dtype, 0, int(shape[0]))


def _read_exact(stream: BinaryIO, n: int, where: str) -> bytes:
    try:
        data = stream.read(n)
    except _ZIP_ERRORS as exc:
        raise FormatError(f"{where}: corrupt compressed data ({exc})") from None
    return data


def _npz_single(f: BinaryIO, where: str, name: str, chunk_bytes: int) -> Iterator[np.ndarray]:
    member_where = f"{where}[{name}]"
    f.seek(0)
    with zipfile.ZipFile(f) as z, _open_member(z, name, where) as stream:
        decoder = ArrayDecoder(read_npy_layout(stream, member_where), member_where)
        offset = 0
        carry = b""
        while True:
            data = _read_exact(stream, chunk_bytes, member_where)
            final = not data
            buf = carry + data
            events, used = decoder.decode(memoryview(buf), offset, final)
            if len(events):
                yield events
            offset += used
            carry = buf[used:]
            if final:
                return


def _npz_columns(f: BinaryIO, where: str, chunk_bytes: int) -> Iterator[np.ndarray]:
    f.seek(0)
    with zipfile.ZipFile(f) as z:
        streams: dict[str, BinaryIO] = {}
        layouts: dict[str, ArrayLayout] = {}
        try:
            for name in FIELDS:
                streams[name] = _open_member(z, name, where)
                layouts[name] = _column_layout(streams[name], f"{where}[{name}]")
            counts = {layouts[name].count for name in FIELDS}
            if len(counts) != 1:
                raise FormatError(f"{where}: columns t, x, y, p have different lengths "
                                  f"{[layouts[n].count for n in FIELDS]}")
            count = counts.pop()
            per_chunk = max(1, chunk_bytes // 16)
            done = 0
            while done < count:
                k = min(per_chunk, count - done)
                columns = {}
                for name in FIELDS:
                    size = layouts[name].dtype.itemsize
                    data = _read_exact(streams[name], k * size, f"{where}[{name}]")
                    if len(data) != k * size:
                        raise FormatError(f"{where}[{name}]: byte {done * size + len(data)}: "
                                          f"column ends after {done + len(data) // size} of "
                                          f"{count} values (truncated)")
                    columns[name] = np.frombuffer(data, dtype=layouts[name].dtype)
                yield columns_to_events(columns, where, done)
                done += k
        finally:
            for stream in streams.values():
                stream.close()


# ---------------------------------------------------------------- .csv

_ERR_NONE, _ERR_CHAR, _ERR_FIELDS, _ERR_LONG = range(4)


@njit(cache=True, nogil=True)
def _parse_csv(data, final, out):
    """Parse whole lines of 4 integer fields into ``out`` (n, 4).

    Returns ``(rows, bytes_used, error, error_pos)``; stops at the last complete
    line unless ``final``, or when ``out`` is full.
    """
    n = data.shape[0]
    cap = out.shape[0]
    rows = 0
    i = 0
    line_start = 0
    while i < n and rows < cap:
        # find the end of this line
        end = i
        while end < n and data[end] != 10:
            end += 1
        if end == n and not final:
            break
        field = 0
        value = np.int64(0)
        digits = 0
        sign = 1
        j = i
        line_start = i
        blank = True
        while j < end:
            c = np.int64(data[j])
            if c == 44:  # ','
                if digits == 0 or field >= 3:
                    return rows, line_start, _ERR_FIELDS, j
                out[rows, field] = sign * value
                field += 1
                value = np.int64(0)
                digits = 0
                sign = 1
            elif 48 <= c <= 57:
                if digits >= 18:
                    return rows, line_start, _ERR_LONG, j
                value = value * 10 + (c - 48)
                digits += 1
                blank = False
            elif c == 45 and digits == 0 and sign == 1:  # '-'
                sign = -1
                blank = False
            elif c == 43 and digits == 0:  # '+'
                blank = False
            elif c == 32 or c == 9 or c == 13:  # spaces, tabs, CR
                pass
            else:
                return rows, line_start, _ERR_CHAR, j
            if c == 44:
                blank = False
            j += 1
        if not blank:
            if digits == 0 or field != 3:
                return rows, line_start, _ERR_FIELDS, end
            out[rows, 3] = sign * value
            rows += 1
        i = end + 1
    return rows, min(i, n), _ERR_NONE, 0


class CsvDecoder:
    """Lines of ``t,x,y,p`` (in the header's column order) → events."""

    def __init__(self, order: tuple[int, int, int, int], where: str) -> None:
        self.order = order  # column index of t, x, y, p
        self.where = where
        self.n_events = 0

    def decode(self, buf: memoryview, offset: int, final: bool) -> tuple[np.ndarray, int]:
        data = np.frombuffer(buf, dtype=np.uint8)
        out = np.empty((len(buf) // 8 + 1, 4), dtype=np.int64)  # a line has ≥ 8 bytes
        rows, used, error, pos = _parse_csv(data, final, out)
        if error != _ERR_NONE:
            if error == _ERR_CHAR:
                reason = f"unexpected character {chr(data[pos])!r}"
            elif error == _ERR_LONG:
                reason = "a number has too many digits"
            else:
                reason = "a line needs 4 integer fields"
            raise FormatError(f"{self.where}: byte {offset + pos}: {reason}")
        columns = {name: out[:rows, self.order[k]] for k, name in enumerate(FIELDS)}
        events = columns_to_events(columns, self.where, self.n_events)
        self.n_events += rows
        return events, used


class CsvWriter:
    """Events → ``t,x,y,p`` lines under a header line."""

    def __init__(self, f: BinaryIO, where: str = "csv writer") -> None:
        self.f = f
        self.where = where
        self.n_events = 0
        f.write(b"t,x,y,p\n")

    def write(self, events: np.ndarray) -> None:
        events = array_to_events(events, self.where, self.n_events)
        table = np.empty((len(events), 4), dtype=np.int64)
        for k, name in enumerate(FIELDS):
            table[:, k] = events[name]
        np.savetxt(self.f, table, fmt="%d", delimiter=",")
        self.n_events += len(events)

    def close(self) -> None:
        self.f.flush()


def _csv_columns(line: bytes) -> tuple[int, int, int, int] | None:
    """Column index of t, x, y, p from a header line, or None if it is not one."""
    try:
        names = [part.strip().lower() for part in line.decode("ascii").split(",")]
    except UnicodeDecodeError:
        return None
    mapped = [_ALIASES.get(name) for name in names]
    if len(mapped) != 4 or sorted(m or "" for m in mapped) != sorted(FIELDS):
        return None
    return tuple(mapped.index(name) for name in FIELDS)  # type: ignore[return-value]


class CsvFormat:
    name: str = "csv"
    extensions: tuple[str, ...] = (".csv",)
    label = "CSV (t, x, y, p)"

    def sniff(self, head: bytes) -> bool:
        line = head.split(b"\n", 1)[0].strip()
        return _csv_columns(line) is not None

    def read_header(self, f: BinaryIO, where: str) -> FileHeader:
        f.seek(0)
        head = f.read(MAX_CSV_HEADER_BYTES)
        line, newline, _ = head.partition(b"\n")
        order = _csv_columns(line.strip())
        if order is not None:
            if not newline and len(head) == MAX_CSV_HEADER_BYTES:
                raise FormatError(f"{where}: byte 0: csv header line is too long")
            offset = len(line) + len(newline)
        else:
            stripped = line.strip()
            if stripped and not all(chr(c) in "0123456789-+, \t\r" for c in stripped):
                raise FormatError(f"{where}: byte 0: csv header {line[:60]!r} does not name "
                                  "the columns t, x, y, p")
            order, offset = (0, 1, 2, 3), 0
        meta = {"columns": ",".join(FIELDS[order.index(k)] for k in range(4))}
        return FileHeader(self.name, offset, None, meta)

    def decoder(self, header: FileHeader, where: str) -> CsvDecoder:
        names = header.meta.get("columns", "t,x,y,p").split(",")
        return CsvDecoder(tuple(names.index(name) for name in FIELDS), where)  # type: ignore[arg-type]

    def writer(self, f: BinaryIO, geometry: Geometry | None) -> CsvWriter:
        return CsvWriter(f)


NPY = NpyFormat()
NPZ = NpzFormat()
CSV = CsvFormat()
FORMATS = (NPY, NPZ, CSV)
FORMAT = NPY


def warm_up() -> None:
    """Compile the csv parser on a tiny input."""
    CsvDecoder((0, 1, 2, 3), "warm-up").decode(memoryview(b"1,2,3,1\n"), 0, True)


__all__ = ["CSV", "FORMATS", "NPY", "NPZ", "array_to_events", "as_events", "warm_up"]
