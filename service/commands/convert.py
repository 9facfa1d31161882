"""``spikegate convert IN OUT``: stream an event file into another format."""

from __future__ import annotations

import argparse
import json

from spikegate.drivers.files.tools import convert_file

NAME = "convert"
HELP = "convert an event file to another format (output format by --format or OUT's extension)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="IN", help="event file to read (format detected)")
    parser.add_argument("dst", metavar="OUT", help="file to write")
    parser.add_argument("--format", help="output format (evt3, evt2, aedat4, npy, npz, csv, ...)")
    parser.add_argument("--input-format", help="read IN as this format instead of detecting it")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    summary = convert_file(args.src, args.dst, args.format, args.input_format)
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {summary['count']:,} events from {summary['src']} "
              f"({summary['input_format']}) to {summary['dst']} ({summary['output_format']})")
    return 0
