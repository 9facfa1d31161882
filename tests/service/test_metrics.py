"""/metrics: Prometheus text from the app's own registry, read from live counters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from spikegate.service.app import GATEWAY, init
from spikegate.service.metrics import METRICS, histogram_buckets
from spikegate.service.stats import LATENCY_BUCKETS_US, LatencyWindow
from tests.conftest import eventually
from tests.service.test_api import AUTH, TOKEN, make_settings


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def test_metrics_follow_the_pipeline(aiohttp_client: Any, tmp_path: Path) -> None:
    app = init(make_settings(tmp_path))
    client = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    pipeline = app[GATEWAY].pipelines["demo"]
    async with client.ws_connect("/ws/outputs?pipeline=demo&format=json") as ws:
        await ws.receive(timeout=10)  # outputs reach the websocket sink
        await eventually(lambda: pipeline.sinks[0].delivered > 2)
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    found = samples(await resp.text())

    assert value(found, "spikegate_pipeline_up", pipeline="demo") == 1.0
    assert value(found, "spikegate_source_events_total", pipeline="demo", source="demo") > 0
    assert value(found, "spikegate_core_events_total", pipeline="demo") > 0
    assert value(found, "spikegate_synaptic_operations_total", pipeline="demo") > 0
    assert value(found, "spikegate_kernel_seconds_total", pipeline="demo") > 0
    assert value(found, "spikegate_sink_delivered_total", pipeline="demo", sink="ws") > 0
    queue_drops = value(found, "spikegate_dropped_total", pipeline="demo", stage="queue",
                        component="demo", reason="queue_full")
    assert 0 <= queue_drops <= pipeline.queue.dropped  # counters only grow
    assert value(found, "spikegate_dropped_total", pipeline="demo", stage="client",
                 component="ws", reason="slow_client") >= 0
    assert value(found, "spikegate_queue_capacity", pipeline="demo", queue="ingress") == 64
    assert value(found, "spikegate_dropped_events_total", pipeline="demo", stage="queue") >= 0
    assert ("spikegate_queue_depth", (("pipeline", "demo"), ("queue", "sink:ws"))) in found
    n = value(found, "spikegate_sink_latency_seconds_count", pipeline="demo", sink="ws")
    assert n > 0
    assert value(found, "spikegate_sink_latency_seconds_bucket", pipeline="demo", sink="ws",
                 le="+Inf") == n
    assert value(found, "spikegate_core_latency_seconds_count", pipeline="demo") > 0
    assert value(found, "spikegate_http_requests_total", method="GET",
                 route="/ws/outputs", status="101") == 1


async def test_each_app_has_its_own_registry(aiohttp_client: Any, tmp_path: Path) -> None:
    a, b = init(make_settings(tmp_path)), init(make_settings(tmp_path))
    ca, cb = await aiohttp_client(a), await aiohttp_client(b)
    for _ in range(3):
        await ca.get("/api/v1/pipelines/nope")
    await cb.get("/healthz")
    fa = samples(await (await ca.get("/metrics")).text())
    fb = samples(await (await cb.get("/metrics")).text())
    assert value(fa, "spikegate_http_requests_total", method="GET",
                 route="/api/v1/pipelines/{name}", status="404") == 3
    assert ("spikegate_http_requests_total", (("method", "GET"),
            ("route", "/api/v1/pipelines/{name}"), ("status", "404"))) not in fb
    assert a[METRICS].registry is not b[METRICS].registry
    await ca.get("/no/such/path/1")
    await ca.get("/no/such/path/2")
    fa = samples(await (await ca.get("/metrics")).text())
    assert value(fa, "spikegate_http_requests_total", method="GET", route="unmatched",
                 status="404") == 2  # raw paths never become labels


async def test_metrics_behind_the_token_when_reads_are(aiohttp_client: Any,
                                                       tmp_path: Path) -> None:
    client = await aiohttp_client(init(make_settings(tmp_path, read_requires_token=True)))
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers=AUTH)).status == 200
    assert TOKEN not in await (await client.get("/metrics", headers=AUTH)).text()


def test_latency_histogram_is_cumulative() -> None:
    window = LatencyWindow(size=4)
    for latency_us in [10, 60, 60, 999, 5e7]:  # more than the ring holds: still all counted
        window.add_ns(0, now_ns=int(latency_us * 1000))
    buckets, total_s = histogram_buckets(window)
    counts = dict(buckets)
    assert counts["5e-05"] == 1 and counts["0.0001"] == 3 and counts["0.001"] == 4
    assert counts["+Inf"] == 5 and len(buckets) == len(LATENCY_BUCKETS_US) + 1
    assert abs(total_s - (10 + 60 + 60 + 999 + 5e7) / 1e6) < 1e-9


async def test_shed_events_by_reason(aiohttp_client: Any, tmp_path: Path) -> None:
    app = init(make_settings(tmp_path))
    client = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    pipeline = app[GATEWAY].pipelines["demo"]
    pipeline.apply_settings({"roi": [[0, 0, 4, 4]]})  # most of the sensor is outside
    await eventually(lambda: pipeline.status()["shed"]["total"] > 0, what="events shed")
    found = samples(await (await client.get("/metrics")).text())
    assert value(found, "spikegate_shed_events_total", pipeline="demo", reason="roi") > 0
