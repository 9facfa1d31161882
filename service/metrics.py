"""``/metrics`` in Prometheus text format, from a registry of the app's own.

Most figures are read from the pipelines' counters at scrape time by a
custom collector (``GatewayCollector``): nothing on the hot path changes for
them. Latency histograms come from the cumulative buckets every
``LatencyWindow`` keeps (service/stats.py). HTTP requests are counted by a
middleware, labelled by route pattern (never by raw path).

Each app has its own ``CollectorRegistry`` (``app[METRICS].registry``), so
many apps can live in one process (the tests make many).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .keys import GATEWAY
from .pipeline import Pipeline
from .stats import LATENCY_BUCKETS_US, LatencyWindow

PREFIX = "spikegate"


@dataclass(slots=True)
class Metrics:
    registry: CollectorRegistry
    http_requests: Counter


METRICS = web.AppKey("metrics", Metrics)
_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})


def histogram_buckets(window: LatencyWindow) -> tuple[list[tuple[str, float]], float]:
    """Cumulative ``(le, count)`` pairs in seconds and the sum in seconds, for Prometheus."""
    buckets: list[tuple[str, float]] = []
    total = 0
    for bound_us, n in zip((*LATENCY_BUCKETS_US, float("inf")), window.bucket_counts,
                           strict=True):
        total += n
        le = "+Inf" if bound_us == float("inf") else repr(bound_us / 1e6)
        buckets.append((le, total))
    return buckets, window.sum_us / 1e6


class GatewayCollector(Collector):
    """Reads every pipeline's counters when Prometheus scrapes."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def describe(self) -> list[Metric]:
        return []  # names come from collect(); nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        gateway = self.app.get(GATEWAY)
        pipelines: list[Pipeline] = [] if gateway is None else list(gateway.pipelines.values())
        f = _Families()
        for pipeline in pipelines:
            f.add(pipeline)
        yield from f.all()


class _Families:
    def __init__(self) -> None:
        p = PREFIX
        self.up = GaugeMetricFamily(f"{p}_pipeline_up", "1 while the pipeline runs",
                                    labels=["pipeline"])
        self.src_events = CounterMetricFamily(
            f"{p}_source_events", "Events read from the source", labels=["pipeline", "source"])
        self.src_packets = CounterMetricFamily(
            f"{p}_source_packets", "Packets read from the source",
            labels=["pipeline", "source"])
        self.src_rate = GaugeMetricFamily(
            f"{p}_source_events_per_second", "Source event rate over the last second",
            labels=["pipeline", "source"])
        self.core_events = CounterMetricFamily(
            f"{p}_core_events", "Events the core has processed", labels=["pipeline"])
        self.core_packets = CounterMetricFamily(
            f"{p}_core_packets", "Packets the core has processed", labels=["pipeline"])
        self.spikes = CounterMetricFamily(
            f"{p}_output_spikes", "Output spikes (events out of the core)", labels=["pipeline"])
        self.synops = CounterMetricFamily(
            f"{p}_synaptic_operations", "Synaptic operations; rate() gives SynOps/s",
            labels=["pipeline"])
        self.energy = CounterMetricFamily(
            f"{p}_energy_estimate_joules", "Arithmetic energy estimate of the counted "
            "operations (models/energy.py): event-driven, and the dense clock-driven "
            "equivalent of the same network", labels=["pipeline", "mode"])
        self.kernel = CounterMetricFamily(
            f"{p}_kernel_seconds", "Wall time spent in network.step", labels=["pipeline"])
        self.delivered = CounterMetricFamily(
            f"{p}_sink_delivered", "Outputs a sink delivered", labels=["pipeline", "sink"])
        self.drops = CounterMetricFamily(
            f"{p}_dropped", "Items lost, by stage and reason",
            labels=["pipeline", "stage", "component", "reason"])
        self.shed = CounterMetricFamily(
            f"{p}_shed_events", "Events taken out by resource allocation, by reason",
            labels=["pipeline", "reason"])
        self.dropped_events = CounterMetricFamily(
            f"{p}_dropped_events", "Events lost (not packets), by stage",
            labels=["pipeline", "stage"])
        self.depth = GaugeMetricFamily(
            f"{p}_queue_depth", "Items waiting in a bounded queue", labels=["pipeline", "queue"])
        self.capacity = GaugeMetricFamily(
            f"{p}_queue_capacity", "Size of a bounded queue", labels=["pipeline", "queue"])
        self.core_latency = HistogramMetricFamily(
            f"{p}_core_latency_seconds", "Ingress to core output latency",
            labels=["pipeline"])
        self.sink_latency = HistogramMetricFamily(
            f"{p}_sink_latency_seconds", "Ingress to sink delivery latency",
            labels=["pipeline", "sink"])

    def add(self, pipeline: Pipeline) -> None:
        name = pipeline.name
        st = pipeline.status()
        src, core = st["source"], st["core"]
        self.up.add_metric([name], 1.0 if st["state"] == "running" else 0.0)
        self.src_events.add_metric([name, src["name"]], src["events"])
        self.src_packets.add_metric([name, src["name"]], src["packets"])
        self.src_rate.add_metric([name, src["name"]], src["events_per_s"])
        self.core_events.add_metric([name], core["events"])
        self.core_packets.add_metric([name], core["packets"])
        self.spikes.add_metric([name], core["spikes"])
        self.synops.add_metric([name], core["synops"])
        energy = st.get("energy", {})
        if energy:
            self.energy.add_metric([name, "event_driven"], energy["energy_uj"] * 1e-6)
            self.energy.add_metric([name, "dense_clock_driven"], energy["dense_energy_uj"] * 1e-6)
        self.kernel.add_metric([name], pipeline.counters.kernel_s)
        self.drops.add_metric([name, "queue", src["name"], "queue_full"], st["queue"]["dropped"])
        self.drops.add_metric([name, "hub", "hub", "queue_full"], st["hub"]["dropped"])
        self.drops.add_metric([name, "core", "core", "error"], core["errors"])
        self.drops.add_metric([name, "upstream", src["name"], "sequence_gap"],
                              core["packets_lost_upstream"])
        for reason, n in st.get("shed", {}).get("by_reason", {}).items():
            self.shed.add_metric([name, reason], n)
        for stage, n in st.get("accounting", {}).get("dropped", {}).items():
            self.dropped_events.add_metric([name, stage], n)
        self._queue(name, "ingress", st["queue"])
        self._queue(name, "hub", st["hub"])
        buckets, total = histogram_buckets(pipeline.core_latency)
        self.core_latency.add_metric([name], buckets, total)
        for sink, sink_st in zip(pipeline.sinks, st["sinks"], strict=True):
            self.delivered.add_metric([name, sink.name], sink_st["delivered"])
            self.drops.add_metric([name, "sink", sink.name, "buffer_full"],
                                  sink_st["buffer"]["dropped"])
            self.drops.add_metric([name, "sink", sink.name, "delivery_failed"],
                                  sink_st["failed"])
            if "client_drops" in sink_st:
                self.drops.add_metric([name, "client", sink.name, "slow_client"],
                                      sink_st["client_drops"])
            self._queue(name, f"sink:{sink.name}", sink_st["buffer"])
            buckets, total = histogram_buckets(sink.latency)
            self.sink_latency.add_metric([name, sink.name], buckets, total)

    def _queue(self, pipeline: str, queue: str, stats: dict[str, Any]) -> None:
        self.depth.add_metric([pipeline, queue], stats["depth"])
        self.capacity.add_metric([pipeline, queue], stats["capacity"])

    def all(self) -> list[Metric]:
        return [self.up, self.src_events, self.src_packets, self.src_rate, self.core_events,
                self.core_packets, self.spikes, self.synops, self.energy, self.kernel,
                self.delivered,
                self.drops, self.shed, self.dropped_events, self.depth, self.capacity,
                self.core_latency, self.sink_latency]


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def count_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        request.app[METRICS].http_requests.labels(method, route, str(status)).inc()


def setup_metrics(app: web.Application) -> Metrics:
    """A registry for this app, the gateway collector, the request counter, ``/metrics``."""
    registry = CollectorRegistry()
    registry.register(GatewayCollector(app))
    requests = Counter(f"{PREFIX}_http_requests", "HTTP requests by route and status",
                       ["method", "route", "status"], registry=registry)
    app[METRICS] = Metrics(registry, requests)
    app.middlewares.insert(0, count_requests)
    app.router.add_get("/metrics", metrics)
    return app[METRICS]
