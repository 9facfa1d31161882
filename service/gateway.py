"""The gateway: pipelines built from config, warmed up, started and stopped together."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from spikegate.drivers.packet import Geometry
from spikegate.drivers.synthetic import MovingDisk, SyntheticDvsSource
from spikegate.models.demo import TrackerNetwork

from .config import (
    DemoSourceConfig,
    DvTcpSourceConfig,
    FileSourceConfig,
    HttpSinkConfig,
    IngestSourceConfig,
    NirModelConfig,
    PipelineConfig,
    RecorderSinkConfig,
    Settings,
    SinkConfig,
    SourceConfig,
    TrackerModelConfig,
    UdpSourceConfig,
    WavSourceConfig,
    WebSocketSinkConfig,
)
from .decoding import ArgmaxDecoder, Decoder, TrackerDecoder
from .pipeline import Core, Pipeline, Source
from .sinks import HttpSink, RecorderSink, Sink, WebSocketSink
from .warmup import warm_up_all

log = logging.getLogger("spikegate.gateway")


def build_source(cfg: SourceConfig) -> Source:
    if isinstance(cfg, DemoSourceConfig):
        scene = MovingDisk(cfg.width, cfg.height, cfg.radius_px, cfg.speed_px_s,
                           cfg.rate_ev_s, cfg.noise_fraction, cfg.seed)
        return SyntheticDvsSource(scene, cfg.name, cfg.packet_us, cfg.realtime, cfg.duration_s)
    if isinstance(cfg, FileSourceConfig):
        from spikegate.drivers.files.source import FileSource

        return FileSource(cfg.path, name=cfg.name, format=cfg.format, speed=cfg.speed,
                          loop=cfg.loop, packet_events=cfg.packet_events)
    if isinstance(cfg, UdpSourceConfig):
        from spikegate.drivers.net.udp import UdpSource

        return UdpSource(cfg.host, cfg.port, name=cfg.name, layout=cfg.layout,
                         geometry=Geometry(cfg.width, cfg.height))
    if isinstance(cfg, DvTcpSourceConfig):
        from spikegate.drivers.net.dv_tcp import DvTcpSource

        return DvTcpSource(cfg.host, cfg.port, name=cfg.name,
                           geometry=Geometry(cfg.width, cfg.height))
    if isinstance(cfg, WavSourceConfig):
        from spikegate.drivers.audio.cochlea import CochleaConfig
        from spikegate.drivers.audio.source import WavSource

        return WavSource(cfg.path, CochleaConfig(n_channels=cfg.n_channels), name=cfg.name,
                         realtime=cfg.realtime, speed=cfg.speed)
    if isinstance(cfg, IngestSourceConfig):
        from spikegate.drivers.net.ws_ingest import IngestSource

        return IngestSource(Geometry(cfg.width, cfg.height), name=cfg.name,
                            max_pending_frames=cfg.max_pending_frames)
    raise ValueError(f"unknown source kind {cfg!r}")


def build_core(cfg: PipelineConfig, source: Source) -> tuple[Core, Decoder]:
    interval_us = int(cfg.command_interval_ms * 1000)
    model = cfg.model
    if isinstance(model, TrackerModelConfig):
        net = TrackerNetwork(source.geometry, model.n_x, model.n_y, model.tau_ms, model.v_th,
                             gain=model.gain)
        return net, TrackerDecoder(net.output_size, net.decode, interval_us)
    if isinstance(model, NirModelConfig):
        from spikegate.models.network import load_model

        from .cores import ModelCore

        network = load_model(model.path, model.profile, model.dt_s, model.reset)
        core = ModelCore(network, source.geometry, model.fit, model.hold_last_step)
        return core, ArgmaxDecoder(core.output_size, interval_us)
    raise ValueError(f"pipeline {cfg.name}: unknown model kind {model.kind!r}")


def build_sink(cfg: SinkConfig) -> Sink:
    if isinstance(cfg, WebSocketSinkConfig):
        return WebSocketSink(cfg.name, cfg.buffer, cfg.client_buffer)
    if isinstance(cfg, HttpSinkConfig):
        return HttpSink(cfg.name, cfg.url, cfg.timeout_s, cfg.retries, cfg.backoff_s,
                        cfg.backoff_max_s, cfg.buffer, cfg.policy)
    if isinstance(cfg, RecorderSinkConfig):
        return RecorderSink(cfg.name, str(cfg.path), cfg.format, cfg.buffer)
    raise ValueError(f"unknown sink kind {cfg!r}")


def build_pipeline(cfg: PipelineConfig) -> Pipeline:
    source = build_source(cfg.source)
    core, decoder = build_core(cfg, source)
    sinks = [build_sink(s) for s in cfg.sinks]
    pipeline = Pipeline(cfg.name, source, core, decoder, sinks, cfg.queue_size,
                        cfg.queue_policy, allocation=cfg.allocation)
    pipeline.inline_events = cfg.inline_events
    for sink in sinks:
        if isinstance(sink, RecorderSink):  # records the input, before the queue
            pipeline.taps.add(sink.tap)
    return pipeline


class PipelineExistsError(ValueError):
    """A pipeline of that name exists already."""


class Gateway:
    """Every pipeline of a ``Settings``; ``ready`` once all are warmed up and running.

    Pipelines can be added and removed while it runs (``create_pipeline``,
    ``delete_pipeline``); ``configs`` keeps the config each was built from.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.configs: dict[str, PipelineConfig] = {p.name: p for p in settings.pipelines}
        self.pipelines: dict[str, Pipeline] = {
            p.name: build_pipeline(p) for p in settings.pipelines
        }
        self.ready = False
        self._ready_event = asyncio.Event()

    def pipeline(self, name: str) -> Pipeline:
        """The pipeline called ``name``; ``LookupError`` with a sentence when there is none."""
        try:
            return self.pipelines[name]
        except KeyError:
            raise LookupError(f"no pipeline named {name!r}") from None

    async def create_pipeline(self, cfg: PipelineConfig, start: bool = False) -> Pipeline:
        """Build ``cfg``, warm it up, and start it if ``start``; the name must be new."""
        if cfg.name in self.pipelines:
            raise PipelineExistsError(f"a pipeline named {cfg.name!r} exists already")
        pipeline = build_pipeline(cfg)
        self.pipelines[cfg.name] = pipeline  # the name is taken while it warms up
        self.configs[cfg.name] = cfg
        try:
            await pipeline.warm_up()
            if start:
                await pipeline.start()
        except BaseException:
            self.pipelines.pop(cfg.name, None)
            self.configs.pop(cfg.name, None)
            await pipeline.close()
            raise
        log.info("pipeline %s created", cfg.name, extra={"pipeline": cfg.name})
        return pipeline

    async def delete_pipeline(self, name: str) -> None:
        """Stop ``name`` (draining it), free its core thread, and forget it."""
        pipeline = self.pipeline(name)
        del self.pipelines[name]
        self.configs.pop(name, None)
        await pipeline.close()
        log.info("pipeline %s deleted", name, extra={"pipeline": name})

    async def start(self) -> None:
        await asyncio.to_thread(warm_up_all)
        initial = list(self.pipelines.values())  # not those created over REST meanwhile
        await asyncio.gather(*(p.warm_up() for p in initial))
        for pipeline in initial:
            if self.pipelines.get(pipeline.name) is pipeline:  # unless deleted meanwhile
                await pipeline.start()
        self.ready = True
        self._ready_event.set()
        log.info("gateway ready: %s", ", ".join(self.pipelines))

    async def wait_ready(self) -> None:
        """Return once every pipeline is warmed up and running."""
        await self._ready_event.wait()

    async def stop(self) -> None:
        self.ready = False
        self._ready_event.clear()
        await asyncio.gather(*(p.close() for p in self.pipelines.values()))

    def status(self) -> dict[str, Any]:
        return {"ready": self.ready,
                "pipelines": [p.status() for p in self.pipelines.values()]}
