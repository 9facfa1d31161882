"""AEDAT 4.0: the real sample, the dv-processing TCP capture, writer round trips, bad input."""

from __future__ import annotations

import io
import json
import struct
import tempfile
from pathlib import Path

import lz4.frame
import numpy as np
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import aedat4, detect, read_events
from spikegate.drivers.files.base import concat_events, iter_event_chunks
from spikegate.drivers.packet import EVENT_DTYPE, Geometry, make_events

SAMPLE = "aermanager_data_sample.aedat4"
WIRE = "wire/dv_processing_2.0.4_tcp_stream.first_batches.bin"


def read_bytes(data: bytes, chunk_bytes: int = 1 << 22) -> tuple[Geometry | None, np.ndarray]:
    header, chunks = iter_event_chunks(io.BytesIO(data), aedat4.FORMAT, "mem.aedat4", chunk_bytes)
    return header.geometry, concat_events(chunks)


def write_bytes(
    events: np.ndarray, compression: aedat4.Compression, per_packet: int = 100
) -> bytes:
    out = io.BytesIO()
    writer = aedat4.Aedat4Writer(out, Geometry(640, 480), compression, per_packet)
    writer.write(events)
    writer.close()
    return out.getvalue()


def reference(shared: Path, name: str) -> dict:
    entries = json.loads((shared / "data" / "reference.json").read_text())
    return next(e for e in entries if e["file"] == name)


def random_events(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(
        np.cumsum(rng.integers(0, 50, n)) + 1_600_000_000_000_000,
        rng.integers(0, 640, n), rng.integers(0, 480, n), rng.integers(0, 2, n),
    )


def test_real_sample_matches_reference(shared: Path) -> None:
    path = shared / "data" / SAMPLE
    ref = reference(shared, SAMPLE)
    header, events = read_events(path)
    assert header.format == "aedat4"
    assert header.geometry == Geometry(ref["width"], ref["height"])
    assert len(events) == ref["count"]
    assert int(events["t"][0]) == ref["t_first_us"]
    assert int(events["t"][-1]) == ref["t_last_us"]
    assert int(events["x"].min()) == ref["x_min"] and int(events["x"].max()) == ref["x_max"]
    assert int(events["y"].min()) == ref["y_min"] and int(events["y"].max()) == ref["y_max"]
    assert int((events["p"] == 1).sum()) == ref["n_on"]
    assert int((events["p"] == 0).sum()) == ref["n_off"]
    first = np.load(shared / "data" / f"{SAMPLE}.first1000.npy")
    np.testing.assert_array_equal(events[:1000], first)


def test_real_sample_header_lists_every_stream(shared: Path) -> None:
    with open(shared / "data" / SAMPLE, "rb") as f:
        header = aedat4.FORMAT.read_header(f, SAMPLE)
    assert header.meta["streams"] == "0:EVTS,2:IMUS,3:TRIG"
    assert header.meta["compression"] == "LZ4"
    assert detect(shared / "data" / SAMPLE) is aedat4.FORMAT


@pytest.mark.parametrize("chunk_bytes", [1024, 4096, 65536])
def test_real_sample_chunk_size_invariant(shared: Path, chunk_bytes: int) -> None:
    data = (shared / "data" / SAMPLE).read_bytes()
    _, whole = read_bytes(data)
    _, chunked = read_bytes(data, chunk_bytes)
    np.testing.assert_array_equal(chunked, whole)


def test_tcp_capture_decodes_to_first_events(shared: Path) -> None:
    """dv-processing's NetworkWriter stream: u32 length + IOHeader, then packets."""
    data = (shared / "data" / WIRE).read_bytes()
    size = struct.unpack_from("<I", data, 0)[0]
    header = aedat4.parse_ioheader(data[4:4 + size], "tcp")
    assert header.compression == aedat4.Compression.NONE
    assert header.event_stream_id == 0
    assert header.geometry == Geometry(320, 240)
    pos = 4 + size
    parts = []
    while pos + 8 <= len(data):
        sid, n = struct.unpack_from("<ii", data, pos)
        events = aedat4.decode_packet_payload(data[pos + 8:pos + 8 + n], header.compression,
                                              "tcp", pos + 8)
        assert sid == 0 and events is not None
        parts.append(events)
        pos += 8 + n
    assert pos == len(data)
    events = np.concatenate(parts)
    first = np.load(shared / "data" / f"{SAMPLE}.first1000.npy")
    np.testing.assert_array_equal(events[:1000], first)


def imus_packet(stream_id: int, compression: aedat4.Compression) -> bytes:
    """An IMUS packet with an empty IMU vector (what a reader must skip)."""
    flat = struct.pack("<II4s2xHHHiII", 28, 16, b"IMUS", 6, 8, 4, 6, 4, 0)
    body = aedat4.compress(flat, compression)
    return struct.pack("<ii", stream_id, len(body)) + body


IMU_FIRST_XML = """<dv version="2.0">
    <node name="outInfo" path="/outInfo/">
        <node name="0" path="/outInfo/0/">
            <attr key="originalOutputName" type="string">imu</attr>
            <attr key="typeIdentifier" type="string">IMUS</attr>
        </node>
        <node name="1" path="/outInfo/1/">
            <attr key="originalOutputName" type="string">events</attr>
            <attr key="typeIdentifier" type="string">EVTS</attr>
            <node name="info" path="/outInfo/1/info/">
                <attr key="sizeX" type="int">346</attr>
                <attr key="sizeY" type="int">260</attr>
            </node>
        </node>
    </node>
</dv>
"""


def imu_first_file(events: np.ndarray, compression: aedat4.Compression) -> bytes:
    parts = [aedat4.MAGIC, aedat4.encode_ioheader(compression, IMU_FIRST_XML)]
    for i in range(0, len(events), 50):
        parts.append(imus_packet(0, compression))
        parts.append(aedat4.encode_evts_packet(events[i:i + 50], 1, compression))
    return b"".join(parts)


def test_imu_stream_listed_first_is_skipped(tmp_path: Path) -> None:
    events = random_events(300)
    data = imu_first_file(events, aedat4.Compression.LZ4)
    geometry, decoded = read_bytes(data)
    assert geometry == Geometry(346, 260)
    np.testing.assert_array_equal(decoded, events)
    aedat = pytest.importorskip("aedat")
    path = tmp_path / "imu_first.aedat4"
    path.write_bytes(data)
    peer = np.concatenate([p["events"] for p in aedat.Decoder(str(path)) if "events" in p])
    np.testing.assert_array_equal(peer["t"], events["t"])
    np.testing.assert_array_equal(peer["x"], events["x"])


def test_decode_payload_of_other_type_is_none() -> None:
    body = imus_packet(0, aedat4.Compression.ZSTD)[8:]
    assert aedat4.decode_packet_payload(body, aedat4.Compression.ZSTD, "t") is None


def test_encode_packet_round_trip() -> None:
    events = random_events(77)
    packet = aedat4.encode_evts_packet(events, 5, aedat4.Compression.ZSTD_HIGH)
    sid, size = struct.unpack_from("<ii", packet)
    assert sid == 5 and size == len(packet) - 8
    decoded = aedat4.decode_packet_payload(packet[8:], aedat4.Compression.ZSTD_HIGH, "t")
    np.testing.assert_array_equal(decoded, events)


@pytest.mark.parametrize("compression", list(aedat4.Compression))
def test_written_file_read_by_aedat_peer(tmp_path: Path, compression: aedat4.Compression) -> None:
    aedat = pytest.importorskip("aedat")
    events = random_events(1000, seed=3)
    path = tmp_path / "out.aedat4"
    path.write_bytes(write_bytes(events, compression, per_packet=300))
    decoder = aedat.Decoder(str(path))
    assert decoder.id_to_stream()[0]["width"] == 640
    peer = np.concatenate([p["events"] for p in decoder if "events" in p])
    np.testing.assert_array_equal(peer["t"], events["t"])
    np.testing.assert_array_equal(peer["x"], events["x"])
    np.testing.assert_array_equal(peer["y"], events["y"])
    np.testing.assert_array_equal(peer["on"], events["p"] == 1)


event_arrays = st.integers(0, 400).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n),
        st.lists(st.integers(0, 32767), min_size=n, max_size=n),
        st.lists(st.integers(0, 32767), min_size=n, max_size=n),
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
    )
).map(lambda cols: make_events(*cols))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=event_arrays, compression=st.sampled_from(list(aedat4.Compression)),
       per_packet=st.integers(1, 500))
def test_write_read_round_trip(events: np.ndarray, compression: aedat4.Compression,
                               per_packet: int) -> None:
    geometry, decoded = read_bytes(write_bytes(events, compression, per_packet))
    assert geometry == Geometry(640, 480)
    assert decoded.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(decoded, events)


def _read_or_format_error(data: bytes) -> np.ndarray | None:
    try:
        return read_bytes(data, chunk_bytes=512)[1]
    except FormatError:
        return None


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(0, 10_000), compression=st.sampled_from(list(aedat4.Compression)))
def test_truncation_raises_only_format_error(cut: int, compression: aedat4.Compression) -> None:
    events = random_events(200, seed=1)
    data = write_bytes(events, compression, per_packet=40)
    decoded = _read_or_format_error(data[: cut % (len(data) + 1)])
    if decoded is not None:  # a cut on a packet boundary reads a prefix
        np.testing.assert_array_equal(decoded, events[: len(decoded)])


@settings(max_examples=80, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1,
                      max_size=4),
       compression=st.sampled_from(list(aedat4.Compression)))
def test_corruption_raises_only_format_error(flips: list[tuple[int, int]],
                                             compression: aedat4.Compression) -> None:
    data = bytearray(imu_first_file(random_events(120, seed=2), compression))
    for where, mask in flips:
        data[where % len(data)] ^= mask
    _read_or_format_error(bytes(data))


def test_bad_magic_and_header_errors() -> None:
    with pytest.raises(FormatError, match="byte 0"):
        read_bytes(b"#!AER-DAT3.1\r\n" + b"\0" * 20)
    with pytest.raises(FormatError, match="too large"):
        read_bytes(aedat4.MAGIC + struct.pack("<I", 1 << 30))
    with pytest.raises(FormatError, match="truncated IOHeader"):
        read_bytes(aedat4.MAGIC + struct.pack("<I", 100) + b"\0" * 10)
    with pytest.raises(FormatError, match="IOHE"):
        aedat4.parse_ioheader(b"\x08\0\0\0EVTS" + b"\0" * 16, "h")


def test_undeclared_stream_and_huge_packet_are_format_errors() -> None:
    head = aedat4.MAGIC + aedat4.encode_ioheader(aedat4.Compression.NONE, IMU_FIRST_XML)
    with pytest.raises(FormatError, match="undeclared stream id 7"):
        read_bytes(head + aedat4.encode_evts_packet(random_events(3), 7, 0))
    with pytest.raises(FormatError, match="packet size"):
        read_bytes(head + struct.pack("<ii", 1, 2**31 - 1))


@pytest.mark.parametrize("compression", [aedat4.Compression.LZ4, aedat4.Compression.ZSTD])
def test_written_file_read_by_dv_processing(tmp_path: Path,
                                            compression: aedat4.Compression) -> None:
    dv = pytest.importorskip("dv_processing")
    events = random_events(700, seed=4)
    path = tmp_path / "out.aedat4"
    path.write_bytes(write_bytes(events, compression, per_packet=256))
    reader = dv.io.MonoCameraRecording(str(path))
    assert tuple(reader.getEventResolution()) == (640, 480)
    # read from our FTAB data table
    assert tuple(reader.getTimeRange()) == (int(events["t"][0]), int(events["t"][-1]))
    batches = []
    while reader.isRunning():
        batch = reader.getNextEventBatch()
        if batch is None:
            break
        batches.append(batch.numpy())
    peer = np.concatenate(batches)
    np.testing.assert_array_equal(peer["timestamp"], events["t"])
    np.testing.assert_array_equal(peer["x"], events["x"])
    np.testing.assert_array_equal(peer["y"], events["y"])
    np.testing.assert_array_equal(peer["polarity"], events["p"])


class NonSeekable(io.RawIOBase):
    """A write-only pipe-like sink."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def test_data_table_written_on_seekable_files_only() -> None:
    events = random_events(50)
    with_table = write_bytes(events, aedat4.Compression.LZ4)
    with io.BytesIO(with_table) as f:
        position = int(aedat4.FORMAT.read_header(f, "t").meta["data_table_position"])
    assert 0 < position < len(with_table)
    pipe = NonSeekable()
    writer = aedat4.Aedat4Writer(pipe, Geometry(640, 480), aedat4.Compression.LZ4, 100)
    writer.write(events)
    writer.close()
    with io.BytesIO(bytes(pipe.data)) as f:
        assert aedat4.FORMAT.read_header(f, "t").meta["data_table_position"] == "-1"
    field = len(aedat4.MAGIC) + 40  # the int64 data-table position, patched on close
    assert bytes(pipe.data[:field]) == with_table[:field]
    assert bytes(pipe.data[field + 8:]) == with_table[field + 8:position]
    np.testing.assert_array_equal(read_bytes(bytes(pipe.data))[1], events)


@pytest.mark.parametrize("split", [1, 9, 1000, 20_000])
def test_tcp_capture_through_the_stream_decoder(shared: Path, split: int) -> None:
    """The body decoder a live source can reuse: bytes in any split, state carried."""
    data = (shared / "data" / WIRE).read_bytes()
    size = struct.unpack_from("<I", data, 0)[0]
    header = aedat4.parse_ioheader(data[4:4 + size], "tcp")
    decoder = aedat4.Aedat4Decoder(header, 4 + size, "tcp")
    pending = b""
    offset = 4 + size
    parts = []
    for i in range(4 + size, len(data), split):
        pending += data[i:i + split]
        events, used = decoder.decode(memoryview(pending), offset, False)
        parts.append(events)
        offset += used
        pending = pending[used:]
    assert pending == b""
    first = np.load(shared / "data" / f"{SAMPLE}.first1000.npy")
    np.testing.assert_array_equal(np.concatenate(parts)[:1000], first)


def test_two_event_streams_read_the_lowest_id_only() -> None:
    xml = IMU_FIRST_XML.replace(
        '        <node name="0" path="/outInfo/0/">\n'
        '            <attr key="originalOutputName" type="string">imu</attr>\n'
        '            <attr key="typeIdentifier" type="string">IMUS</attr>',
        '        <node name="0" path="/outInfo/0/">\n'
        '            <attr key="originalOutputName" type="string">events</attr>\n'
        '            <attr key="typeIdentifier" type="string">EVTS</attr>')
    first, second = random_events(40, seed=6), random_events(30, seed=7)
    data = b"".join([aedat4.MAGIC, aedat4.encode_ioheader(aedat4.Compression.NONE, xml),
                     aedat4.encode_evts_packet(second, 1, 0),
                     aedat4.encode_evts_packet(first, 0, 0)])
    geometry, decoded = read_bytes(data)
    assert geometry is None  # stream 0 names no sensor size
    np.testing.assert_array_equal(decoded, first)


def test_file_without_event_stream_has_no_events() -> None:
    xml = IMU_FIRST_XML.replace(">EVTS<", ">TRIG<")
    data = b"".join([aedat4.MAGIC, aedat4.encode_ioheader(aedat4.Compression.LZ4, xml),
                     imus_packet(0, aedat4.Compression.LZ4)])
    geometry, decoded = read_bytes(data)
    assert geometry is None and len(decoded) == 0


@pytest.mark.parametrize("compression", [aedat4.Compression.LZ4, aedat4.Compression.LZ4_HIGH])
def test_highly_compressible_packets_read_back(compression: aedat4.Compression) -> None:
    # identical events compress far beyond the decoder's first 4-fold output cap and its
    # 3-fold chunk output estimate: both fall back / grow and stay exact
    n = 50_000
    events = make_events(np.full(n, 7), np.full(n, 3), np.full(n, 2), np.ones(n))
    data = write_bytes(events, compression, per_packet=20_000)
    for chunk_bytes in (1 << 22, 4096):
        np.testing.assert_array_equal(read_bytes(data, chunk_bytes)[1], events)


def test_lz4_context_reusable_after_a_bad_packet() -> None:
    lz4 = aedat4.Compression.LZ4
    good = aedat4.encode_evts_packet(random_events(50), 0, lz4)[8:]
    ioheader = aedat4.encode_ioheader(lz4, aedat4.make_info_xml(None, lz4))
    decoder = aedat4.Aedat4Decoder(aedat4.parse_ioheader(ioheader[4:], "mem"), 0, "mem")
    for bad in (good[:-7], good[:20] + bytes(40)):
        packet = struct.pack("<ii", 0, len(bad)) + bad
        with pytest.raises(FormatError):
            decoder.decode(memoryview(packet), 0, True)
        packet = struct.pack("<ii", 0, len(good)) + good
        events, used = decoder.decode(memoryview(packet), 0, True)
        assert used == len(packet)
        np.testing.assert_array_equal(events, random_events(50))


# --- the fast LZ4 path (kernels calling liblz4) against the Python path ---

fast_only = pytest.mark.skipif(not aedat4._FAST_LZ4, reason="no liblz4 for the kernels")


def read_both_paths(data: bytes, chunk_bytes: int) -> tuple[object, object]:
    """(fast result, Python-path result): events, or the FormatError class for an error."""
    results: list[object] = []
    for fast in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(aedat4, "_FAST_LZ4", fast and aedat4._FAST_LZ4)
            patch.setattr(aedat4, "_FAST_ZSTD", fast and aedat4._FAST_ZSTD)
            try:
                results.append(read_bytes(data, chunk_bytes)[1])
            except FormatError:
                results.append(FormatError)
    return results[0], results[1]


def assert_same(fast: object, slow: object) -> None:
    if isinstance(fast, np.ndarray) and isinstance(slow, np.ndarray):
        np.testing.assert_array_equal(fast, slow)
    else:
        assert fast is slow


def codec_files(events: np.ndarray, fast: aedat4.Compression, high: aedat4.Compression
                ) -> list[tuple[bytes, np.ndarray]]:
    """Files of ``events`` in both levels of one codec, 1 to 20 000 events a packet, and
    one with an IMU packet first: (bytes, the events they hold)."""
    files = [(write_bytes(events, c, per_packet=p), events)
             for c in (fast, high) for p in (1, 700, 20_000)]
    files.append((imu_first_file(events[:500], fast), events[:500]))
    return files


def assert_files_decode(files: list[tuple[bytes, np.ndarray]]) -> None:
    for data, expected in files:
        for chunk_bytes in (1 << 22, 5000):
            np.testing.assert_array_equal(read_bytes(data, chunk_bytes)[1], expected)


def refuse_python_lz4(*args: object) -> bytes:
    raise AssertionError("python-lz4 path used")


def refuse_python_decompress(*args: object) -> bytes:
    raise AssertionError("Python decompression path used")


@pytest.mark.skipif(not aedat4._FAST_ZSTD, reason="no libzstd for the kernels")
def test_fast_path_decodes_zstd_frames_without_python() -> None:
    events = random_events(30_000, seed=12)
    files = codec_files(events, aedat4.Compression.ZSTD, aedat4.Compression.ZSTD_HIGH)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aedat4, "decompress", refuse_python_decompress)
        assert_files_decode(files)


@pytest.mark.parametrize("options", [
    {"write_content_size": False}, {"write_checksum": True}, {"level": 19}, {"concatenated": 1},
])
def test_other_zstd_frames_decode_the_same_on_both_paths(options: dict[str, object]) -> None:
    events = random_events(9000, seed=13)
    parts = [aedat4.MAGIC, aedat4.encode_ioheader(aedat4.Compression.ZSTD, IMU_FIRST_XML)]
    concatenated = options.pop("concatenated", 0)
    compressor = zstandard.ZstdCompressor(**options)  # type: ignore[arg-type]
    for i in range(0, len(events), 3000):
        body = compressor.compress(aedat4.encode_evts_flatbuffer(events[i:i + 3000]))
        if concatenated:  # a second frame after the first: zstandard reads the first only
            body += compressor.compress(b"more")
        parts += [imus_packet(0, aedat4.Compression.ZSTD), struct.pack("<ii", 1, len(body)),
                  body]
    fast, slow = read_both_paths(b"".join(parts), 1 << 22)
    assert_same(fast, slow)
    if not concatenated:
        assert isinstance(fast, np.ndarray)
        np.testing.assert_array_equal(fast, events)


@fast_only
def test_fast_path_decodes_plain_frames_without_python_lz4(shared: Path) -> None:
    """Plain frames (the sample's, ours with content size, multi-block, linked) never reach
    python-lz4."""
    events = random_events(30_000, seed=5)
    files = codec_files(events, aedat4.Compression.LZ4, aedat4.Compression.LZ4_HIGH)
    sample = (shared / "data" / SAMPLE).read_bytes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aedat4, "_FAST_LZ4", False)
        files.append((sample, read_bytes(sample)[1]))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aedat4, "_decompress_lz4", refuse_python_lz4)
        assert_files_decode(files)


@pytest.mark.parametrize("options", [
    {}, {"store_size": False}, {"block_linked": False},
    {"block_size": lz4.frame.BLOCKSIZE_MAX4MB, "store_size": False},
    {"block_size": lz4.frame.BLOCKSIZE_MAX1MB, "compression_level": 9},
])
def test_frame_header_checksum_matches_liblz4(options: dict[str, object]) -> None:
    frame = np.frombuffer(lz4.frame.compress(b"spikegate" * 50, **options), dtype=np.uint8)
    descriptor = 10 if frame[4] & 0x08 else 2
    assert int(frame[4 + descriptor]) == (aedat4._xxh32_short(frame, 4, descriptor) >> 8) & 0xFF


@pytest.mark.parametrize("options", [
    {"content_checksum": True}, {"block_checksum": True}, {"block_linked": False},
    {"block_size": lz4.frame.BLOCKSIZE_MAX256KB, "store_size": False},
])
def test_other_frame_kinds_decode_the_same_on_both_paths(options: dict[str, object]) -> None:
    events = random_events(9000, seed=6)
    parts = [aedat4.MAGIC, aedat4.encode_ioheader(aedat4.Compression.LZ4, IMU_FIRST_XML)]
    for i in range(0, len(events), 3000):
        body = lz4.frame.compress(aedat4.encode_evts_flatbuffer(events[i:i + 3000]), **options)
        parts += [imus_packet(0, aedat4.Compression.LZ4), struct.pack("<ii", 1, len(body)), body]
    fast, slow = read_both_paths(b"".join(parts), 1 << 22)
    assert_same(fast, slow)
    assert isinstance(fast, np.ndarray)
    np.testing.assert_array_equal(fast, events)


@settings(max_examples=80, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1,
                      max_size=4),
       cut=st.integers(0, 10**6), chunk_bytes=st.sampled_from([300, 4096, 1 << 22]),
       compression=st.sampled_from(list(aedat4.Compression)))
def test_fast_and_python_paths_agree_on_damaged_files(
        flips: list[tuple[int, int]], cut: int, chunk_bytes: int,
        compression: aedat4.Compression) -> None:
    data = bytearray(imu_first_file(random_events(400, seed=7), compression))
    for where, mask in flips:
        data[where % len(data)] ^= mask
    fast, slow = read_both_paths(bytes(data[: len(data) - cut % 40]), chunk_bytes)
    assert_same(fast, slow)


def read_file_chunks(path: Path, chunk_bytes: int) -> np.ndarray | str:
    """Events read from a file on disk (the memory-mapped loop), or the error's sentence."""
    try:
        with open(path, "rb") as f:
            _, chunks = iter_event_chunks(f, aedat4.FORMAT, "mem.aedat4", chunk_bytes)
            return concat_events(chunks)
    except FormatError as exc:
        return str(exc)


def read_memory_chunks(data: bytes, chunk_bytes: int) -> np.ndarray | str:
    """The same through an in-memory file (the read loop)."""
    try:
        return read_bytes(data, chunk_bytes)[1]
    except FormatError as exc:
        return str(exc)


@pytest.mark.parametrize("chunk_bytes", [64, 1000, 1 << 22])
def test_mapped_file_reads_like_the_read_loop(tmp_path: Path, chunk_bytes: int) -> None:
    events = random_events(3000, seed=8)
    data = imu_first_file(events, aedat4.Compression.LZ4)
    path = tmp_path / "f.aedat4"
    for cut in (0, 1, 9, 200, len(data) - len(aedat4.MAGIC) - 10):
        path.write_bytes(data[: len(data) - cut])
        mapped = read_file_chunks(path, chunk_bytes)
        read = read_memory_chunks(data[: len(data) - cut], chunk_bytes)
        if isinstance(read, str):
            assert mapped == read
        else:
            assert isinstance(mapped, np.ndarray)
            np.testing.assert_array_equal(mapped, read)
    path.write_bytes(data)
    np.testing.assert_array_equal(read_file_chunks(path, chunk_bytes), events)


def unaligned_evts_flatbuffer(events: np.ndarray) -> bytes:
    """An EVTS flatbuffer whose structs start 4 bytes off an 8-byte boundary."""
    flat = aedat4.encode_evts_flatbuffer(events)
    size = struct.unpack_from("<I", flat)[0]
    # the events uoffset (at byte 24) skips 4 bytes of padding before the vector
    return (struct.pack("<I", size + 4) + flat[4:24] + struct.pack("<I", 8) + bytes(4)
            + flat[28:])


@pytest.mark.parametrize("negative", [False, True])
def test_unaligned_event_vector_decodes_the_same_on_both_paths(negative: bool) -> None:
    assert aedat4._OUT_WORDS_DTYPE.itemsize == EVENT_DTYPE.itemsize
    events = random_events(2000, seed=9)
    events["t"][::7] -= 2**62  # negative timestamps: the high word's sign bit
    parts = [aedat4.MAGIC, aedat4.encode_ioheader(aedat4.Compression.LZ4, IMU_FIRST_XML)]
    for i in range(0, len(events), 500):
        flat = bytearray(unaligned_evts_flatbuffer(events[i:i + 500]))
        if negative and i == 1000:
            flat[36 + 16 * 3 + 11] = 0x80  # y of the fourth event: negative int16
        body = lz4.frame.compress(bytes(flat))
        parts += [struct.pack("<ii", 1, len(body)), body]
    fast, slow = read_both_paths(b"".join(parts), 1 << 22)
    assert_same(fast, slow)
    if negative:
        assert fast is FormatError
    else:
        assert isinstance(fast, np.ndarray)
        np.testing.assert_array_equal(fast, events)
        if aedat4._FAST_LZ4:  # and the kernel took every packet itself
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(aedat4, "_decompress_lz4", refuse_python_lz4)
                np.testing.assert_array_equal(read_bytes(b"".join(parts))[1], events)


def test_pooled_outputs_never_overwrite_chunks_still_referenced(tmp_path: Path) -> None:
    """Output buffers are reused only once nothing refers to them: chunks kept whole, kept
    through a field view only, or dropped, all keep their events."""
    events = random_events(20_000, seed=10)
    path = tmp_path / "f.aedat4"
    path.write_bytes(write_bytes(events, aedat4.Compression.LZ4, per_packet=300))
    for _ in range(2):  # the second pass starts with buffers pooled by the first
        kept: list[tuple[np.ndarray, np.ndarray]] = []
        n = 0
        with open(path, "rb") as f:
            _, chunks = iter_event_chunks(f, aedat4.FORMAT, "f.aedat4", 8192)
            for i, chunk in enumerate(chunks):
                if i % 3 == 0:
                    kept.append((chunk, chunk.copy()))
                elif i % 3 == 1:
                    kept.append((chunk["t"], chunk["t"].copy()))
                np.testing.assert_array_equal(chunk, events[n:n + len(chunk)])
                n += len(chunk)
        assert n == len(events) and len(kept) > 10
        for held, copy in kept:
            np.testing.assert_array_equal(held, copy)


@settings(max_examples=40, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1,
                      max_size=3),
       chunk_bytes=st.sampled_from([512, 1 << 22]))
def test_mapped_file_and_read_loop_agree_on_damaged_files(
        flips: list[tuple[int, int]], chunk_bytes: int) -> None:
    data = bytearray(imu_first_file(random_events(300, seed=11), aedat4.Compression.LZ4))
    for where, mask in flips:
        data[where % len(data)] ^= mask
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.aedat4"
        path.write_bytes(bytes(data))
        mapped = read_file_chunks(path, chunk_bytes)
    read = read_memory_chunks(bytes(data), chunk_bytes)
    if isinstance(read, str) or isinstance(mapped, str):
        assert isinstance(read, str) == isinstance(mapped, str)
    else:
        np.testing.assert_array_equal(mapped, read)
