"""``spikegate warm-up``: compile every kernel into numba's cache (used at image build)."""

from __future__ import annotations

import argparse
import json

from ..warmup import warm_up_all

NAME = "warm-up"
HELP = "compile every numba kernel into the cache (NUMBA_CACHE_DIR), then exit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print seconds per module as JSON")


def run(args: argparse.Namespace) -> int:
    took = warm_up_all()
    if args.json:
        print(json.dumps(took))
    else:
        print(f"warmed up {len(took)} module(s) in {sum(took.values()):.2f} s")
    return 0
