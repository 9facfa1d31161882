"""Binary websocket frames: round trip, truncation, corruption, size limits."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.net.frames import (
    HEADER_BYTES,
    MAGIC,
    FrameFlag,
    FrameKind,
    decode_frame,
    encode_frame,
    with_missed,
)
from spikegate.drivers.packet import EVENT_DTYPE, SPIKE_DTYPE, make_events


def events_strategy() -> st.SearchStrategy[np.ndarray]:
    return st.lists(
        st.tuples(st.integers(-(2**62), 2**62), st.integers(0, 65535),
                  st.integers(0, 65535), st.integers(0, 255)),
        max_size=60,
    ).map(lambda rows: np.array(rows, dtype=EVENT_DTYPE))


def spikes_strategy() -> st.SearchStrategy[np.ndarray]:
    return st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 2**32 - 1)),
                    max_size=60).map(lambda rows: np.array(rows, dtype=SPIKE_DTYPE))


@settings(max_examples=50, deadline=None)
@given(records=st.one_of(events_strategy(), spikes_strategy()),
       seq=st.integers(0, 2**64 - 1), t0=st.integers(-(2**63), 2**63 - 1),
       ingress=st.integers(0, 2**63 - 1), missed=st.integers(0, 2**32 - 1),
       flags=st.sampled_from([0, 1]))
def test_round_trip(records: np.ndarray, seq: int, t0: int, ingress: int, missed: int,
                    flags: int) -> None:
    buf = encode_frame(records, seq=seq, t0_us=t0, ingress_ns=ingress, missed=missed,
                       flags=flags)
    assert len(buf) == HEADER_BYTES + records.nbytes
    frame = decode_frame(buf)
    assert frame.kind == (FrameKind.EVENTS if records.dtype == EVENT_DTYPE else FrameKind.SPIKES)
    assert (frame.seq, frame.t0_us, frame.ingress_ns, frame.missed) == (seq, t0, ingress, missed)
    assert frame.flags == FrameFlag(flags)
    np.testing.assert_array_equal(frame.records, records)
    assert frame.records.dtype == records.dtype


def test_t0_defaults_to_the_first_record_and_missed_can_be_patched() -> None:
    events = make_events([7, 9], [1, 2])
    buf = encode_frame(events, seq=3)
    assert decode_frame(buf).t0_us == 7 and decode_frame(buf).missed == 0
    patched = with_missed(buf, 12)
    assert decode_frame(patched).missed == 12 and decode_frame(buf).missed == 0
    assert decode_frame(with_missed(buf, 2**40)).missed == 2**32 - 1


def test_the_header_is_what_the_docs_say() -> None:
    events = make_events([5], [1], 2, 1)
    buf = encode_frame(events, seq=9, ingress_ns=11, missed=4, flags=FrameFlag.DECIMATED)
    assert buf[:4] == MAGIC and buf[4] == 1 and buf[5] == 1
    assert struct.unpack_from("<HIIQqq", buf, 6) == (1, 1, 4, 9, 5, 11)
    assert buf[40:] == events.tobytes() and len(buf) == 40 + 13


def offset_of(exc: pytest.ExceptionInfo[FormatError]) -> int:
    match = re.search(r"byte (\d+):", str(exc.value))
    assert match, str(exc.value)
    return int(match.group(1))


@pytest.mark.parametrize(("position", "value", "offset", "words"), [
    (0, b"XGWF", 0, "magic"),
    (4, b"\x02", 4, "version"),
    (5, b"\x07", 5, "kind"),
    (6, b"\x04\x00", 6, "flag"),
    (8, struct.pack("<I", 3), 8, "count"),
    (5, b"\x02", 8, "count"),  # spikes are 12 bytes: 2 × 13 bytes no longer fit
])
def test_corrupt_fields_are_named_with_their_offset(position: int, value: bytes, offset: int,
                                                    words: str) -> None:
    buf = bytearray(encode_frame(make_events([1, 2], [3, 4]), seq=1))
    buf[position:position + len(value)] = value
    with pytest.raises(FormatError, match=words) as exc:
        decode_frame(bytes(buf), "ws client 1")
    assert offset_of(exc) == offset and "ws client 1" in str(exc.value)


def test_size_limits() -> None:
    buf = encode_frame(make_events(np.arange(100), np.zeros(100)))
    with pytest.raises(FormatError, match="over the 1000-byte limit") as exc:
        decode_frame(buf, max_bytes=1000)
    assert offset_of(exc) == 0
    with pytest.raises(FormatError, match="shorter than the 40-byte header"):
        decode_frame(b"SGWF\x01")
    # a huge count in a small frame is refused before anything is allocated
    huge = bytearray(buf)
    struct.pack_into("<I", huge, 8, 0xFFFFFFFF)
    with pytest.raises(FormatError, match="count 4294967295"):
        decode_frame(bytes(huge))


def test_encode_refuses_other_dtypes_and_flags() -> None:
    with pytest.raises(FormatError, match="dtype"):
        encode_frame(np.zeros(3, dtype=np.int64))
    with pytest.raises(FormatError, match="flag"):
        encode_frame(make_events([1], [1]), flags=8)


@settings(max_examples=50, deadline=None)
@given(records=events_strategy(), cut=st.integers(0, 2000))
def test_truncated_frames_always_raise_format_error(records: np.ndarray, cut: int) -> None:
    buf = encode_frame(records)
    cut = cut % (len(buf) + 1)
    if cut == len(buf):
        decode_frame(buf)
        return
    with pytest.raises(FormatError):
        decode_frame(buf[:cut])


@settings(max_examples=60, deadline=None)
@given(records=st.one_of(events_strategy(), spikes_strategy()), data=st.data())
def test_corrupted_frames_decode_or_raise_format_error(records: np.ndarray,
                                                       data: st.DataObject) -> None:
    buf = bytearray(encode_frame(records))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    tail = data.draw(st.binary(max_size=30))
    try:
        frame = decode_frame(bytes(buf) + tail)
    except FormatError as exc:
        assert re.search(r"byte \d+:", str(exc))
    else:
        assert HEADER_BYTES + frame.records.nbytes == len(buf) + len(tail)
