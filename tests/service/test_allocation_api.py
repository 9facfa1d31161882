"""PATCH /api/v1/pipelines/{name}: precision, roi, latency_budget_ms, sparsity, live."""

from __future__ import annotations

from typing import Any

import pytest

from spikegate.service.app import GATEWAY, init
from tests.conftest import eventually
from tests.service.test_api import AUTH, make_settings, new_pipeline


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Any) -> Any:
    app = init(make_settings(tmp_path))
    c = await aiohttp_client(app)
    await app[GATEWAY].wait_ready()
    return c


async def patch(client: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await client.patch("/api/v1/pipelines/demo", headers=AUTH, json=body)
    return resp.status, await resp.json()


async def test_the_knobs_change_live_and_show_in_status(client: Any) -> None:
    pipeline = client.app[GATEWAY].pipelines["demo"]
    tasks = list(pipeline._tasks)
    status, view = await patch(client, {
        "precision": "int8", "roi": [[0, 0, 32, 32]], "latency_budget_ms": 20,
        "sparsity": 0.3, "shed_policy": "refractory"})
    assert status == 200, view
    settings = view["settings"]
    assert settings["precision"] == "int8" and settings["roi"] == [[0, 0, 32, 32]]
    assert settings["latency_budget_ms"] == 20 and settings["sparsity"] == 0.3
    assert pipeline._tasks == tasks and pipeline.state == "running"
    await eventually(lambda: pipeline.status()["shed"]["by_reason"].get("roi", 0) > 0,
                     what="events outside the ROI shed")
    await eventually(lambda: pipeline.status()["precision"]["layers"] == {"tracker": "int8"})
    body = await (await client.get("/api/v1/status")).json()
    (st,) = body["pipelines"]
    assert st["shed"]["total"] > 0 and st["connectivity"]["sparsity"] == 0.3
    assert st["energy"]["synops"] > 0 and st["energy"]["dense_energy_uj"] > 0
    assert st["allocation"]["keep_fraction"] <= 1.0

    status, view = await patch(client, {"precision": None, "roi": None,
                                        "latency_budget_ms": None, "sparsity": None})
    assert status == 200, view
    assert not {"precision", "roi", "latency_budget_ms", "sparsity"} & set(view["settings"])
    await eventually(lambda: pipeline.status()["connectivity"]["sparsity"] == 0.0)


async def test_a_following_roi_and_one_bare_rectangle(client: Any) -> None:
    status, view = await patch(client, {"roi": {"follow": "centroid", "size": [16, 16]}})
    assert status == 200 and view["settings"]["roi"] == {"follow": "centroid", "size": [16, 16]}
    status, view = await patch(client, {"roi": [8, 8, 16, 16]})
    assert status == 200 and view["settings"]["roi"] == [[8, 8, 16, 16]]


async def test_bad_knobs_are_4xx_sentences_and_change_nothing(client: Any) -> None:
    pipeline = client.app[GATEWAY].pipelines["demo"]
    await patch(client, {"latency_budget_ms": 50})
    before = pipeline.settings()
    cases = [
        ({"roi": [[40, 0, 40, 8]]}, "roi[0] = [40, 0, 40, 8] reaches past the 64x64 sensor"),
        ({"roi": []}, "list of rectangles is empty"),
        ({"roi": {"follow": "centroid", "size": [100, 8]}}, "larger than the 64x64 sensor"),
        ({"latency_budget_ms": 0}, "body: latency_budget_ms"),
        ({"sparsity": 1.0}, "body: sparsity"),
        ({"sparsity": -0.1}, "body: sparsity"),
        ({"precision": "int4"}, "body: precision"),
        ({"precision": {"lif": "int8"}}, "precision: no weight or neuron layer named 'lif'"),
        ({"rate_budget_ev_s": 0}, "body: rate_budget_ev_s"),
        ({"shed_policy": None}, "shed_policy cannot be cleared"),
        ({"roi": [[0, 0, 8, 8]], "rate_budget_ev_s": [1.0, 2.0]}, "2 values for 1 region"),
    ]
    for body, needle in cases:
        status, answer = await patch(client, body)
        assert 400 <= status < 500, body
        assert needle in answer["error"], (body, answer)
    assert pipeline.settings() == before
    assert pipeline.state == "running"


async def test_the_config_takes_the_same_fields(client: Any) -> None:
    body = new_pipeline("x", allocation={"roi": [[0, 0, 8, 8]], "latency_budget_ms": 30,
                                         "precision": "float16", "sparsity": 0.2})
    resp = await client.post("/api/v1/pipelines?start=1", headers=AUTH, json=body)
    assert resp.status == 201, await resp.text()
    view = await resp.json()
    assert view["settings"]["roi"] == [[0, 0, 8, 8]]
    assert view["settings"]["precision"] == "float16"
    bad = new_pipeline("y", allocation={"roi": [[60, 60, 8, 8]]})
    resp = await client.post("/api/v1/pipelines", headers=AUTH, json=bad)
    assert resp.status == 422 and "reaches past" in (await resp.json())["error"]


async def test_the_policy_layer_over_rest(client: Any) -> None:
    pipeline = client.app[GATEWAY].pipelines["demo"]
    status, view = await patch(client, {"auto": {"energy_uw": 0.001}})
    assert status == 200, view
    assert view["settings"]["auto"] == {"energy_uw": 0.001}
    await eventually(lambda: pipeline.status()["allocation"].get("auto", {}).get("precision")
                     == "int8",
                     what="the policy choosing int8 for a tiny budget")
    auto = pipeline.status()["allocation"]["auto"]
    assert auto["keep_fraction"] < 1.0 and "µW" in auto["why"]
    for body, needle in [({"auto": {"energy_uw": 1, "synops_per_s": 1}}, "exactly one budget"),
                         ({"precision": "int8"}, "both set the precision"),
                         ({"auto": {"energy_uw": 0}}, "body: auto.energy_uw")]:
        status, answer = await patch(client, body)
        assert status == 422 and needle in answer["error"], answer
    status, view = await patch(client, {"auto": None})
    assert status == 200 and "auto" not in view["settings"]
    await eventually(lambda: pipeline.status()["precision"]["layers"] == {"tracker": "float32"},
                     what="the precision back to the configured one")


@pytest.mark.shared
async def test_the_knobs_on_the_real_nmnist_cnn(client: Any, shared: Any) -> None:
    cnn = shared / "models" / "nir-paper" / "cnn" / "cnn_sinabs.nir"
    body = new_pipeline("cnn", model={"kind": "nir", "path": str(cnn), "profile": "sinabs",
                                      "dt_s": 0.001})
    body["source"]["rate_ev_s"] = 20_000
    resp = await client.post("/api/v1/pipelines?start=1", headers=AUTH, json=body)
    assert resp.status == 201, await resp.text()
    pipeline = client.app[GATEWAY].pipelines["cnn"]
    await eventually(lambda: pipeline.counters.packets > 20, what="input to compare on")
    resp = await client.patch("/api/v1/pipelines/cnn", headers=AUTH,
                              json={"precision": "int8", "sparsity": 0.5})
    assert resp.status == 200, await resp.text()
    await eventually(lambda: "versus_float32_full" in pipeline.status(), timeout_s=30,
                     what="the comparison with float32")
    st = pipeline.status()
    assert set(st["precision"]["layers"].values()) == {"int8"}
    assert st["precision"]["memory_bytes"] < st["precision"]["memory_bytes_float32"]
    assert {v["format"] for v in st["connectivity"]["layers"].values()} <= {"csr", "dense"}
    versus = st["versus_float32_full"]
    assert "agreement" in versus, versus
    assert versus["synops"] <= versus["synops_reference"]
    energy = st["energy"]
    assert energy["synops"] > 0 and energy["dense_energy_uj"] > energy["energy_uj"] > 0
    resp = await client.patch("/api/v1/pipelines/cnn", headers=AUTH,
                              json={"precision": {"nope": "int8"}})
    assert resp.status == 422 and "no weight or neuron layer named 'nope'" in (
        await resp.json())["error"]


async def test_metrics_carry_the_energy_estimate(client: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    pipeline = client.app[GATEWAY].pipelines["demo"]
    await eventually(lambda: pipeline.status()["energy"]["energy_uj"] > 0)
    text = await (await client.get("/metrics")).text()
    found = {(s.name, s.labels.get("mode")): s.value
             for fam in text_string_to_metric_families(text) for s in fam.samples}
    event = found[("spikegate_energy_estimate_joules_total", "event_driven")]
    dense = found[("spikegate_energy_estimate_joules_total", "dense_clock_driven")]
    assert 0 < event < dense
