"""Typed application state keys (``app[GATEWAY]``)."""

from aiohttp import web

from .gateway import Gateway

GATEWAY = web.AppKey("gateway", Gateway)
