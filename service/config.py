"""Configuration: pydantic models, read from a TOML file with ``SPIKEGATE_...`` overrides.

With no file, the embedded default runs: one pipeline, the synthetic DVS demo
→ the spiking tracker → a websocket sink. Environment variables override any
field by its path, upper-case, ``__`` between levels, list items by index::

    SPIKEGATE_SERVER__PORT=9000
    SPIKEGATE_PIPELINES__0__SOURCE__RATE_EV_S=50000
    SPIKEGATE_API_TOKEN=secret            # shorthand for SPIKEGATE_SERVER__API_TOKEN

Values are read as JSON when they parse as JSON, else as strings. A bad value
stops start-up with one line naming the field (``ConfigError``).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from .allocation import AllocationConfig
from .pipeline import INLINE_EVENTS
from .queues import FullPolicy

ENV_PREFIX = "SPIKEGATE_"


class ConfigError(ValueError):
    """A configuration a user must fix, as one line naming the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DemoSourceConfig(_Strict):
    """The synthetic DVS: a disk touring the sensor (see drivers/synthetic.py)."""

    kind: Literal["demo"] = "demo"
    name: str = "demo"
    width: int = Field(64, ge=8, le=4096)
    height: int = Field(64, ge=8, le=4096)
    rate_ev_s: float = Field(200_000.0, gt=0, le=50_000_000)
    speed_px_s: float = Field(40.0, gt=0)
    radius_px: float = Field(6.0, gt=0)
    noise_fraction: float = Field(0.05, ge=0, lt=1)
    seed: int = 0
    packet_us: int = Field(5_000, ge=100, le=1_000_000)
    realtime: bool = True
    duration_s: float | None = Field(None, gt=0)


class FileSourceConfig(_Strict):
    """Replay of an event file, paced by its own clock × ``speed`` (None: as fast as possible)."""

    kind: Literal["file"] = "file"
    name: str = "file"
    path: Path
    format: str | None = None
    speed: float | None = Field(1.0, gt=0)
    loop: bool = True
    packet_events: int = Field(4096, ge=1, le=1_000_000)


class UdpSourceConfig(_Strict):
    """SPIF / AEStream datagrams on a UDP port (see drivers/net/udp.py)."""

    kind: Literal["udp"] = "udp"
    name: str = "udp"
    host: str = "127.0.0.1"
    port: int = Field(3333, ge=0, le=65535)
    layout: Literal["auto", "no_timestamp", "timestamp"] = "auto"
    width: int = Field(ge=1, le=32768)
    height: int = Field(ge=1, le=32768)


class DvTcpSourceConfig(_Strict):
    """A dv-processing ``NetworkWriter`` TCP stream (AEDAT4 body; see drivers/net/dv_tcp.py)."""

    kind: Literal["dv-tcp"] = "dv-tcp"
    name: str = "dv-tcp"
    host: str = "127.0.0.1"
    port: int = Field(7777, ge=1, le=65535)
    width: int = Field(ge=1, le=32768)
    height: int = Field(ge=1, le=32768)


class WavSourceConfig(_Strict):
    """A WAV file through the cochlea filterbank: x = channel (see drivers/audio/)."""

    kind: Literal["wav"] = "wav"
    name: str = "wav"
    path: Path
    n_channels: int = Field(64, ge=1, le=2048)
    realtime: bool = True
    speed: float = Field(1.0, gt=0)


class IngestSourceConfig(_Strict):
    """Events pushed by clients over ``/ws/ingest?source=NAME`` (see drivers/net/ws_ingest.py)."""

    kind: Literal["ingest"] = "ingest"
    name: str = "ingest"
    width: int = Field(ge=1, le=32768)
    height: int = Field(ge=1, le=32768)
    max_pending_frames: int = Field(1024, ge=1, le=1_000_000)


SourceConfig = Annotated[
    DemoSourceConfig | FileSourceConfig | UdpSourceConfig | DvTcpSourceConfig | WavSourceConfig
    | IngestSourceConfig,
    Field(discriminator="kind"),
]


class TrackerModelConfig(_Strict):
    """The demo network: position-tuned LIF populations (see models/demo.py)."""

    kind: Literal["tracker"] = "tracker"
    n_x: int = Field(9, ge=2, le=256)
    n_y: int = Field(9, ge=2, le=256)
    tau_ms: float = Field(20.0, gt=0)
    v_th: float = Field(1.0, gt=0)
    gain: float = Field(0.005, gt=0)


class NirModelConfig(_Strict):
    """A trained NIR graph run event-driven under a declared profile."""

    kind: Literal["nir"] = "nir"
    path: Path
    profile: Literal["exact", "snntorch", "norse", "sinabs"] = "exact"
    dt_s: float | None = Field(None, gt=0)
    reset: Literal["zero", "subtract"] | None = None
    fit: Literal["scale", "crop"] = "scale"  # sensor coordinates → the model's input
    # hold each packet's last step until the next packet: spikes exactly the
    # clock-driven ones whatever the packet boundaries, at up to a packet's latency
    hold_last_step: bool = False


ModelConfig = Annotated[TrackerModelConfig | NirModelConfig, Field(discriminator="kind")]


class WebSocketSinkConfig(_Strict):
    kind: Literal["websocket"] = "websocket"
    name: str = "ws"
    buffer: int = Field(256, ge=1, le=100_000)
    client_buffer: int = Field(64, ge=1, le=100_000)


class HttpSinkConfig(_Strict):
    """POST each command to an actuator endpoint."""

    kind: Literal["http"] = "http"
    name: str = "http"
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")]
    timeout_s: float = Field(1.0, gt=0, le=60)
    retries: int = Field(3, ge=0, le=20)
    backoff_s: float = Field(0.05, gt=0, le=60)
    backoff_max_s: float = Field(2.0, gt=0, le=600)
    buffer: int = Field(256, ge=1, le=100_000)
    policy: FullPolicy = FullPolicy.DROP_OLDEST


class RecorderSinkConfig(_Strict):
    """Record the source's events (what came in) to a file the file source replays exactly."""

    kind: Literal["recorder"] = "recorder"
    name: str = "recorder"
    path: Path
    format: str | None = None  # by name; default: from the extension (.aedat4, .raw, .npy …)
    buffer: int = Field(4096, ge=1, le=1_000_000)


SinkConfig = Annotated[WebSocketSinkConfig | HttpSinkConfig | RecorderSinkConfig,
                       Field(discriminator="kind")]


def _default_sinks() -> list[SinkConfig]:
    return [WebSocketSinkConfig()]


class PipelineConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = "demo"
    source: SourceConfig = DemoSourceConfig()
    model: ModelConfig = TrackerModelConfig()
    sinks: list[SinkConfig] = Field(default_factory=_default_sinks)
    queue_size: int = Field(64, ge=1, le=100_000)
    queue_policy: FullPolicy = FullPolicy.DROP_OLDEST
    command_interval_ms: float = Field(50.0, gt=0, le=60_000)
    allocation: AllocationConfig = AllocationConfig()
    inline_events: int = Field(INLINE_EVENTS, ge=0, le=1_000_000)
    """Core calls of at most this many events (and cheap by the cost model) run on the event
    loop, not the core thread: lower output latency; 0 keeps every call in the core thread
    (benchmarks/README.md, Websockets: the raw-events stream's tail can prefer that)."""

    @model_validator(mode="after")
    def _sink_names_unique(self) -> PipelineConfig:
        names = [s.name for s in self.sinks]
        if len(names) != len(set(names)):
            raise ValueError(f"sink names must be unique, got {names}")
        return self


def default_models_dir() -> Path:
    """The per-user data directory for uploaded models (``$XDG_DATA_HOME/spikegate/models``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "spikegate" / "models"


class ServerConfig(_Strict):
    """Where to listen and what to let in.

    Without ``api_token`` the app makes a random one at start and logs it
    (state-changing calls always need a token). ``read_requires_token`` puts
    the read-only endpoints (GET, /metrics, /ws/outputs) behind it too.
    """

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_token: SecretStr | None = None
    read_requires_token: bool = False
    max_body_bytes: int = Field(256 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_upload_bytes: int = Field(64 * 1024 * 1024, ge=1024, le=4 * 1024 * 1024 * 1024)
    models_dir: Path = Field(default_factory=default_models_dir)
    shutdown_timeout_s: float = Field(5.0, gt=0, le=600)


class Settings(_Strict):
    server: ServerConfig = ServerConfig()
    pipelines: list[PipelineConfig] = Field(default_factory=lambda: [PipelineConfig()])
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"

    @model_validator(mode="after")
    def _pipeline_names_unique(self) -> Settings:
        names = [p.name for p in self.pipelines]
        if len(names) != len(set(names)):
            raise ValueError(f"pipeline names must be unique, got {names}")
        return self


def _env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _set_path(tree: dict[str, Any], path: list[str], value: Any, var: str) -> None:
    node: Any = tree
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, list):
            if not key.isdigit():
                raise ConfigError(f"{var}: {key!r} is not a list index")
            index = int(key)
            if index > len(node):
                raise ConfigError(f"{var}: index {index} is past the end of the list")
            if index == len(node):
                node.append({})
            if last:
                node[index] = value
            else:
                node = node[index]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"{var}: {'.'.join(path[:i])} is not a table")
        if last:
            node[key] = value
        else:
            if key not in node:
                node[key] = [] if path[i + 1].isdigit() else {}
            node = node[key]


def _with_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``SPIKEGATE_A__B=...`` overrides onto ``data`` (a copy)."""
    merged = json.loads(json.dumps(data, default=str))
    if not merged.get("pipelines") and any(
        k.startswith(f"{ENV_PREFIX}PIPELINES__") for k in environ
    ):
        merged["pipelines"] = [PipelineConfig().model_dump(mode="json")]
    for var, raw in sorted(environ.items()):
        if not var.startswith(ENV_PREFIX) or var == f"{ENV_PREFIX}CONFIG":
            continue
        key = var[len(ENV_PREFIX):].lower()
        path = ["server", "api_token"] if key == "api_token" else key.split("__")
        _set_path(merged, path, raw if path[-1] == "api_token" else _env_value(raw), var)
    return merged


def _one_line(error: ValidationError, where: str) -> str:
    first = error.errors()[0]
    loc = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-"))
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
    more = len(error.errors()) - 1
    tail = f"; and {more} more error(s)" if more else ""
    return f"{where}: {loc or 'top level'}: {first['msg']}{shown}{tail}"


def load_settings(path: str | Path | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``path`` (TOML; None: the embedded default) plus the environment."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    where = "config"
    if path is not None:
        where = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{where}: no such file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    data = _with_env(data, environ)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, where)) from None
