"""``spikegate probe``: exit 0 when the local gateway answers /readyz with 200 (HEALTHCHECK)."""

from __future__ import annotations

import argparse
import urllib.error
import urllib.request

from ..config import load_settings

NAME = "probe"
HELP = "check the running gateway's /readyz (exit 0 ready, 1 not ready)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file, to find the port")
    parser.add_argument("--port", type=int, help="port (default: from config / environment)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")


def run(args: argparse.Namespace) -> int:
    port = args.port if args.port is not None else load_settings(args.config).server.port
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as resp:
            ok = resp.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"spikegate probe: {url}: {exc}")
        return 1
    print(f"spikegate probe: {url}: {'ready' if ok else 'not ready'}")
    return 0 if ok else 1
