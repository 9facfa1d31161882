"""An uploaded model is loaded in a separate, limited process: what breaks the loader
is refused with a sentence, and the gateway's process is never at risk."""

from __future__ import annotations

from pathlib import Path

import h5py
import nir
import numpy as np
import pytest

from spikegate.service.model_store import check_model_file


def _write_model(path: Path) -> None:
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Linear(weight=np.ones((2, 3), np.float32)),
            "lif": nir.LIF(tau=np.full(2, 0.02), r=np.ones(2), v_leak=np.zeros(2),
                           v_threshold=np.ones(2), v_reset=np.zeros(2)),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    nir.write(str(path), graph)


async def test_a_valid_model_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "ok.nir"
    _write_model(path)
    assert await check_model_file(path) == 4


async def test_garbage_is_refused_with_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "junk.nir"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(ValueError) as info:
        await check_model_file(path)
    assert str(info.value) and "\n" not in str(info.value)


async def test_a_memory_bomb_is_stopped_in_the_child(tmp_path: Path) -> None:
    path = tmp_path / "bomb.nir"
    _write_model(path)
    with h5py.File(path, "r+") as f:  # a 16 GB weight matrix, stored as a few kB
        group = f["node/nodes/fc"]
        del group["weight"]
        group.create_dataset("weight", shape=(65536, 65536), dtype="f4", chunks=(1024, 1024),
                             compression="gzip", fillvalue=0.0)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ValueError) as info:
        await check_model_file(path)
    assert str(info.value) and "\n" not in str(info.value)
