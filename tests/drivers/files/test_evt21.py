"""EVT 2.1 (no real sample): words built by hand from Prophesee's format description."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import detect
from spikegate.drivers.files.base import concat_events, iter_event_chunks
from spikegate.drivers.files.evt21 import FORMAT, warm_up
from spikegate.drivers.packet import EVENT_DTYPE, Geometry

LEGACY = "% format EVT21;endianness=legacy;height=720;width=1280\n"
STANDARD = "% format EVT21;height=320;width=320\n"


def cd_word(p: int, t_low: int, x_base: int, y: int, mask: int) -> int:
    """A 64-bit EVT 2.1 CD word: type 63..60, t 59..54, x 53..43, y 42..32, mask 31..0."""
    return (p << 60) | (t_low << 54) | (x_base << 43) | (y << 32) | mask


def time_high_word(high: int) -> int:
    return (0x8 << 60) | (high << 32)


def raw_file(words: list[int], header: str) -> bytes:
    body = bytearray()
    for word in words:
        upper, lower = word >> 32, word & 0xFFFF_FFFF
        halves = (upper, lower) if "legacy" in header or "evt 2.1" in header else (lower, upper)
        body += np.asarray(halves, dtype="<u4").tobytes()
    return header.encode() + bytes(body)


def decode_bytes(data: bytes, chunk_bytes: int = 1 << 22) -> np.ndarray:
    _, chunks = iter_event_chunks(io.BytesIO(data), FORMAT, "test.raw", chunk_bytes)
    return concat_events(chunks)


def rows(events: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in events]


WORDS = [cd_word(1, 1, 0, 0, 1),  # before the first TIME_HIGH: skipped
         time_high_word(100),
         cd_word(1, 5, 64, 7, 0b1001),
         (0xA << 60) | (3 << 54) | (1 << 32),  # EXT_TRIGGER
         (0xE << 60) | 12345, (0xF << 60) | 99,  # OTHERS, CONTINUED
         cd_word(0, 63, 1248, 719, 1 << 31),
         time_high_word(101),
         cd_word(0, 0, 32, 1, 0)]  # an empty mask: no event
EXPECTED = [(6405, 64, 7, 1), (6405, 67, 7, 1), (6463, 1279, 719, 0)]


@pytest.mark.parametrize("header", [LEGACY, STANDARD, "% evt 2.1\n"])
def test_hand_built_words(header):
    data = raw_file(WORDS, header)
    assert FORMAT.sniff(data[:4096])
    assert rows(decode_bytes(data)) == EXPECTED


def test_detection_and_geometry(tmp_path):
    (tmp_path / "a.raw").write_bytes(raw_file(WORDS, LEGACY))
    assert detect(tmp_path / "a.raw").name == "evt21"
    with open(tmp_path / "a.raw", "rb") as f:
        header = FORMAT.read_header(f, "a.raw")
    assert header.geometry == Geometry(1280, 720)
    assert header.meta["word_order"] == "upper-first"
    assert FORMAT.read_header(io.BytesIO(raw_file([], STANDARD)), "b").meta["word_order"] == (
        "mask-first")


def test_time_high_wrap():
    top = (1 << 28) - 1
    words = [time_high_word(top), cd_word(1, 2, 0, 0, 1), time_high_word(0),
             cd_word(1, 3, 0, 0, 1)]
    assert [e[0] for e in rows(decode_bytes(raw_file(words, LEGACY)))] == [
        top * 64 + 2, (1 << 34) + 3]


def test_full_masks_and_tiny_chunks():
    rng = np.random.default_rng(5)
    words = [time_high_word(1)]
    for k in range(300):
        if k % 50 == 0:
            words.append(time_high_word(2 + k))
        words.append(cd_word(int(rng.integers(0, 2)), int(rng.integers(0, 64)),
                             32 * int(rng.integers(0, 40)), int(rng.integers(0, 720)),
                             int(rng.integers(0, 1 << 32))))
    data = raw_file(words, LEGACY)
    whole = decode_bytes(data)
    assert len(whole) > 300 * 8
    for chunk_bytes in (3, 8, 13, 4096):
        np.testing.assert_array_equal(decode_bytes(data, chunk_bytes), whole)


def test_truncated_word_is_a_format_error():
    with pytest.raises(FormatError, match="trailing bytes"):
        decode_bytes(raw_file(WORDS, LEGACY)[:-4])


def test_other_version_is_refused():
    with pytest.raises(FormatError, match=r"header says EVT 3\.0, not EVT 2\.1"):
        FORMAT.read_header(io.BytesIO(b"% evt 3.0\n"), "x.raw")


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=600), cut=st.integers(0, 600))
def test_garbage_never_raises_anything_else(body, cut):
    for header in (LEGACY, STANDARD):
        for blob in (header.encode() + body, raw_file(WORDS, header)[:cut] + body[:5]):
            with contextlib.suppress(FormatError):
                assert decode_bytes(blob, 24).dtype == EVENT_DTYPE


def test_warm_up_runs():
    warm_up()
