"""REST endpoints under ``/api/v1`` and the health probes."""

from __future__ import annotations

from aiohttp import web

from .keys import GATEWAY


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    running = gateway.ready and all(p.state == "running" for p in gateway.pipelines.values())
    if not running:
        return web.json_response({"status": "starting"}, status=503)
    return web.json_response({"status": "ready"})


async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[GATEWAY].status())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/status", status)
