"""EVT 3.0: hand-built words, chunking, writer rules, bad input (shared tests: test_raw_evt)."""

from __future__ import annotations

import io
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files.evt3 import FORMAT
from spikegate.drivers.packet import EVENT_DTYPE, Geometry, make_events

from .format_bytes import decode_bytes as decode_bytes_of
from .format_bytes import rows, write_bytes

decode_bytes = partial(decode_bytes_of, FORMAT)
encode = partial(write_bytes, FORMAT)


def raw_file(words: list[int], header: str = "% evt 3.0\n") -> bytes:
    return header.encode() + np.asarray(words, dtype="<u2").tobytes()


TH, TL, Y, X, BASE, V12, V8, TRIG, OTHERS, CONT = (
    0x8000, 0x6000, 0x0000, 0x2000, 0x3000, 0x4000, 0x5000, 0xA000, 0xE000, 0xF000)
ON = 0x800


def test_time_low_backwards_is_taken_as_is():
    # OpenEB: under one TIME_HIGH, the last TIME_LOW holds even when it steps back
    events = decode_bytes(raw_file([TH | 5, TL | 811, Y | 3, X | 10, TL | 800, X | 11]))
    assert rows(events) == [(5 * 4096 + 811, 10, 3, 0), (5 * 4096 + 800, 11, 3, 0)]


def test_time_high_resets_low_only_when_it_changes():
    words = [TH | 5, TL | 100, Y | 1, X | 1, TH | 5, X | 2, TH | 6, X | 3]
    assert [e[0] for e in rows(decode_bytes(raw_file(words)))] == [
        5 * 4096 + 100, 5 * 4096 + 100, 6 * 4096]


def test_time_high_wrap_adds_a_loop():
    words = [TH | 4095, TL | 7, Y | 0, X | 0, TH | 0, TL | 1, X | 1, TH | 2047, TH | 0, X | 2]
    t = [e[0] for e in rows(decode_bytes(raw_file(words)))]
    # 2047 -> 0 is a drop of less than 2048: not a wrap
    assert t == [4095 * 4096 + 7, (1 << 24) + 1, 1 << 24]


def test_words_before_first_time_high_are_skipped():
    words = [Y | 1, X | 5, TL | 3, TH | 2, Y | 1, X | 6]
    assert rows(decode_bytes(raw_file(words))) == [(2 * 4096, 6, 1, 0)]


def test_vector_and_skipped_word_types():
    mask = 0b1000_0000_0000_0000_0000_0001_0000_0101  # bits 0, 2, 8, 31
    words = [TH | 1, TL | 9, TRIG | 0x101, Y | 4, OTHERS | 3, CONT | 7, BASE | ON | 64,
             V12 | (mask & 0xFFF), V12 | ((mask >> 12) & 0xFFF), V8 | ((mask >> 24) & 0xFF),
             V8 | 0xFF,  # a VECT_8 on its own: state only, no event (OpenEB)
             X | 3]
    t = 4096 + 9
    assert rows(decode_bytes(raw_file(words))) == [
        (t, 64, 4, 1), (t, 66, 4, 1), (t, 72, 4, 1), (t, 95, 4, 1), (t, 3, 4, 0)]


def test_vector_base_advances_by_32():
    words = [TH | 1, Y | 0, BASE | 0, V12 | 1, V12, V8, V12 | 1, V12, V8]
    assert [e[1] for e in rows(decode_bytes(raw_file(words)))] == [0, 32]


def test_geometry_checks_follow_openeb():
    header = "% format EVT3;height=4;width=64\n"
    words = [TH | 1, Y | 9, X | 1,  # row outside the sensor: dropped
             0x1000 | 2, X | 2,  # an EM row: X words emit nothing
             Y | 2, BASE | 40, V12 | 1, V12, V8,  # 40 + 32 > 64: vector dropped
             BASE | 32, V12 | 1, V12, V8, X | 3]
    assert rows(decode_bytes(raw_file(words, header))) == [(4096, 32, 2, 0), (4096, 3, 2, 0)]


def test_truncated_vector_is_a_format_error():
    with pytest.raises(FormatError, match=r"byte \d+: truncated EVT 3.0 vector"):
        decode_bytes(raw_file([TH | 1, Y | 0, BASE | 0, V12 | 1, V12]))


def test_odd_byte_count_is_a_format_error():
    with pytest.raises(FormatError, match="trailing bytes"):
        decode_bytes(raw_file([TH | 1]) + b"\x00")


def test_header_geometry_forms():
    for header, expected in [
        ("% evt 3.0\n% geometry 640x480\n", Geometry(640, 480)),
        ("% format EVT3;height=720;width=1280\n", Geometry(1280, 720)),
        ("% evt 3.0\n% plugin_name hal_plugin_imx636_evk4\n", Geometry(1280, 720)),
        ("% evt 3.0\n% system_ID 64\n", Geometry(320, 320)),
        ("% evt 3.0\n", None),
    ]:
        assert FORMAT.read_header(io.BytesIO(header.encode()), "h").geometry == expected


def test_words_vs_tiny_chunks():
    rng = np.random.default_rng(1)
    n = 3000
    events = make_events(np.sort(rng.integers(0, 1 << 26, n)), rng.integers(0, 64, n),
                         rng.integers(0, 8, n), rng.integers(0, 2, n))
    events = np.sort(events, order=["t", "y", "p", "x"], kind="stable")
    data = encode(events, Geometry(64, 8))
    whole = decode_bytes(data)
    np.testing.assert_array_equal(whole, events)
    for chunk_bytes in (2, 3, 5, 7, 64):
        np.testing.assert_array_equal(decode_bytes(data, chunk_bytes), whole)


def test_dense_rows_use_vectors():
    events = make_events(np.full(32, 7), np.arange(32), 3, 1)
    data = encode(events, Geometry(64, 8))
    assert len(data.split(b"% end\n", 1)[1]) == 2 * (2 + 1 + 4)  # time, row, one vector group
    np.testing.assert_array_equal(decode_bytes(data), events)


def test_writer_rejects_unordered_and_out_of_range():
    with pytest.raises(FormatError, match="event 1: t 3 µs goes backwards"):
        encode(make_events([5, 3], [0, 0]), None)
    with pytest.raises(FormatError, match="event 0: x = 70"):
        encode(make_events([5], [70]), Geometry(64, 8))


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=400), cut=st.integers(0, 400))
def test_garbage_decodes_or_raises_format_error(data, cut):
    for blob in (raw_file([]) + data, raw_file([]) + data[:cut]):
        try:
            events = decode_bytes(blob, chunk_bytes=64)
        except FormatError:
            continue
        assert events.dtype == EVENT_DTYPE


def test_headers_without_an_evt_line_follow_the_sensor():
    from spikegate.drivers.files import evt2

    gen3 = b"% plugin_name hal_plugin_gen3_fx3\n% system_ID 21\n"
    gen41 = b"% plugin_name hal_plugin_gen41_evk3\n% system_ID 48\n"
    assert evt2.FORMAT.sniff(gen3) and not FORMAT.sniff(gen3)
    assert FORMAT.sniff(gen41) and not evt2.FORMAT.sniff(gen41)
    assert not FORMAT.sniff(b"% Data file containing CD events.\n% plugin_name gen41\n")
