"""The public API's request and response shapes (pydantic), and error formatting.

Pydantic checks the shape of ``POST /v1/jobs``; the model's ``ModelSpec`` then checks
what that particular model accepts. Both report errors as ``{field, message, allowed}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from reelhook.config import settings
from reelhook.errors import error_body
from reelhook.spec import FieldError, NormalizedRequest, did_you_mean

MAX_URL_LENGTH = 2048
# An omitted field is not "off": each model has its own default (Freepik Veo makes sound unless
# told not to, AIHubMax does not). Both are published per model.
OMITTED = ("Omitted: the model's default, which differs per model (see defaults in GET /v1/models "
           "and the table in this document's description)")


def _https_url(value: str) -> str:
    from reelhook.request_limits import host_name_problem, url_text_problem

    problem = url_text_problem(value)
    if problem:
        raise ValueError(problem)
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a malformed port
    except ValueError:
        raise ValueError("must be a valid https:// URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("must be an https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials")
    if port == 0:
        raise ValueError("must name a port from 1 to 65535")
    problem = host_name_problem(parts.hostname)
    if problem:
        raise ValueError(problem)
    from reelhook.ssrf import literal_refusal  # only when a URL is given: most of the API needs no ipaddress

    refusal = literal_refusal(parts.hostname, allow_loopback=settings().allow_insecure_fetch)
    if refusal:
        raise ValueError(refusal)
    return value


HttpsUrl = Annotated[str, Field(max_length=MAX_URL_LENGTH), AfterValidator(_https_url)]


def _notify_url(value: str) -> str:
    # Local stacks (REELHOOK_ALLOW_INSECURE_FETCH) also take http, for a receiver on loopback;
    # where it may really point is checked against SSRF rules at each delivery.
    parts = urlsplit(value)
    if parts.scheme == "http" and settings().allow_insecure_fetch:
        if not parts.hostname or parts.username or parts.password:
            raise ValueError("must be a URL with a host and no credentials")
        return value
    return _https_url(value)


NotifyUrl = Annotated[str, Field(max_length=MAX_URL_LENGTH, json_schema_extra={"format": "uri"}),
                      AfterValidator(_notify_url)]


def _media_url(value: str) -> str:
    if value.startswith("s3://"):
        bucket, _, key = value[5:].partition("/")
        if not bucket or not key:
            raise ValueError("must be s3://bucket/key")
        return value
    try:
        return _https_url(value)
    except ValueError:
        raise ValueError("must be an https:// URL or s3://bucket/key") from None


# Inputs may also name an object in S3; providers then receive a short-lived presigned URL.
MediaUrl = Annotated[str, Field(max_length=MAX_URL_LENGTH), AfterValidator(_media_url)]


class ReferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: MediaUrl
    voice_url: MediaUrl | None = Field(default=None, description="A voice sample for this character")


def _reference(value: Any) -> Any:
    # A bare URL is shorthand for {"url": ...}; one model keeps error locations simple.
    return {"url": value} if isinstance(value, str) else value


Reference = Annotated[ReferenceIn, BeforeValidator(_reference)]


def _scalar_options(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if not isinstance(item, bool | int | float | str):
            raise ValueError(f"option {key!r} must be a boolean, number or string")
    return value


def _resolution(value: str) -> str:
    return value.lower()


class RoutingIn(BaseModel):
    """How a job naming a logical model picks and changes providers."""

    model_config = ConfigDict(extra="forbid")

    providers: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, min_length=1, max_length=16,
        description="Providers to use, in the order tried; the others are not used. Default: the "
        "deployment's order (ROUTING_PROVIDER_ORDER)")
    failover: Literal["submit", "any", "none"] | None = Field(
        default=None,
        description="submit: move to the next route when a submit is refused or unavailable (402/403, "
        "429 or 5xx after retries, an open circuit); any: also when the provider's task fails; none: "
        "never. Never after a submit whose outcome is unknown. Default: the deployment's (ROUTING_FAILOVER)")

    @field_validator("providers")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not name a provider twice")
        return value


class JobRequest(BaseModel):
    """Body of ``POST /v1/jobs``. Which fields a model takes: ``GET /v1/models``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    model: str = Field(min_length=1, max_length=200, description="A model id from GET /v1/models")
    # Required by every model but Kling (whose document and spec require only video_url): the
    # model's definition says, and GET /v1/models publishes it.
    prompt: str | None = Field(default=None, min_length=1, max_length=50000,
                               description="Required unless the model's catalogue entry says prompt.required false")
    negative_prompt: str | None = Field(default=None, max_length=50000, description=OMITTED)
    reference_images: list[Reference] | None = Field(default=None, max_length=16)
    reference_videos: list[Reference] | None = Field(default=None, max_length=16)
    first_frame: MediaUrl | None = None
    last_frame: MediaUrl | None = None
    source_video: MediaUrl | None = None
    duration: int | None = Field(default=None, ge=1, le=600, strict=True, description=OMITTED)
    aspect_ratio: str | None = Field(default=None, max_length=16, description=OMITTED)
    resolution: Annotated[str, AfterValidator(_resolution)] | None = Field(default=None, max_length=16,
                                                                          description=OMITTED)
    audio: bool | None = Field(default=None, strict=True, description=OMITTED)
    seed: int | None = Field(default=None, strict=True, description=OMITTED)
    options: Annotated[dict[str, Any], AfterValidator(_scalar_options)] | None = Field(
        default=None, max_length=32, description="Provider-specific extras; see each model's options"
    )
    client_reference: str | None = Field(default=None, max_length=256)
    routing: RoutingIn | None = Field(default=None, description="Only for a logical model (GET /v1/models, "
                                                                 "logical: true)")
    notify_url: NotifyUrl | None = Field(
        default=None,
        description="An https URL that receives the job's final status (succeeded or failed) as a POST "
        "signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)",
    )

    def normalized(self) -> NormalizedRequest:
        return self.model_dump(exclude_none=True)  # type: ignore[return-value]


def pydantic_errors(exc: ValidationError) -> list[FieldError]:
    errors: list[FieldError] = []
    listed_known = False
    for err in exc.errors(include_url=False):
        location = ""
        for part in err["loc"]:
            location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
        message = err["msg"].removeprefix("Value error, ")
        allowed = None
        if err["type"] == "extra_forbidden":
            message = "is not a known field"
            if len(err["loc"]) == 1:  # a top-level field: name the ones there are (once: answers stay short)
                known = sorted(JobRequest.model_fields)
                message += did_you_mean(str(err["loc"][0]), known)
                allowed = None if listed_known else known
                listed_known = True
        elif err["type"] == "model_type":
            message = "must be a URL or an object with url (and optionally voice_url)"
        errors.append(FieldError(location or "body", message, allowed))
    # A union reports each branch; keep one message per field.
    unique: dict[str, FieldError] = {}
    for error in errors:
        unique.setdefault(error.field, error)
    return list(unique.values())


__all__ = ["JobRequest", "ReferenceIn", "error_body", "pydantic_errors"]
