"""Typed views of the API's answers.

Every model keeps fields it does not know (``extra="allow"``), so a newer API never breaks an
older client; ``to_dict()`` gives back the JSON exactly as it came. Statuses and other
enumerations are plain strings for the same reason. ``tests/unit/test_client_openapi.py``
checks these models against the OpenAPI document the API serves.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ModelWrapValidatorHandler, PrivateAttr, model_validator

SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"
TERMINAL_STATUSES = frozenset({SUCCEEDED, FAILED, CANCELLED})


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_json(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        parsed = handler(data)
        if isinstance(data, dict):  # every model, nested ones too, remembers the JSON it came from
            parsed._raw = data
        return parsed

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Self:
        return cls.model_validate(data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON the API sent (timestamps and numbers untouched); built from the fields if
        this model was not parsed from JSON."""
        if self._raw is not None:
            return copy.deepcopy(self._raw)
        return self.model_dump(mode="json", exclude_unset=True)


class Audio(ApiModel):
    codec: str
    channels: int | None = None
    sample_rate: int | None = None


class Media(ApiModel):
    """What the stored video is, as reelhook parsed and decoded it."""

    container: str
    duration_s: float | None = None
    width: int
    height: int
    fps: float | None = None
    video_codec: str
    audio: Audio | None = None


class Output(ApiModel):
    s3_uri: str
    bytes: int
    sha256: str
    content_type: str
    version_id: str | None = Field(default=None, description="The S3 version that was checked; download_url names it")
    media: Media | None = None
    download_url: str | None = Field(default=None, description="Presigned, valid for an hour from the answer")
    poster_url: str | None = None


class JobError(ApiModel):
    """Why a job failed (``code`` such as ``provider_failed``, ``output_expired``)."""

    code: str
    message: str


class Event(ApiModel):
    """One status change: when, to what, and which part of reelhook saw it."""

    status: str
    at: datetime
    source: str | None = None
    reason: str | None = None


class Attempt(ApiModel):
    """One try at a provider for this job."""

    provider: str
    model: str
    task_id: str | None = None
    outcome: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    reason: str | None = None


class Route(ApiModel):
    """The provider and model that served the job."""

    provider: str
    model: str


class Routing(ApiModel):
    """A logical-model job's provider order and failover policy (submit, any or none)."""

    providers: list[str]
    failover: str


class SkippedRoute(ApiModel):
    """A route that cannot take the job as given, and its objections (field errors)."""

    model: str
    provider: str
    reasons: list[dict[str, Any]] = Field(default_factory=list)


class Cancellation(ApiModel):
    at: datetime
    provider_task_may_continue: bool


class Job(ApiModel):
    id: str
    model: str
    provider: str
    status: str
    provider_task_id: str | None = None
    client_reference: str | None = None
    created_at: datetime
    updated_at: datetime
    error: JobError | None = None
    outputs: list[Output] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    notify_url: str | None = None
    notifications: list[dict[str, Any]] = Field(default_factory=list)
    progress: int | None = None
    waiting_for: str | None = None
    submit_outcome: str | None = None
    submit_error: str | None = None
    effective: dict[str, Any] | None = None
    effective_notes: list[str] | None = None
    warnings: list[str] | None = None
    # Newer APIs only: absent (None) from older ones.
    request: dict[str, Any] | None = None
    attempts: list[Attempt] | None = None
    route: Route | None = None
    routes: list[str] | None = None
    routing: Routing | None = None
    routes_skipped: list[SkippedRoute] | None = None
    cancellation: Cancellation | None = None

    @property
    def done(self) -> bool:
        """Succeeded, failed or cancelled: it will not change again."""
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED


class JobPage(ApiModel):
    """One page of ``GET /v1/jobs``; ``next_cursor`` is None on the last."""

    jobs: list[Job] = Field(default_factory=list)
    next_cursor: str | None = None


class FieldError(ApiModel):
    """One offending field of a refused request: ``allowed`` is a list, a range or absent."""

    field: str
    message: str
    allowed: Any = None
    route: str | None = None  # for a logical model: the route that objects


class ModelDefault(ApiModel):
    """What the provider uses when a job omits the field, and who says so."""

    value: Any = None
    source: str
    note: str | None = None


class ModelLimit(ApiModel):
    """A limit no provider document gives, which reelhook enforces, and why."""

    field: str
    limit: str
    value: Any = None
    reason: str


class ModelRoute(ApiModel):
    """One concrete model a logical model can be served by."""

    model: str
    provider: str
    mode: str | None = None
    title: str | None = None


class ModelInfo(ApiModel):
    """One entry of ``GET /v1/models``; every other key of the catalogue is kept as an extra.

    A concrete model (``logical`` false) belongs to one provider; a logical one lists its
    ``routes`` and has no provider of its own.
    """

    id: str
    logical: bool = False
    provider: str | None = None
    routes: list[ModelRoute] = Field(default_factory=list)
    title: str | None = None
    provider_model: str | None = None
    status_via: str | None = None
    durations: list[int] | None = None
    default_duration: int | None = None
    aspect_ratios: list[str] | None = None
    resolutions: list[str] | None = None
    defaults: dict[str, ModelDefault] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    modes: list[dict[str, Any]] = Field(default_factory=list)
    reelhook_limits: list[ModelLimit] = Field(default_factory=list)


class Circuit(ApiModel):
    """A provider's circuit: ``closed``, ``open`` (new logical-model jobs skip it) or ``half_open``
    (one job may probe it); times are epoch seconds."""

    state: str
    consecutive_failures: int
    open_until: float | None = None
    opened_at: float | None = None


class RateBudget(ApiModel):
    """A provider's request budget; ``requests_per_second`` None means unlimited."""

    requests_per_second: float | None = None
    burst: int | None = None
    booked_ahead_seconds: float | None = Field(default=None, description="How far ahead slots are taken; 0: free now")


class InFlight(ApiModel):
    """Tasks a provider holds now, and the cap (None: no cap)."""

    tasks: int | None = None
    cap: int | None = None


class ProviderHealth(ApiModel):
    """One entry of ``GET /v1/providers``: circuit, request budget and tasks in flight."""

    name: str
    circuit: Circuit
    rate: RateBudget
    in_flight: InFlight


class ProviderList(ApiModel):
    """``GET /v1/providers`` as a whole."""

    providers: list[ProviderHealth] = Field(default_factory=list)
