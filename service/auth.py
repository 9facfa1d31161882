"""Bearer-token access: who may change state, ingest events, and (optionally) read.

- Every state-changing call (any method but GET/HEAD/OPTIONS) and ``/ws/ingest``
  needs ``Authorization: Bearer <token>``.
- With ``server.read_requires_token`` the read-only API (``/api/``, ``/ws/``,
  ``/metrics``) needs it too; probes, the dashboard's files and the OpenAPI
  document stay open.
- Websockets may send the token as ``?access_token=`` instead (browsers cannot
  set headers on a websocket).
- With no token configured, the app makes a random one at start-up and logs
  it: the API is never open for writing by accident.

Tokens are compared in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from .config import Settings

log = logging.getLogger("spikegate.auth")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALWAYS_PROTECTED = ("/ws/ingest",)
READ_PROTECTED = ("/api/", "/ws/", "/metrics")
ALWAYS_OPEN = ("/api/v1/openapi.json",)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """The token the app accepts, and whether reads need it."""

    token: str
    generated: bool = False
    read_requires_token: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenPolicy:
        server = settings.server
        if server.api_token is not None and server.api_token.get_secret_value():
            token, generated = server.api_token.get_secret_value(), False
        else:
            token, generated = secrets.token_urlsafe(24), True
        return cls(token, generated, server.read_requires_token)

    def accepts(self, presented: str | None) -> bool:
        if presented is None:
            return False
        return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"),
                                   self.token.encode("utf-8"))

    def needs_token(self, method: str, path: str) -> bool:
        if path.startswith(ALWAYS_PROTECTED):
            return True
        if method not in SAFE_METHODS:
            return True
        if path in ALWAYS_OPEN:
            return False
        return self.read_requires_token and path.startswith(READ_PROTECTED)


AUTH = web.AppKey("auth", TokenPolicy)


def _presented_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None
    if request.path.startswith("/ws/"):
        return request.query.get("access_token")
    return None


def require_token(request: web.Request) -> None:
    """Raise 401 unless ``request`` carries the app's bearer token.

    Call it first thing in a handler that needs a token whatever the method
    (``/ws/ingest`` is a GET); the middleware calls it for the rest.
    """
    policy = request.app[AUTH]
    presented = _presented_token(request)
    if policy.accepts(presented):
        return
    if presented is None:
        reason = "this call needs a bearer token: send 'Authorization: Bearer <token>'"
    else:
        reason = "the bearer token is wrong"
    log.warning("refused %s %s: %s", request.method, request.path, reason,
                extra={"remote": request.remote})
    raise web.HTTPUnauthorized(
        text=reason, headers={"WWW-Authenticate": 'Bearer realm="spikegate"'})


@web.middleware
async def token_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.app[AUTH].needs_token(request.method, request.path):
        require_token(request)
    return await handler(request)


def setup_auth(app: web.Application, settings: Settings) -> TokenPolicy:
    """Store the token policy in ``app[AUTH]`` and add the middleware."""
    policy = TokenPolicy.from_settings(settings)
    app[AUTH] = policy
    app.middlewares.append(token_middleware)
    if policy.generated:
        log.warning("no server.api_token configured: this run's token is %s", policy.token)
    host = settings.server.host
    if host not in LOOPBACK_HOSTS and not policy.read_requires_token:
        log.warning("binding %s: reads (status, outputs, metrics) are open to the network; "
                    "set server.read_requires_token = true to close them", host)
    return policy
