"""Our EVT writers' files, read by the reference decoders (evt3, expelliarmus) when installed."""

from __future__ import annotations

import numpy as np
import pytest

from spikegate.drivers.files.evt2 import Evt2Writer
from spikegate.drivers.files.evt3 import Evt3Writer
from spikegate.drivers.packet import Geometry, make_events


def sensor_like_events(n: int = 20_000, seed: int = 4) -> np.ndarray:
    """Time-ordered events with row bursts (vectors) and single pixels."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 3_000_000, n))
    x = rng.integers(0, 640, n)
    y = rng.integers(0, 480, n)
    burst = rng.random(n) < 0.5  # half the events join the previous event's row and time
    for k in np.flatnonzero(burst)[1:]:
        t[k], y[k], x[k] = t[k - 1], y[k - 1], min(x[k - 1] + 1, 639)
    events = make_events(t, x, y, rng.integers(0, 2, n))
    return np.sort(events, order=["t", "y", "x"], kind="stable")


def write(path, writer_class, events):
    with open(path, "wb") as f:
        writer = writer_class(f, Geometry(640, 480))
        writer.write(events)
        writer.close()


def test_evt3_writer_output_read_by_evt3_crate(tmp_path):
    evt3_rs = pytest.importorskip("evt3")
    events = sensor_like_events()
    write(tmp_path / "a.raw", Evt3Writer, events)
    decoded = evt3_rs.decode_file(str(tmp_path / "a.raw"))
    np.testing.assert_array_equal(np.asarray(decoded.timestamp, dtype=np.int64), events["t"])
    np.testing.assert_array_equal(np.asarray(decoded.x), events["x"])
    np.testing.assert_array_equal(np.asarray(decoded.y), events["y"])
    np.testing.assert_array_equal(np.asarray(decoded.polarity), events["p"])


def test_evt2_writer_output_read_by_expelliarmus(tmp_path):
    # (not EVT 3.0: expelliarmus adds 4096 µs at every TIME_LOW decrease, on real files too;
    # see ../shared/data/MANIFEST.md)
    wizard_module = pytest.importorskip("expelliarmus")
    events = sensor_like_events()
    write(tmp_path / "a.raw", Evt2Writer, events)
    wizard = wizard_module.Wizard(encoding="evt2")
    wizard.set_file(str(tmp_path / "a.raw"))
    decoded = wizard.read()
    for name in ("t", "x", "y", "p"):
        np.testing.assert_array_equal(decoded[name].astype(np.int64),
                                      events[name].astype(np.int64), err_msg=name)
