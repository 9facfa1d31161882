"""inspect_file / convert_file, and the ``spikegate inspect`` / ``convert`` commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import read_events
from spikegate.drivers.files.evt3 import Evt3Writer
from spikegate.drivers.files.tools import EventSummary, convert_file, inspect_file
from spikegate.drivers.packet import Geometry, make_events
from spikegate.service.cli import main

from .reference_figures import reference_for

SAMPLES = ["faery_evt2.raw", "expelliarmus_evt3_sample.raw", "tonic_sample_ncars.dat"]


def make_evt3(path, n=5000, seed=0):
    rng = np.random.default_rng(seed)
    events = make_events(np.sort(rng.integers(0, 10**7, n)), rng.integers(0, 64, n),
                         rng.integers(0, 48, n), rng.integers(0, 2, n))
    with open(path, "wb") as f:
        writer = Evt3Writer(f, Geometry(64, 48))
        writer.write(events)
        writer.close()
    return events


@pytest.mark.shared
@pytest.mark.parametrize("name", SAMPLES)
def test_inspect_matches_reference(shared, name):
    ref = reference_for(shared / "data", name)
    info = inspect_file(shared / "data" / name, chunk_bytes=4096)
    for key in ("count", "t_first_us", "t_last_us", "t_min_us", "t_max_us", "x_min", "x_max",
                "y_min", "y_max", "n_on", "n_off", "monotonic"):
        assert info[key] == ref[key], key
    if ref["width"] is None:
        assert info["geometry"] is None
    else:
        assert (info["geometry"]["width"], info["geometry"]["height"]) == (
            ref["width"], ref["height"])


def test_summary_of_chunks_equals_summary_of_whole():
    rng = np.random.default_rng(3)
    events = make_events(rng.integers(0, 1000, 500), rng.integers(0, 9, 500),
                         rng.integers(0, 9, 500), rng.integers(0, 2, 500))
    whole, parts = EventSummary(), EventSummary()
    whole.add(events)
    for chunk in np.array_split(events, 7):
        parts.add(chunk)
    assert whole == parts
    assert not whole.monotonic


def test_inspect_empty_file(tmp_path):
    with open(tmp_path / "empty.raw", "wb") as f:
        Evt3Writer(f, None).close()
    info = inspect_file(tmp_path / "empty.raw")
    assert info["count"] == 0 and info["t_first_us"] is None and info["geometry"] is None


@pytest.mark.parametrize("suffix", [".raw", ".npy", ".npz", ".csv", ".aedat4"])
def test_convert_round_trip(tmp_path, suffix):
    events = make_evt3(tmp_path / "in.raw")
    summary = convert_file(tmp_path / "in.raw", tmp_path / f"out{suffix}")
    assert summary["count"] == len(events)
    header, back = read_events(tmp_path / f"out{suffix}")
    np.testing.assert_array_equal(back, events)
    if suffix in (".raw", ".aedat4"):
        assert header.geometry == Geometry(64, 48)


def test_convert_to_evt2_by_format_name(tmp_path):
    events = make_evt3(tmp_path / "in.raw")
    convert_file(tmp_path / "in.raw", tmp_path / "out.raw", format="evt2")
    header, back = read_events(tmp_path / "out.raw")
    assert header.format == "evt2"
    np.testing.assert_array_equal(back, events)


def test_convert_errors_leave_no_partial_output(tmp_path):
    make_evt3(tmp_path / "in.raw")
    with pytest.raises(FormatError, match="read-only"):
        convert_file(tmp_path / "in.raw", tmp_path / "out.dat", format="dat")
    with pytest.raises(FormatError, match=r"no writable format has the extension '\.xyz'"):
        convert_file(tmp_path / "in.raw", tmp_path / "out.xyz")
    data = (tmp_path / "in.raw").read_bytes()
    (tmp_path / "cut.raw").write_bytes(data[:-1])
    with pytest.raises(FormatError):
        convert_file(tmp_path / "cut.raw", tmp_path / "out.npy")
    assert not (tmp_path / "out.npy").exists()


def test_cli_inspect_json_and_text(tmp_path, capsys):
    events = make_evt3(tmp_path / "in.raw")
    assert main(["inspect", str(tmp_path / "in.raw"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["count"] == len(events) and info["format"] == "evt3"
    assert main(["inspect", str(tmp_path / "in.raw")]) == 0
    out = capsys.readouterr().out
    assert "evt3" in out and f"{len(events):,}" in out and "64x48" in out


def test_cli_convert(tmp_path, capsys):
    events = make_evt3(tmp_path / "in.raw")
    assert main(["convert", str(tmp_path / "in.raw"), str(tmp_path / "o.csv")]) == 0
    assert f"wrote {len(events):,} events" in capsys.readouterr().out
    np.testing.assert_array_equal(read_events(tmp_path / "o.csv")[1], events)


def test_cli_bad_file_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "bad.raw").write_bytes(b"% evt 3.0\n" + b"\x00\x80\x01")
    assert main(["inspect", str(tmp_path / "bad.raw")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.raw: byte" in err
    (tmp_path / "what.bin2").write_bytes(b"hello")
    assert main(["convert", str(tmp_path / "what.bin2"), str(tmp_path / "o.npy")]) == 2
    assert "unknown event file format" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing.raw")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_inspect_memory_does_not_grow_with_file_size(tmp_path):
    import tracemalloc

    make_evt3(tmp_path / "small.raw", n=10_000)
    make_evt3(tmp_path / "large.raw", n=100_000, seed=1)
    peaks = []
    for name in ("small.raw", "large.raw"):
        inspect_file(tmp_path / name, chunk_bytes=1 << 16)  # compile / import outside the trace
        tracemalloc.start()
        info = inspect_file(tmp_path / name, chunk_bytes=1 << 16)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert info["count"] in (10_000, 100_000)
    # 10× the events, the same chunk: the peak is one chunk's events, not the file's
    assert peaks[1] < 2 * peaks[0] + (1 << 20)


@pytest.mark.shared
@pytest.mark.parametrize("suffix", [".raw", ".npy", ".csv"])
@pytest.mark.parametrize("name", ["aermanager_data_sample.aedat4", "faery_evt2.raw",
                                  "expelliarmus_evt3_sample.raw", "tonic_sample_ncars.dat"])
def test_convert_real_files_round_trip(shared, tmp_path, name, suffix):
    # absolute Unix µs (AEDAT4) and sensor clocks alike come back exactly
    src = shared / "data" / name
    _, original = read_events(src)
    convert_file(src, tmp_path / f"out{suffix}")
    _, back = read_events(tmp_path / f"out{suffix}")
    np.testing.assert_array_equal(back, original)


def test_failed_conversion_to_npz_leaves_nothing_open(tmp_path):
    make_evt3(tmp_path / "in.raw")
    data = (tmp_path / "in.raw").read_bytes()
    (tmp_path / "cut.raw").write_bytes(data[:-1])
    with pytest.raises(FormatError):
        convert_file(tmp_path / "cut.raw", tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()
