"""Request and response bodies of the REST API (pydantic), and how a refusal is worded.

Pipeline definitions reuse the config models: ``PipelineConfig`` is the body
of ``POST /api/v1/pipelines``. Every body model forbids unknown fields. The
OpenAPI document (``openapi.py``) is generated from these same models.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .allocation import (
    AutoConfig,
    EnergyConfig,
    FollowCentroid,
    PrecisionConfig,
    RectConfig,
    ShedPolicy,
    one_rect_as_list,
)
from .config import PipelineConfig
from .queues import FullPolicy

MODEL_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}\.nir$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Body):
    """Every refusal: one sentence, and for validation errors the fields at fault."""

    error: str
    fields: list[FieldError] | None = None


class FieldError(_Body):
    field: str
    message: str


class SinkSettingsPatch(_Body):
    """A sink's live settings: the policy of its bounded buffer when full."""

    policy: FullPolicy | None = None


class PipelineSettingsPatch(_Body):
    """``PATCH /api/v1/pipelines/{name}``: the live settings to change, without a restart.

    Absent fields stay as they are. ``null`` clears a field where clearing means
    something (those listed in ``CLEARABLE``); elsewhere it is refused.

    Extension point: a new live setting is one field here (``None`` default),
    its name in ``CLEARABLE`` if ``null`` may clear it, and one (check, apply)
    pair in ``Pipeline.SETTERS`` (service/pipeline.py). The handler passes
    ``model_dump(exclude_unset=True)`` to ``Pipeline.apply_settings`` unchanged.
    """

    CLEARABLE: ClassVar[frozenset[str]] = frozenset(
        {"precision", "roi", "latency_budget_ms", "sparsity", "rate_budget_ev_s", "auto"})

    queue_policy: FullPolicy | None = None
    command_interval_ms: float | None = Field(None, gt=0, le=60_000)
    # resource allocation (service/allocation.py; the same fields as AllocationConfig)
    precision: PrecisionConfig | None = None
    roi: list[RectConfig] | FollowCentroid | None = None
    latency_budget_ms: float | None = Field(None, gt=0, le=60_000)
    sparsity: float | None = Field(None, ge=0.0, lt=1.0)
    rate_budget_ev_s: (Annotated[float, Field(gt=0, le=1e9)]
                       | list[Annotated[float, Field(gt=0, le=1e9)]] | None) = None
    shed_policy: ShedPolicy | None = None
    outside_roi: Literal["drop", "downsample"] | None = None
    energy: EnergyConfig | None = None
    auto: AutoConfig | None = None

    @field_validator("roi", mode="before")
    @classmethod
    def _one_rect_is_a_list(cls, value: Any) -> Any:
        return one_rect_as_list(value)
    sinks: dict[str, SinkSettingsPatch] | None = None

    @model_validator(mode="after")
    def _null_only_where_clearable(self) -> PipelineSettingsPatch:
        for name in sorted(self.model_fields_set - self.CLEARABLE):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be cleared with null; send a value")
        return self

    def changes(self) -> dict[str, Any]:
        """Only what the client sent, as plain JSON values (enums as strings)."""
        return self.model_dump(mode="json", exclude_unset=True)


class PipelineSettings(BaseModel):
    """A pipeline's live settings, as ``Pipeline.settings()`` reports them."""

    model_config = ConfigDict(extra="allow")

    queue_policy: FullPolicy
    command_interval_ms: float | None
    sinks: dict[str, dict[str, Any]]


class PipelineView(BaseModel):
    """One pipeline: the config it was built from, its live settings, its counters."""

    name: str
    state: str
    config: PipelineConfig | None
    settings: PipelineSettings
    status: dict[str, Any]


class PipelineList(BaseModel):
    pipelines: list[PipelineView]


class SourceView(BaseModel):
    """A pipeline's source: state, rate, what it dropped, its last error."""

    pipeline: str
    name: str
    state: str
    geometry: list[int]
    packets: int
    events: int
    events_per_s: float
    dropped_packets: int
    queue_policy: str
    done: bool
    last_error: str | None


class SourceList(BaseModel):
    sources: list[SourceView]


class SinkView(BaseModel):
    """A pipeline's sink: delivered, failed, dropped, latency, its last error."""

    model_config = ConfigDict(extra="allow")

    pipeline: str
    name: str
    kind: str
    state: str
    delivered: int
    failed: int
    dropped: int
    outputs_per_s: float | None = None
    policy: str
    latency_us: dict[str, float | None]
    last_error: str | None


class SinkList(BaseModel):
    sinks: list[SinkView]


class ModelInfo(BaseModel):
    """An uploaded ``.nir`` file in the models directory."""

    name: str = Field(pattern=MODEL_NAME_PATTERN)
    size_bytes: int
    sha256: str
    modified: str
    layers: int | None = None


class ModelList(BaseModel):
    models: list[ModelInfo]


class Deleted(BaseModel):
    deleted: str


class Health(BaseModel):
    status: Literal["alive", "ready", "starting"]


class GatewayStatus(BaseModel):
    ready: bool
    pipelines: list[dict[str, Any]]


def describe_validation_error(exc: ValidationError, where: str = "body") -> ErrorBody:
    """One sentence naming the first bad field, and every field at fault."""
    errors = exc.errors(include_url=False)
    fields = []
    for err in errors:
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        fields.append(FieldError(field=loc or "(top level)", message=err["msg"]))
    first = errors[0]
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {_short(got)})"
    more = f"; and {len(errors) - 1} more" if len(errors) > 1 else ""
    sentence = f"{where}: {fields[0].field}: {first['msg']}{shown}{more}"
    return ErrorBody(error=sentence, fields=fields)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


ErrorBody.model_rebuild()
