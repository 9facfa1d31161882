"""Model uploads: validated by loading, size-limited, stored as data, deleted."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import aiohttp
import nir
import numpy as np
import pytest

from spikegate.service.app import init
from tests.service.test_api import AUTH, make_settings


def write_nir(path: Path, n: int = 3) -> bytes:
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([4])),
               "fc": nir.Affine(weight=np.ones((n, 4)), bias=np.zeros(n)),
               "lif": nir.LIF(tau=np.full(n, 0.02), r=np.ones(n), v_leak=np.zeros(n),
                              v_threshold=np.ones(n)),
               "output": nir.Output(output_type=np.array([n]))},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    nir.write(str(path), graph)
    return path.read_bytes()


@pytest.fixture
def nir_bytes(tmp_path: Path) -> bytes:
    return write_nir(tmp_path / "src.nir")


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> Any:
    return await aiohttp_client(init(make_settings(tmp_path, max_upload_bytes=64 * 1024)))


def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


async def test_upload_list_get_delete(client: Any, nir_bytes: bytes, tmp_path: Path) -> None:
    assert (await (await client.get("/api/v1/models")).json()) == {"models": []}
    resp = await client.post("/api/v1/models?name=net.nir", data=nir_bytes, headers=AUTH)
    assert resp.status == 201, await resp.text()
    info = await resp.json()
    assert info["name"] == "net.nir" and info["size_bytes"] == len(nir_bytes)
    assert info["layers"] == 4 and len(info["sha256"]) == 64
    stored = models_dir(tmp_path) / "net.nir"
    assert stored.read_bytes() == nir_bytes
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600  # data, never executable

    listed = (await (await client.get("/api/v1/models")).json())["models"]
    assert [m["name"] for m in listed] == ["net.nir"]
    assert (await (await client.get("/api/v1/models/net.nir")).json())["sha256"] == info["sha256"]

    resp = await client.post("/api/v1/models?name=net.nir", data=nir_bytes, headers=AUTH)
    assert resp.status == 409 and "exists already" in (await resp.json())["error"]
    resp = await client.post("/api/v1/models?name=net.nir&replace=true", data=nir_bytes,
                             headers=AUTH)
    assert resp.status == 201

    resp = await client.delete("/api/v1/models/net.nir", headers=AUTH)
    assert resp.status == 200 and (await resp.json()) == {"deleted": "net.nir"}
    assert not stored.exists()
    resp = await client.delete("/api/v1/models/net.nir", headers=AUTH)
    assert resp.status == 404 and (await resp.json())["error"] == "no model named 'net.nir'"
    assert (await client.get("/api/v1/models/net.nir")).status == 404


async def test_multipart_upload(client: Any, nir_bytes: bytes, tmp_path: Path) -> None:
    form = aiohttp.FormData()
    form.add_field("file", nir_bytes, filename="multi.nir",
                   content_type="application/octet-stream")
    resp = await client.post("/api/v1/models", data=form, headers=AUTH)
    assert resp.status == 201, await resp.text()
    assert (models_dir(tmp_path) / "multi.nir").is_file()
    form = aiohttp.FormData()
    form.add_field("other", b"x", filename="x.nir")
    resp = await client.post("/api/v1/models", data=form, headers=AUTH)
    assert resp.status == 400 and "part named 'file'" in (await resp.json())["error"]


async def test_refused_uploads_leave_nothing(client: Any, nir_bytes: bytes,
                                            tmp_path: Path) -> None:
    cases = [
        ("bad.nir", b"#!/bin/sh\nrm -rf /\n", 422, "not a NIR graph the core can load"),
        ("cut.nir", nir_bytes[: len(nir_bytes) // 2], 422, "not a NIR graph"),
        ("empty.nir", b"", 422, "empty"),
        ("big.nir", b"\0" * (65 * 1024), 413, "limit"),
        ("../escape.nir", nir_bytes, 400, "plain file name"),
        (".hidden.nir", nir_bytes, 400, "plain file name"),
        ("script.py", nir_bytes, 400, "ending in .nir"),
    ]
    for name, data, status, needle in cases:
        resp = await client.post("/api/v1/models", params={"name": name}, data=data,
                                 headers=AUTH)
        assert resp.status == status, (name, await resp.text())
        error = (await resp.json())["error"]
        assert needle in error, error
        assert ".part" not in error and "upload-" not in error
    resp = await client.post("/api/v1/models", data=nir_bytes, headers=AUTH)
    assert resp.status == 400 and "?name=" in (await resp.json())["error"]
    root = models_dir(tmp_path)
    assert not root.exists() or list(root.iterdir()) == []
    assert not (tmp_path / "escape.nir").exists()


async def test_chunked_upload_over_the_limit_is_413(client: Any, tmp_path: Path) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"\0" * 4096

    resp = await client.post("/api/v1/models?name=stream.nir", data=chunks(), headers=AUTH)
    assert resp.status == 413 and "limit" in (await resp.json())["error"]
    root = models_dir(tmp_path)
    assert not root.exists() or list(root.iterdir()) == []


async def test_a_model_in_use_is_not_deleted(client: Any, nir_bytes: bytes,
                                             tmp_path: Path) -> None:
    from spikegate.service.app import GATEWAY
    from spikegate.service.config import NirModelConfig, PipelineConfig

    await client.post("/api/v1/models?name=used.nir", data=nir_bytes, headers=AUTH)
    gateway = client.app[GATEWAY]
    path = models_dir(tmp_path) / "used.nir"
    gateway.configs["user"] = PipelineConfig(name="user", model=NirModelConfig(path=path))
    resp = await client.delete("/api/v1/models/used.nir", headers=AUTH)
    assert resp.status == 409 and "user" in (await resp.json())["error"]
    del gateway.configs["user"]


async def test_pipeline_naming_a_missing_model_is_a_422(client: Any) -> None:
    body = {"name": "n", "model": {"kind": "nir", "path": "absent.nir"}}
    resp = await client.post("/api/v1/pipelines", json=body, headers=AUTH)
    assert resp.status == 422 and "upload it first" in (await resp.json())["error"]
