"""The recorder sink: record → replay gives the same events, bit for bit."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spikegate.drivers.audio.cochlea import CochleaConfig
from spikegate.drivers.audio.source import WavSource, write_wav
from spikegate.drivers.errors import FormatError
from spikegate.drivers.files import read_events
from spikegate.drivers.files.recorder import Recorder, writable_format
from spikegate.drivers.packet import EventPacket, Geometry, make_events
from tests.conftest import make_packet

GEOMETRY = Geometry(64, 48)
CASES = [("rec.aedat4", None, "aedat4"), ("rec.raw", None, "evt3"),
         ("rec.raw", "evt2", "evt2"), ("rec.npy", None, "npy")]


async def packets_of(packets: list[EventPacket]) -> AsyncIterator[EventPacket]:
    for packet in packets:
        yield packet


def sample_packets(n_packets: int = 5, t0_us: int = 1_600_000_000_000_000) -> list[EventPacket]:
    return [
        make_packet(200, geometry=GEOMETRY, seq=i, seed=i, t0_us=t0_us + i * 10_000, dt_us=7)
        for i in range(n_packets)
    ]


@pytest.mark.parametrize(("filename", "format", "read_as"), CASES)
async def test_record_then_replay_is_bit_exact(
    tmp_path: Path, filename: str, format: str | None, read_as: str
) -> None:
    packets = sample_packets()
    recorder = Recorder(tmp_path / filename, format)
    stats = await recorder.consume(packets_of(packets))
    assert stats.packets == 5 and stats.events == 1000 and stats.dropped_total == 0
    header, events = read_events(tmp_path / filename, read_as)
    np.testing.assert_array_equal(events, np.concatenate([p.events for p in packets]))
    if read_as in ("aedat4", "evt3"):
        assert header.geometry is not None and header.geometry[:2] == (64, 48)


async def test_record_real_events(tmp_path: Path, shared: Path) -> None:
    ref = np.load(shared / "data/aermanager_data_sample.aedat4.first1000.npy")
    packets = [EventPacket(ref[i : i + 300].copy(), "cam", Geometry(320, 240), seq=k)
               for k, i in enumerate(range(0, 1000, 300))]
    for name in ("real.aedat4", "real.raw"):
        async with Recorder(tmp_path / name) as recorder:
            for packet in packets:
                await recorder.write(packet)
        np.testing.assert_array_equal(read_events(tmp_path / name)[1], ref)


async def test_record_a_live_cochlea(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    write_wav(wav, 0.5 * np.sin(2 * np.pi * 1000 * np.arange(4000) / 16_000), 16_000)
    source = WavSource(wav, CochleaConfig(n_channels=32), block_samples=512)
    packets = [p async for p in source.packets()]
    await Recorder(tmp_path / "cochlea.aedat4").consume(packets_of(packets))
    _, events = read_events(tmp_path / "cochlea.aedat4")
    np.testing.assert_array_equal(events, np.concatenate([p.events for p in packets]))


async def test_unwritable_packet_is_counted_and_recording_goes_on(tmp_path: Path) -> None:
    first = EventPacket(make_events([100, 200], [1, 2], 3, 1), "cam", GEOMETRY, seq=0)
    backwards = EventPacket(make_events([50], [1], 3, 1), "cam", GEOMETRY, seq=1)
    later = EventPacket(make_events([300], [4], 5, 0), "cam", GEOMETRY, seq=2)
    recorder = Recorder(tmp_path / "rec.raw")
    await recorder.consume(packets_of([first, backwards, later]))
    assert recorder.stats.dropped == {"unwritable": 1}
    assert "packet 1 of cam" in recorder.stats.last_error
    _, events = read_events(tmp_path / "rec.raw")
    np.testing.assert_array_equal(events, np.concatenate([first.events, later.events]))


async def test_no_packets_still_make_a_readable_file(tmp_path: Path) -> None:
    await Recorder(tmp_path / "empty.aedat4", geometry=GEOMETRY).close()
    assert len(read_events(tmp_path / "empty.aedat4")[1]) == 0


def test_unknown_extension_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no writable event format"):
        writable_format(tmp_path / "x.unknown")
    assert writable_format(tmp_path / "x.raw").name == "evt3"


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 50), min_size=1, max_size=6),
       format_case=st.sampled_from(CASES))
async def test_any_packetisation_round_trips(
    tmp_path: Path, sizes: list[int], format_case: tuple[str, str | None, str]
) -> None:
    filename, format, read_as = format_case
    rng = np.random.default_rng(len(sizes))
    n = sum(sizes)
    events = make_events(np.cumsum(rng.integers(0, 5000, n)), rng.integers(0, 64, n),
                         rng.integers(0, 48, n), rng.integers(0, 2, n))
    bounds = np.cumsum([0, *sizes])
    packets = [EventPacket(events[a:b].copy(), "s", GEOMETRY, seq=i)
               for i, (a, b) in enumerate(itertools.pairwise(bounds))]
    path = tmp_path / f"h-{len(sizes)}-{n}-{filename}"
    await Recorder(path, format).consume(packets_of(packets))
    np.testing.assert_array_equal(read_events(path, read_as)[1], events)
