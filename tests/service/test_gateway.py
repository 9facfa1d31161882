"""Every source kind of the config, built by the gateway and run through a pipeline."""

import socket
from pathlib import Path

import numpy as np

from spikegate.drivers.audio.source import write_wav
from spikegate.drivers.net.udp import UdpSource, encode_spif
from spikegate.drivers.synthetic import MovingDisk
from spikegate.service.config import (
    FileSourceConfig,
    PipelineConfig,
    UdpSourceConfig,
    WavSourceConfig,
)
from spikegate.service.gateway import build_pipeline
from tests.conftest import eventually


async def test_file_source_replays_every_event_through_the_core(tmp_path: Path) -> None:
    events = MovingDisk(width=32, height=32, rate_ev_s=50_000).events(0, 200_000, 0)
    path = tmp_path / "rec.npy"
    np.save(path, events)
    cfg = PipelineConfig(source=FileSourceConfig(path=path, speed=None, loop=False,
                                                 packet_events=500), sinks=[])
    pipeline = build_pipeline(cfg)
    await pipeline.warm_up()
    await pipeline.start()
    await eventually(lambda: pipeline.source_done and pipeline.queue.empty())
    await pipeline.close()
    assert pipeline.counters.events == len(events) and pipeline.counters.seq_gaps == 0


async def test_udp_source_feeds_the_core() -> None:
    cfg = PipelineConfig(source=UdpSourceConfig(port=0, width=64, height=64,
                                                layout="no_timestamp"), sinks=[])
    pipeline = build_pipeline(cfg)
    source = pipeline.source
    assert isinstance(source, UdpSource)
    host, port = await source.start()
    await pipeline.warm_up()
    await pipeline.start()
    events = MovingDisk().events(0, 10_000, 0)[:128]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for _ in range(3):
            tx.sendto(encode_spif(events, timestamp=False), (host, port))
    await eventually(lambda: pipeline.counters.events == 3 * 128, what="datagrams in the core")
    await pipeline.close()


async def test_wav_source_through_the_cochlea(tmp_path: Path) -> None:
    rate = 16_000
    t = np.arange(rate // 4) / rate
    write_wav(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), rate)
    cfg = PipelineConfig(source=WavSourceConfig(path=tmp_path / "tone.wav", n_channels=32,
                                                realtime=False), sinks=[])
    pipeline = build_pipeline(cfg)
    assert pipeline.source.geometry.width == 32
    await pipeline.warm_up()
    await pipeline.start()
    await eventually(lambda: pipeline.source_done and pipeline.queue.empty())
    await pipeline.close()
    assert pipeline.counters.events > 0 and pipeline.counters.errors == 0


async def test_recorder_sink_records_the_input_for_exact_replay(tmp_path: Path) -> None:
    from spikegate.drivers.files import read_events
    from spikegate.service.config import DemoSourceConfig, RecorderSinkConfig

    source = DemoSourceConfig(width=32, height=32, rate_ev_s=50_000, realtime=False,
                              duration_s=0.1, packet_us=5_000)
    rec = tmp_path / "rec.aedat4"
    pipeline = build_pipeline(PipelineConfig(source=source,
                                             sinks=[RecorderSinkConfig(path=rec)]))
    await pipeline.warm_up()
    await pipeline.start()
    await eventually(lambda: pipeline.source_done and pipeline.queue.empty())
    await pipeline.close()
    scene = MovingDisk(width=32, height=32, rate_ev_s=50_000)
    rng = np.random.default_rng(scene.seed)
    expected = np.concatenate([scene.events(k * 5_000, (k + 1) * 5_000, rng) for k in range(20)])
    _, replayed = read_events(rec)
    assert np.array_equal(replayed, expected)
    (stats,) = pipeline.status()["sinks"]
    assert stats["events"] == len(expected) and stats["buffer"]["dropped"] == 0
