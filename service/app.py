"""The aiohttp application: one factory, ``init(settings)``, used by the CLI and the tests.

Routes live with their concern: ``api.py`` (REST, probes), ``ws.py`` (websockets);
``auth.py`` adds the token check, ``api.py`` the JSON errors.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from . import api, dashboard, ws
from .auth import setup_auth
from .config import Settings
from .gateway import Gateway
from .keys import GATEWAY
from .metrics import setup_metrics
from .openapi import setup_openapi

__all__ = ["GATEWAY", "init"]


def init(settings: Settings | None = None) -> web.Application:
    """Build the application; the gateway starts and stops with it."""
    settings = settings or Settings()
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    setup_auth(app, settings)

    async def gateway_ctx(app: web.Application) -> AsyncIterator[None]:
        gateway = Gateway(settings)
        app[GATEWAY] = gateway
        # Listen at once; /readyz says 503 until kernels are compiled and sources run.
        starting = asyncio.create_task(gateway.start(), name="gateway-start")
        yield
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        await gateway.stop()

    app.cleanup_ctx.append(gateway_ctx)
    api.setup_api(app, settings)
    setup_metrics(app)
    setup_openapi(app, settings.server.read_requires_token)
    ws.add_routes(app)
    dashboard.add_routes(app)
    return app
