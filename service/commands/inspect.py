"""``spikegate inspect PATH``: summarise an event file in constant memory."""

from __future__ import annotations

import argparse
import json

from spikegate.drivers.files.tools import inspect_file

NAME = "inspect"
HELP = "print format, geometry, event count, time span, x/y ranges and ON/OFF counts of a file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="event file (format detected by header, then extension)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--format", help="read as this format instead of detecting it")


def run(args: argparse.Namespace) -> int:
    info = inspect_file(args.path, args.format)
    if args.json:
        print(json.dumps(info))
        return 0
    geometry = info["geometry"]
    lines = [
        f"file      {info['path']} ({info['size_bytes']:,} bytes)",
        f"format    {info['format']} ({info['label']})",
        "geometry  " + (f"{geometry['width']}x{geometry['height']}" if geometry else "unknown"),
        f"events    {info['count']:,}",
    ]
    if info["count"]:
        span_s = (info["t_last_us"] - info["t_first_us"]) / 1e6
        order = "" if info["monotonic"] else " (not monotonic)"
        lines += [
            f"t         {info['t_first_us']} .. {info['t_last_us']} µs ({span_s:.6f} s){order}",
            f"x         {info['x_min']} .. {info['x_max']}",
            f"y         {info['y_min']} .. {info['y_max']}",
            f"polarity  {info['n_on']:,} ON, {info['n_off']:,} OFF",
        ]
    print("\n".join(lines))
    return 0
