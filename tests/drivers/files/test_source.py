"""FileSource: packets, seq numbers, pacing (with a fake clock), looping."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from spikegate.drivers.files import read_events
from spikegate.drivers.files.evt3 import Evt3Writer
from spikegate.drivers.files.source import FileSource
from spikegate.drivers.packet import Geometry, make_events

GEOMETRY = Geometry(64, 48)


def write_evt3(path, events):
    with open(path, "wb") as f:
        writer = Evt3Writer(f, GEOMETRY)
        writer.write(events)
        writer.close()


EVENTS = make_events(1000 + 10 * np.arange(25), np.arange(25) % 64, 3, 1)


async def take(source: FileSource, n_packets: int):
    out = []
    async for packet in source.packets():
        out.append(packet)
        if len(out) == n_packets:
            break
    return out


async def test_packets_cover_the_file_in_order(tmp_path):
    write_evt3(tmp_path / "a.raw", EVENTS)
    source = FileSource(tmp_path / "a.raw", name="cam", packet_events=4, chunk_bytes=16)
    packets = [p async for p in source.packets()]
    assert [p.seq for p in packets] == list(range(len(packets)))
    assert all(0 < len(p) <= 4 for p in packets)
    assert all(p.source == "cam" and p.geometry == Geometry(64, 48) for p in packets)
    np.testing.assert_array_equal(np.concatenate([p.events for p in packets]), EVENTS)
    assert source.stats.packets == len(packets) and source.stats.events == len(EVENTS)


async def test_loop_keeps_time_monotonic(tmp_path):
    write_evt3(tmp_path / "a.raw", EVENTS)
    source = FileSource(tmp_path / "a.raw", packet_events=25, loop=True)
    packets = await take(source, 3)
    t = np.concatenate([p.events["t"] for p in packets])
    span = int(EVENTS["t"][-1] - EVENTS["t"][0])
    assert t[25] == EVENTS["t"][-1] + 1 and t[50] == EVENTS["t"][-1] + span + 2
    assert np.all(np.diff(t) > 0)
    np.testing.assert_array_equal(packets[2].events["x"], EVENTS["x"])
    assert [p.seq for p in packets] == [0, 1, 2] and source.passes == 2


async def test_speed_maps_sensor_time_to_wall_time(tmp_path):
    write_evt3(tmp_path / "a.raw", EVENTS)
    now = [100.0]
    delays = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)
        now[0] += seconds

    source = FileSource(tmp_path / "a.raw", speed=2.0, packet_events=5,
                        clock=lambda: now[0], sleep=fake_sleep)
    packets = [p async for p in source.packets()]
    # each packet is due when its last event's time has passed, at 2× speed
    due = [(int(p.events["t"][-1]) - 1000) / 2e6 for p in packets]
    assert now[0] == pytest.approx(100.0 + due[-1])
    assert sum(delays) == pytest.approx(due[-1])
    assert delays == pytest.approx([due[0]] + [b - a for a, b in itertools.pairwise(due)])


async def test_geometry_from_a_scan_when_the_header_has_none(tmp_path):
    (tmp_path / "a.csv").write_text("t,x,y,p\n1,5,2,1\n2,9,7,0\n")
    source = FileSource(tmp_path / "a.csv")
    assert source.geometry == Geometry(10, 8)
    assert FileSource(tmp_path / "a.csv", geometry=Geometry(32, 32)).geometry == Geometry(32, 32)
    packets = [p async for p in source.packets()]
    np.testing.assert_array_equal(packets[0].events, read_events(tmp_path / "a.csv")[1])


async def test_empty_looping_file_ends(tmp_path):
    write_evt3(tmp_path / "e.raw", EVENTS[:0])
    assert [p async for p in FileSource(tmp_path / "e.raw", loop=True).packets()] == []


def test_bad_arguments_and_missing_file(tmp_path):
    write_evt3(tmp_path / "a.raw", EVENTS)
    with pytest.raises(ValueError, match="packet_events"):
        FileSource(tmp_path / "a.raw", packet_events=0)
    with pytest.raises(ValueError, match="speed"):
        FileSource(tmp_path / "a.raw", speed=0.0)
    with pytest.raises(OSError):
        FileSource(tmp_path / "missing.raw")


async def test_loop_over_an_npy_file(tmp_path):
    # npy records are read-only views of the read; packets get their own copies
    np.save(tmp_path / "a.npy", EVENTS)
    packets = await take(FileSource(tmp_path / "a.npy", packet_events=25, loop=True), 2)
    assert packets[1].events["t"][0] == EVENTS["t"][-1] + 1
    np.testing.assert_array_equal(packets[0].events, EVENTS)
    assert packets[0].events.flags.writeable


def test_any_packet_and_chunk_size_gives_the_file_back(tmp_path_factory):
    import asyncio

    from hypothesis import given, settings
    from hypothesis import strategies as st

    path = tmp_path_factory.mktemp("src") / "a.raw"
    rng = np.random.default_rng(9)
    events = make_events(np.sort(rng.integers(0, 10**6, 700)), rng.integers(0, 64, 700),
                         rng.integers(0, 48, 700), rng.integers(0, 2, 700))
    write_evt3(path, events)

    @settings(max_examples=25, deadline=None)
    @given(packet_events=st.integers(1, 800), chunk_bytes=st.integers(2, 3000))
    def check(packet_events, chunk_bytes):
        source = FileSource(path, packet_events=packet_events, chunk_bytes=chunk_bytes)

        async def collect():
            return [p async for p in source.packets()]

        packets = asyncio.run(collect())
        assert all(len(p) <= packet_events for p in packets)
        assert [p.seq for p in packets] == list(range(len(packets)))
        np.testing.assert_array_equal(np.concatenate([p.events for p in packets]), events)

    check()
