"""The kernels as plain Python (NUMBA_DISABLE_JIT=1) give the same spikes as compiled.

Runs in a subprocess, since the switch is read when numba is imported; the
property tests then exercise the kernel bodies line by line (and coverage
sees them).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import numpy as np
from hypothesis import given, settings, HealthCheck, strategies as st
from tests.models.strategies import random_graphs
from spikegate.models.network import Network
from spikegate.models.graph import GraphError
from spikegate.models.profiles import PROFILE_NAMES, make_profile
from spikegate.models.reference import run_reference

@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=random_graphs(), name=st.sampled_from(PROFILE_NAMES))
def check(case, name):
    graph, x = case
    profile = make_profile(name, 1e-3)
    try:
        net = Network(graph, profile)
    except GraphError:
        return
    got = net.run(x)["output"]
    np.testing.assert_array_equal(got, run_reference(graph, profile, x)["output"])

check()
print("ok")
"""


@pytest.mark.slow
def test_kernels_interpreted_equal_reference():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=root)
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300, cwd=root, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
