"""AEDAT 2.0 / 1.0 (jAER): the real header-only sample, DAVIS and DVS128 layouts, bad input."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import aedat2, detect, read_events
from spikegate.drivers.files.base import concat_events, iter_event_chunks
from spikegate.drivers.packet import Geometry, make_events

SAMPLE = "tonic_sample_aedat_header.aedat"


def header(chip: str, version: str = "2.0") -> bytes:
    return (
        f"#!AER-DAT{version}\r\n"
        "# This is a raw AE data file - do not edit\r\n"
        f"# AEChip: {chip}\r\n"
        "#<?xml version=\"1.0\"?>\r\n"
    ).encode()


def davis_records(events: np.ndarray, width: int) -> np.ndarray:
    """Test-only DAVIS encoder: the inverse of jAER's extractor."""
    raw = np.empty(len(events), dtype=[("a", ">u4"), ("t", ">u4")])
    raw["a"] = (
        (events["y"].astype(np.uint32) << 22)
        | ((width - 1 - events["x"].astype(np.uint32)) << 12)
        | (events["p"].astype(np.uint32) << 11)
    )
    raw["t"] = events["t"] % (1 << 32)
    return raw


def dvs128_records(events: np.ndarray, dtype: str = ">u4") -> np.ndarray:
    raw = np.empty(len(events), dtype=[("a", dtype), ("t", ">u4")])
    raw["a"] = (
        (events["y"].astype(np.uint32) << 8)
        | ((127 - events["x"].astype(np.uint32)) << 1)
        | (1 - events["p"].astype(np.uint32))
    )
    raw["t"] = events["t"]
    return raw


def read_bytes(data: bytes, chunk_bytes: int = 1 << 22) -> tuple[Geometry | None, np.ndarray]:
    head, chunks = iter_event_chunks(io.BytesIO(data), aedat2.FORMAT, "mem.aedat", chunk_bytes)
    return head.geometry, concat_events(chunks)


def random_events(n: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(np.cumsum(rng.integers(0, 1000, n)), rng.integers(0, width, n),
                       rng.integers(0, height, n), rng.integers(0, 2, n))


def test_real_header_only_sample(shared: Path) -> None:
    path = shared / "data" / SAMPLE
    ref = next(e for e in json.loads((shared / "data" / "reference.json").read_text())
               if e["file"] == SAMPLE)
    assert detect(path) is aedat2.FORMAT
    head, events = read_events(path)
    assert head.geometry == Geometry(ref["width"], ref["height"]) == Geometry(346, 260)
    assert head.data_offset == ref["size_bytes"] == 599
    assert head.meta["layout"] == "davis"
    assert len(events) == ref["count"] == 0
    assert len(np.load(shared / "data" / f"{SAMPLE}.first1000.npy")) == 0


@pytest.mark.parametrize(("chip", "geometry"), [
    ("eu.seebetter.ini.chips.davis.Davis346red", Geometry(346, 260)),
    ("eu.seebetter.ini.chips.davis.DAVIS240C", Geometry(240, 180)),
    ("eu.seebetter.ini.chips.davis.Davis640", Geometry(640, 480)),
])
def test_davis_layout_skips_aps_imu_and_external_events(chip: str, geometry: Geometry) -> None:
    events = random_events(500, geometry.width, geometry.height)
    raw = davis_records(events, geometry.width)
    extra = np.empty(3, dtype=raw.dtype)
    extra["a"] = [0x80000000 | (5 << 12), 0x80000C00, 0x00000400]  # APS, IMU, external input
    extra["t"] = events["t"][:3]
    mixed = np.concatenate([extra[:1], raw[:200], extra[1:], raw[200:]]).astype(raw.dtype)
    data = header(chip) + mixed.tobytes()
    for chunk_bytes in (8, 100, 1 << 20):
        got_geometry, decoded = read_bytes(data, chunk_bytes)
        assert got_geometry == geometry
        np.testing.assert_array_equal(decoded, events)


def test_dvs128_layout_x_mirrored_and_on_when_bit0_clear() -> None:
    data = header("ch.unizh.ini.jaer.chip.retina.DVS128") + np.array(
        [(0x0000, 10), (0x7F01 | (3 << 1), 20), (0x8000, 30)],
        dtype=[("a", ">u4"), ("t", ">u4")]).tobytes()
    geometry, events = read_events_bytes(data)
    assert geometry == Geometry(128, 128)
    assert events["x"].tolist() == [127, 124]
    assert events["y"].tolist() == [0, 127]
    assert events["p"].tolist() == [1, 0]
    assert events["t"].tolist() == [10, 20]


def read_events_bytes(data: bytes) -> tuple[Geometry | None, np.ndarray]:
    return read_bytes(data)


def test_aedat1_uses_16_bit_addresses() -> None:
    events = random_events(50, 128, 128, seed=4)
    data = b"#!AER-DAT1.0\r\n# DVS128 old file\r\n" + dvs128_records(events, ">u2").tobytes()
    np.testing.assert_array_equal(read_bytes(data, 60)[1], events)


def test_timestamp_wrap_is_unwrapped() -> None:
    events = make_events([(1 << 32) - 10, (1 << 32) + 5], [1, 2], [3, 4], [0, 1])
    data = header("Davis346B") + davis_records(events, 346).tobytes()
    np.testing.assert_array_equal(read_bytes(data, 8)[1], events)


def test_unknown_chip_is_refused_not_guessed() -> None:
    with pytest.raises(FormatError, match="cannot tell the DVS128 from the DAVIS"):
        read_bytes(header("some.lab.MysteryChip"))


def test_out_of_sensor_address_names_the_offset() -> None:
    raw = np.array([(0x1FF << 22, 1)], dtype=[("a", ">u4"), ("t", ">u4")])
    data = header("Davis346red")
    with pytest.raises(FormatError, match=f"byte {len(data)}: .*outside the 346×260"):
        read_bytes(data + raw.tobytes())


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 400), st.integers(8, 4000), st.integers(0, 10**6))
def test_davis_round_trip(n: int, chunk_bytes: int, seed: int) -> None:
    events = random_events(n, 346, 260, seed)
    data = header("Davis346red") + davis_records(events, 346).tobytes()
    np.testing.assert_array_equal(read_bytes(data, chunk_bytes)[1], events)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)),
                                       max_size=4))
def test_truncation_and_corruption_raise_only_format_error(cut: int,
                                                           flips: list[tuple[int, int]]) -> None:
    data = bytearray(header("Davis240C") + davis_records(random_events(100, 240, 180), 240)
                     .tobytes())
    for where, mask in flips:
        data[where % len(data)] ^= mask
    with contextlib.suppress(FormatError):
        read_bytes(bytes(data[: cut % (len(data) + 1)]), 64)


def test_first_record_starting_with_hash_is_data_not_header() -> None:
    """Address 0x230A.... begins with b'#\\n': it must not pass for a header line."""
    events = make_events([5, 6, 7], [185, 3, 4], [140, 5, 6], [0, 1, 0])
    raw = davis_records(events, 346)
    assert raw.tobytes()[:2] == b"#\n"
    np.testing.assert_array_equal(read_bytes(header("Davis346red") + raw.tobytes())[1], events)
