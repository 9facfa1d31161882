import numpy as np
import pytest

from spikegate.drivers.packet import EVENT_DTYPE
from spikegate.drivers.synthetic import MovingDisk, SyntheticDvsSource


def test_scene_is_deterministic_and_in_bounds() -> None:
    scene = MovingDisk(width=32, height=24, rate_ev_s=100_000, seed=3)
    a, b = scene.events(0, 10_000, 0), scene.events(0, 10_000, 0)
    assert a.dtype == EVENT_DTYPE and np.array_equal(a, b)
    assert 800 < len(a) < 1200  # Poisson around 1000
    assert np.all(np.diff(a["t"]) >= 0)
    assert a["x"].max() < 32 and a["y"].max() < 24 and set(np.unique(a["p"])) <= {0, 1}


def test_leading_edge_is_on() -> None:
    # the tour starts moving right: ON events lie right of the centre, OFF left
    scene = MovingDisk(width=64, height=64, noise_fraction=0.0, rate_ev_s=500_000)
    ev = scene.events(0, 20_000, 0)
    centre, velocity = scene.position(ev["t"])
    assert velocity[0, 0] > 0 and abs(velocity[0, 1]) < 1e-9
    dx = ev["x"] - centre[:, 0]
    assert dx[ev["p"] == 1].mean() > 2 and dx[ev["p"] == 0].mean() < -2


async def test_source_yields_numbered_packets_and_ends() -> None:
    source = SyntheticDvsSource(MovingDisk(rate_ev_s=50_000), packet_us=2_000,
                                realtime=False, duration_s=0.01)
    packets = [p async for p in source.packets()]
    assert [p.seq for p in packets] == [0, 1, 2, 3, 4]
    assert all(p.geometry == (64, 64, 2) for p in packets)
    assert packets[-1].t_last_us < 10_000


def test_bad_scene_is_refused() -> None:
    with pytest.raises(ValueError, match="below 8x8"):
        MovingDisk(width=4)
    with pytest.raises(ValueError, match="positive"):
        MovingDisk(rate_ev_s=0)
