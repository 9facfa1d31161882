"""``spikegate serve``: run the gateway (default: the embedded demo on 127.0.0.1:8080)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from aiohttp import web

from ..app import init
from ..auth import AUTH
from ..cli import UsageError
from ..config import ConfigError, Settings, load_settings
from ..logs import configure_logging

NAME = "serve"
HELP = "run the gateway (default: the embedded demo on 127.0.0.1:8080)"

log = logging.getLogger("spikegate.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: the embedded demo)")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default 8080; 0 = any free)")
    parser.add_argument("--log-format", choices=["text", "json"],
                        help="log lines as text (default) or one JSON object per line")


def _settings(args: argparse.Namespace) -> Settings:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    server = settings.server.model_copy(update={
        k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None
    })
    return settings.model_copy(update={"server": server})


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM / SIGINT (or ``stop``), then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = init(settings)
    runner = web.AppRunner(app, handle_signals=False,
                           shutdown_timeout=settings.server.shutdown_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, settings.server.port)
    await site.start()
    for address in runner.addresses:
        log.info("spikegate listening on http://%s:%s", *address[:2])
        print(f"spikegate listening on http://{address[0]}:{address[1]}", flush=True)
    if app[AUTH].generated:
        print(f"no api_token configured; this run's token: {app[AUTH].token}", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("shutting down: sources stop, queues drain, sinks flush")
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    configure_logging(settings.log_level, args.log_format or settings.log_format, sys.stderr)
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # uvloop is not on every platform
        runner = asyncio.Runner()
    with runner:
        runner.run(serve(settings))
    return 0
