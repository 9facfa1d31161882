"""The ``spikegate`` command: one subcommand per module of ``service/commands``.

Each command module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``. Errors the user can fix are printed as one line on
stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from spikegate import __version__

COMMANDS: tuple[str, ...] = ("serve", "warmup", "probe", "inspect", "convert", "run")


class UsageError(Exception):
    """A one-line error the user can fix (bad path, bad option, bad config)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikegate", description="Event-stream gateway for spiking neural networks."
    )
    parser.add_argument("--version", action="version", version=f"spikegate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"spikegate.service.commands.{name}")
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except UsageError as exc:
        print(f"spikegate {args.command}: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        # FormatError and friends: sentences with a place
        print(f"spikegate {args.command}: {exc}", file=sys.stderr)
        return 2
