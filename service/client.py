"""An async Python client for a running spikegate (aiohttp): REST calls, outputs, ingest.

::

    async with SpikegateClient("http://127.0.0.1:8080", token="secret") as gw:
        await gw.create_pipeline({"name": "cam", "source": {"kind": "demo"}}, start=True)
        async for out in gw.subscribe_outputs("cam"):
            for command in out["commands"]:
                print(command["command"], command["value"])

A refusal raises ``ApiError`` carrying the status and the server's sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import numpy as np
from pydantic import BaseModel

from spikegate.drivers.net.frames import decode_frame, encode_frame
from spikegate.drivers.packet import as_events


class ApiError(Exception):
    """The server refused a call: ``status`` and its one-sentence ``error``."""

    def __init__(self, status: int, error: str, fields: list[dict[str, str]] | None = None):
        super().__init__(f"HTTP {status}: {error}")
        self.status = status
        self.error = error
        self.fields = fields or []


class IngestStream:
    """An open ``/ws/ingest`` connection: ``await stream.send(events)`` per packet.

    The server answers a refused frame with a JSON message (``{"type": "error",
    "frame": i, "offset": byte, "error": "..."}``); those arrive in ``errors``.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, source: str) -> None:
        self.ws = ws
        self.source = source
        self.seq = 0
        self.errors: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read(), name=f"ingest-replies:{source}")

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.errors.append(json.loads(msg.data))

    async def send(self, events: np.ndarray) -> None:
        """Send one packet of events (fields t, x, y, p; time-ordered) as a binary frame."""
        frame = encode_frame(as_events(events, where=f"ingest {self.source}"), seq=self.seq)
        await self.ws.send_bytes(frame)
        self.seq += 1

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class SpikegateClient:
    """REST and websocket calls to one spikegate; use it as ``async with``.

    ``token`` is sent as ``Authorization: Bearer`` on every call (needed for
    anything that changes state, and for ingest).
    """

    def __init__(self, base_url: str, token: str | None = None, *, timeout_s: float = 30.0,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._own_session = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> SpikegateClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # --- plumbing --------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    async def request(self, method: str, path: str, *, json_body: Any = None,
                      data: Any = None, params: Mapping[str, str] | None = None,
                      headers: Mapping[str, str] | None = None) -> Any:
        """One call; its JSON answer, or ``ApiError`` with the server's sentence."""
        async with self.session.request(method, self.url(path), json=json_body, data=data,
                                        params=params,
                                        headers={**self._headers, **(headers or {})}) as resp:
            text = await resp.text()
            if resp.status >= 400:
                try:
                    body = json.loads(text)
                    raise ApiError(resp.status, body["error"], body.get("fields"))
                except (ValueError, KeyError, TypeError):
                    raise ApiError(resp.status, text.strip() or resp.reason or "") from None
            if resp.content_type == "application/json":
                return json.loads(text)
            return text

    # --- REST ------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        return await self.request("GET", "/api/v1/status")

    async def ready(self) -> bool:
        try:
            await self.request("GET", "/readyz")
        except ApiError:
            return False
        return True

    async def pipelines(self) -> list[dict[str, Any]]:
        return (await self.request("GET", "/api/v1/pipelines"))["pipelines"]

    async def pipeline(self, name: str) -> dict[str, Any]:
        return await self.request("GET", f"/api/v1/pipelines/{name}")

    async def create_pipeline(self, cfg: BaseModel | Mapping[str, Any],
                              start: bool = False) -> dict[str, Any]:
        """Create from a ``PipelineConfig`` (or its JSON as a dict); start it if ``start``."""
        body = cfg.model_dump(mode="json") if isinstance(cfg, BaseModel) else dict(cfg)
        return await self.request("POST", "/api/v1/pipelines", json_body=body,
                                  params={"start": "true" if start else "false"})

    async def start(self, name: str) -> dict[str, Any]:
        return await self.request("POST", f"/api/v1/pipelines/{name}/start")

    async def stop(self, name: str) -> dict[str, Any]:
        return await self.request("POST", f"/api/v1/pipelines/{name}/stop")

    async def delete(self, name: str) -> None:
        await self.request("DELETE", f"/api/v1/pipelines/{name}")

    async def patch(self, name: str, settings: Mapping[str, Any] | None = None,
                    **fields: Any) -> dict[str, Any]:
        """Change live settings: ``patch("cam", queue_policy="block")``; returns the new ones."""
        body = {**(settings or {}), **fields}
        view = await self.request("PATCH", f"/api/v1/pipelines/{name}", json_body=body)
        return view["settings"]

    async def sources(self) -> list[dict[str, Any]]:
        return (await self.request("GET", "/api/v1/sources"))["sources"]

    async def sinks(self) -> list[dict[str, Any]]:
        return (await self.request("GET", "/api/v1/sinks"))["sinks"]

    async def models(self) -> list[dict[str, Any]]:
        return (await self.request("GET", "/api/v1/models"))["models"]

    async def upload_model(self, path: str | Path, name: str | None = None,
                           replace: bool = False) -> dict[str, Any]:
        """Upload a ``.nir`` file (streamed); the server validates it before keeping it."""
        path = Path(path)
        params = {"name": name or path.name, "replace": "true" if replace else "false"}
        with path.open("rb") as f:
            return await self.request(
                "POST", "/api/v1/models", data=f, params=params,
                headers={"Content-Type": "application/octet-stream"})

    async def delete_model(self, name: str) -> None:
        await self.request("DELETE", f"/api/v1/models/{name}")

    async def metrics(self) -> str:
        return await self.request("GET", "/metrics")

    # --- websockets ------------------------------------------------------------------

    async def subscribe_outputs(self, pipeline: str,
                                **query: str) -> AsyncIterator[dict[str, Any]]:
        """Every output of ``pipeline`` as a dict (spikes, commands, ``missed`` if any).

        The client asks for the JSON view; with ``format="binary"`` (the
        server's default) spikes come as decoded frames (``kind`` "spikes",
        ``records`` a ``SPIKE_DTYPE`` array) and commands as JSON messages.
        """
        params = {"pipeline": pipeline, "format": "json", **query}
        try:
            ws = await self.session.ws_connect(self.url("/ws/outputs"), params=params,
                                               headers=self._headers)
        except aiohttp.WSServerHandshakeError as exc:
            raise _refused(exc, f"/ws/outputs?pipeline={pipeline}") from None
        async with ws:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    yield json.loads(msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    yield _decode_output(msg.data)
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    break

    def ingest(self, source: str) -> _IngestContext:
        """``async with client.ingest("cam") as stream: await stream.send(events)``."""
        return _IngestContext(self, source)

    async def push_events(self, source: str,
                          packets: np.ndarray | Iterable[np.ndarray]) -> int:
        """Send one event array, or several, to ``/ws/ingest?source=``; the number sent.

        The source must be of kind ``ingest``. For a long-lived stream, and to
        see refused frames, use ``async with client.ingest(source) as stream``.
        """
        batches = [packets] if isinstance(packets, np.ndarray) else list(packets)
        async with _IngestContext(self, source) as stream:
            for events in batches:
                await stream.send(events)
        return len(batches)


def _refused(exc: aiohttp.WSServerHandshakeError, where: str) -> ApiError:
    reasons = {401: "the bearer token is missing or wrong", 404: "no such pipeline or source"}
    return ApiError(exc.status, f"{where}: {reasons.get(exc.status, exc.message)}")


def _decode_output(data: bytes) -> dict[str, Any]:
    """A binary output frame as a dict: kind, seq, t0_us, ingress_ns, missed, records."""
    frame = decode_frame(data, "output frame", copy=True)
    out = frame._asdict()
    out["kind"] = frame.kind.name.lower()
    out["flags"] = int(frame.flags)
    return out


class _IngestContext:
    def __init__(self, client: SpikegateClient, source: str) -> None:
        self.client = client
        self.source = source
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stream: IngestStream | None = None

    async def __aenter__(self) -> IngestStream:
        try:
            self._ws = await self.client.session.ws_connect(
                self.client.url("/ws/ingest"), params={"source": self.source},
                headers=self.client._headers)
        except aiohttp.WSServerHandshakeError as exc:
            raise _refused(exc, f"/ws/ingest?source={self.source}") from None

        self._stream = IngestStream(self._ws, self.source)
        return self._stream

    async def __aexit__(self, *exc: object) -> None:
        if self._stream is not None:
            await self._stream.close()
