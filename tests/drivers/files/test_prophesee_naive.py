"""The EVT 2.0 / 3.0 kernels equal the naive decoders on random word streams, in any chunking."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import evt2, evt3
from spikegate.drivers.files.base import concat_events, iter_event_chunks

from .naive_prophesee import decode_evt2, decode_evt3

EVT3_KINDS = [0x0, 0x0, 0x1, 0x2, 0x2, 0x2, 0x2, 0x3, 0x4, 0x5, 0x6, 0x6, 0x7, 0x8, 0x8, 0xA,
              0xE, 0xF]
EVT2_KINDS = [0x0, 0x1, 0x0, 0x1, 0x8, 0xA, 0xE, 0xF, 0x3]


def evt3_words():
    """Streams a sensor could send (small rows and columns, whole vector groups), with noise."""
    small = st.integers(0, 40)
    pol = st.sampled_from([0, 0x800])
    piece = st.one_of(
        small.map(lambda c: 0x8000 | c),  # TIME_HIGH (small: repeats, steps back, wraps)
        st.integers(0, 0xFFF).map(lambda c: 0x6000 | c),  # TIME_LOW
        small.map(lambda c: 0x0000 | c),  # ADDR_Y
        st.tuples(small, pol).map(lambda a: [0x2000 | a[0] | a[1]] * 3),  # ADDR_X run
        st.tuples(small, pol).map(lambda a: 0x3000 | a[0] | a[1]),  # VECT_BASE_X
        st.integers(0, (1 << 32) - 1).map(  # VECT_12, VECT_12, VECT_8
            lambda m: [0x4000 | m & 0xFFF, 0x4000 | m >> 12 & 0xFFF, 0x5000 | m >> 24]),
        st.tuples(st.sampled_from(EVT3_KINDS), st.integers(0, 0xFFF)).map(  # any word
            lambda kc: kc[0] << 12 | kc[1]),
    )

    def flatten(parts: list) -> list[int]:
        out: list[int] = []
        for part in parts:
            out.extend(part if isinstance(part, list) else [part])
        return out

    start = st.tuples(small, small).map(lambda hy: [0x8000 | hy[0], 0x0000 | hy[1]])
    stream = st.tuples(start, st.lists(piece, max_size=120)).map(lambda s: [s[0], *s[1]])
    # mostly a proper start (TIME_HIGH, then a row); sometimes noise from the first word
    return st.one_of(stream, stream, st.lists(piece, max_size=120)).map(flatten)


def rows(events: np.ndarray) -> list[tuple]:
    return [(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"])) for e in events]


def decode(fmt, header: bytes, body: bytes, chunk_bytes: int) -> np.ndarray:
    _, chunks = iter_event_chunks(io.BytesIO(header + body), fmt, "naive.raw", chunk_bytes)
    return concat_events(chunks)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=evt3_words(), chunk_bytes=st.integers(2, 64),
       geometry=st.sampled_from([None, (64, 32), (1280, 720)]))
def test_evt3_kernel_equals_naive(words, chunk_bytes, geometry):
    header = b"% evt 3.0\n"
    if geometry:
        header = f"% format EVT3;width={geometry[0]};height={geometry[1]}\n".encode()
    width, height = geometry or (2048, 2048)
    expected = decode_evt3(words, width, height)
    body = np.asarray(words, dtype="<u2").tobytes()
    truncated_vector = False
    try:
        got = rows(decode(evt3.FORMAT, header, body, chunk_bytes))
    except FormatError:
        truncated_vector = True
    if truncated_vector:
        # only a VECT_12 in the last two words may end the stream early
        assert any(w >> 12 == 0x4 for w in words[-2:])
        with pytest.raises(FormatError, match=r"truncated EVT 3\.0 vector"):
            decode(evt3.FORMAT, header, body, 1 << 20)
        return
    assert got == expected


@settings(max_examples=100, deadline=None)
@given(words=st.lists(st.tuples(st.sampled_from(EVT2_KINDS), st.integers(0, (1 << 28) - 1)).map(
    lambda kc: kc[0] << 28 | kc[1]), max_size=300), chunk_bytes=st.integers(3, 64))
def test_evt2_kernel_equals_naive(words, chunk_bytes):
    body = np.asarray(words, dtype="<u4").tobytes()
    assert rows(decode(evt2.FORMAT, b"% evt 2.0\n", body, chunk_bytes)) == decode_evt2(words)


def random_evt3_stream(seed: int, n_pieces: int = 3000) -> list[int]:
    """A long sensor-like stream: time steps, rows, X runs, whole vectors, some noise."""
    rng = np.random.default_rng(seed)
    words = [0x8000 | 7, 0x0000 | 3]
    high = 7
    for _ in range(n_pieces):
        r = rng.random()
        if r < 0.05:
            high = (high + int(rng.integers(0, 3))) & 0xFFF
            words += [0x8000 | high, 0x6000]
        elif r < 0.15:
            words.append(0x6000 | int(rng.integers(0, 4096)))
        elif r < 0.35:
            words.append(int(rng.integers(0, 40)))
        elif r < 0.7:
            words += [0x2000 | int(rng.integers(0, 4096))] * int(rng.integers(1, 4))
        elif r < 0.8:
            words.append(0x3000 | int(rng.integers(0, 4096)) & 0xFBF)
        elif r < 0.95:
            m = int(rng.integers(0, 1 << 32))
            words += [0x4000 | m & 0xFFF, 0x4000 | m >> 12 & 0xFFF, 0x5000 | m >> 24]
        else:
            words.append(int(rng.integers(0, 1 << 16)))
    return words


@pytest.mark.parametrize("seed", range(3))
def test_evt3_long_streams_equal_naive(seed):
    words = random_evt3_stream(seed)
    if any(w >> 12 == 0x4 for w in words[-2:]):
        words += [0x5000, 0x5000]  # no truncated vector at the end
    body = np.asarray(words, dtype="<u2").tobytes()
    for width, height in ((2048, 2048), (640, 32)):
        header = f"% format EVT3;width={width};height={height}\n".encode()
        expected = decode_evt3(words, width, height)
        assert len(expected) > 1000
        for chunk_bytes in (5, 1 << 20):
            assert rows(decode(evt3.FORMAT, header, body, chunk_bytes)) == expected
