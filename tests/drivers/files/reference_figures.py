"""Check decoded events against ../shared/data/reference.json and ``<file>.first1000.npy``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def reference_for(data_dir: Path, name: str) -> dict[str, object]:
    """The reference.json entry of one file."""
    entries = json.loads((data_dir / "reference.json").read_text())
    return next(entry for entry in entries if entry["file"] == name)


def check_against_reference(data_dir: Path, name: str, events: np.ndarray) -> None:
    """Events equal the reference figures and the reference's first 1000 events, field by field."""
    ref = reference_for(data_dir, name)
    assert len(events) == ref["count"]
    assert int(events["t"][0]) == ref["t_first_us"]
    assert int(events["t"][-1]) == ref["t_last_us"]
    assert int(events["t"].min()) == ref["t_min_us"]
    assert int(events["t"].max()) == ref["t_max_us"]
    for key in ("x", "y"):
        assert int(events[key].min()) == ref[f"{key}_min"]
        assert int(events[key].max()) == ref[f"{key}_max"]
    assert int(np.count_nonzero(events["p"] == 1)) == ref["n_on"]
    assert int(np.count_nonzero(events["p"] == 0)) == ref["n_off"]
    first = np.load(data_dir / f"{name}.first1000.npy")
    for key in ("t", "x", "y", "p"):
        np.testing.assert_array_equal(events[key][: len(first)], first[key], err_msg=key)
