"""npy / npz / csv of (t, x, y, p): layouts, round trips, streaming, bad input."""

from __future__ import annotations

import contextlib
import io
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import detect, open_events, read_events
from spikegate.drivers.files.base import concat_events
from spikegate.drivers.files.numpy_files import CSV, NPY, NPZ, warm_up
from spikegate.drivers.packet import EVENT_DTYPE, make_events

from .event_strategies import event_arrays


def write_with(fmt, events: np.ndarray) -> bytes:
    buf = io.BytesIO()
    writer = fmt.writer(buf, None)
    half = len(events) // 2
    writer.write(events[:half])
    writer.write(events[half:])
    writer.close()
    return buf.getvalue()


def read_with(fmt, data: bytes, chunk_bytes: int | None = None) -> np.ndarray:
    _, chunks = open_events(io.BytesIO(data), "test", fmt, chunk_bytes)
    return concat_events(chunks)


EVENTS = make_events([1, 5, 5, 900], [0, 3, 65535, 7], [4, 0, 2, 9], [1, 0, 1, 0])


def test_npy_writes_the_structured_event_array(tmp_path):
    path = tmp_path / "ev.npy"
    path.write_bytes(write_with(NPY, EVENTS))
    loaded = np.load(path)
    assert loaded.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(loaded, EVENTS)
    assert detect(path).name == "npy"


def test_npy_accepts_any_field_order_and_plain_columns(tmp_path):
    other = np.zeros(4, dtype=[("p", "i1"), ("y", "<i4"), ("x", "<i4"), ("t", "<u8"),
                               ("extra", "f4")])
    for name in "txyp":
        other[name] = EVENTS[name]
    np.save(tmp_path / "fields.npy", other)
    columns = np.stack([EVENTS[name].astype(np.int64) for name in "txyp"], axis=1)
    np.save(tmp_path / "columns.npy", columns)
    for name in ("fields.npy", "columns.npy"):
        _, events = read_events(tmp_path / name)
        np.testing.assert_array_equal(events, EVENTS)


def test_polarity_minus_one_is_off(tmp_path):
    columns = np.array([[1, 2, 3, -1], [2, 2, 3, 1]], dtype=np.int32)
    np.save(tmp_path / "pm.npy", columns)
    assert read_events(tmp_path / "pm.npy")[1]["p"].tolist() == [0, 1]


def test_fortran_columns_are_refused(tmp_path):
    columns = np.asfortranarray(np.stack([EVENTS[name].astype(np.int64) for name in "txyp"], 1))
    np.save(tmp_path / "f.npy", columns)
    with pytest.raises(FormatError, match="Fortran-ordered"):
        read_events(tmp_path / "f.npy")


def test_npy_out_of_range_and_truncation(tmp_path):
    bad = np.array([[1, 70000, 0, 1]], dtype=np.int64)
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(FormatError, match=r"event 0: x = 70000 is out of range"):
        read_events(tmp_path / "bad.npy")
    data = write_with(NPY, EVENTS)
    with pytest.raises(FormatError, match="header says 4 events"):
        read_with(NPY, data[:-13])
    with pytest.raises(FormatError, match="header says 4 events"):
        read_with(NPY, data + b"\0" * 13)


def test_npz_single_member_and_columns(tmp_path):
    path = tmp_path / "ev.npz"
    path.write_bytes(write_with(NPZ, EVENTS))
    assert detect(path).name == "npz"
    np.testing.assert_array_equal(np.load(path)["events"], EVENTS)
    np.testing.assert_array_equal(read_events(path)[1], EVENTS)
    np.savez_compressed(tmp_path / "cols.npz", **{name: EVENTS[name] for name in "txyp"})
    np.savez(tmp_path / "one.npz", EVENTS)
    for name in ("cols.npz", "one.npz"):
        for chunk_bytes in (16, 1 << 20):
            with open(tmp_path / name, "rb") as f:
                _, chunks = open_events(f, name, detect(tmp_path / name), chunk_bytes)
                np.testing.assert_array_equal(concat_events(chunks), EVENTS)


def test_npz_bad_members(tmp_path):
    np.savez(tmp_path / "two.npz", a=EVENTS, b=EVENTS)
    with pytest.raises(FormatError, match="expected t, x, y, p or one events array"):
        read_events(tmp_path / "two.npz")
    np.savez(tmp_path / "short.npz", t=EVENTS["t"], x=EVENTS["x"], y=EVENTS["y"],
             p=EVENTS["p"][:2])
    with pytest.raises(FormatError, match="different lengths"):
        read_events(tmp_path / "short.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(FormatError):
        read_events(tmp_path / "junk.npz")


def test_csv_header_orders_and_no_header(tmp_path):
    (tmp_path / "a.csv").write_text("x, y, timestamp, polarity\n3,4,100,1\r\n5,6,200,-1\n\n")
    _, events = read_events(tmp_path / "a.csv")
    assert events.tolist() == [(100, 3, 4, 1), (200, 5, 6, 0)]
    (tmp_path / "b.csv").write_text("100,3,4,1\n200,5,6,0")
    assert detect(tmp_path / "b.csv").name == "csv"
    assert read_events(tmp_path / "b.csv")[1].tolist() == [(100, 3, 4, 1), (200, 5, 6, 0)]


def test_csv_errors_name_the_byte():
    for text, match in [("t,x,y,p\n1,2,3\n", "byte 13: a line needs 4 integer fields"),
                        ("t,x,y,p\n1,2,3,1\n1,2,a,1\n", "byte 20: unexpected character 'a'"),
                        ("t,x,y,p\n1,2,3,4\n", "p = 4 is out of range"),
                        ("time of day,x\n1,2\n", "does not name the columns")]:
        with pytest.raises(FormatError, match=match):
            read_with(CSV, text.encode())


@settings(max_examples=40, deadline=None)
@given(events=event_arrays(max_x=65535, max_y=65535), chunk=st.integers(1, 64))
def test_round_trips(events, chunk):
    for fmt in (NPY, NPZ, CSV):
        data = write_with(fmt, events)
        np.testing.assert_array_equal(read_with(fmt, data), events)
        np.testing.assert_array_equal(read_with(fmt, data, chunk), events)


@settings(max_examples=60, deadline=None)
@given(events=event_arrays(), cut=st.integers(0, 5000), flips=st.lists(
    st.tuples(st.integers(0, 5000), st.integers(0, 255)), max_size=6))
def test_truncation_and_corruption_only_raise_format_error(events, cut, flips):
    for fmt in (NPY, NPZ, CSV):
        data = bytearray(write_with(fmt, events))
        for pos, value in flips:
            data[pos % len(data)] = value
        for blob in (bytes(data), bytes(data[: cut % (len(data) + 1)])):
            with contextlib.suppress(FormatError):
                read_with(fmt, blob, 64)


def test_zip_without_npy_is_not_sniffed_as_npz():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    assert not NPZ.sniff(buf.getvalue())


def test_warm_up_runs():
    warm_up()
