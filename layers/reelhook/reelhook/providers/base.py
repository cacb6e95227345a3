"""The contract every provider module fulfils.

A provider module (``reelhook.providers.<name>``) holds all of one provider's quirks:
its models, request mapping, status vocabulary, result shapes, webhook signature and
error bodies. Handlers and services only speak to this contract, so adding a provider
means adding a module here (plus its sandbox double and fixtures), never a handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Protocol

from reelhook.config import ProviderSettings
from reelhook.records import field, record
from reelhook.spec import ModelSpec, NormalizedRequest


class Phase(StrEnum):
    """A provider's status in reelhook's vocabulary."""

    SUBMITTED = "submitted"
    RUNNING = "running"
    COMPLETED = "completed"  # provider done and results present: copy pending
    FAILED = "failed"


@record
class ProviderStatus:
    task_id: str | None
    phase: Phase
    raw_status: str
    result_urls: tuple[str, ...] = ()
    error_message: str | None = None
    progress: int | None = None


@record
class HttpCall:
    method: str
    path: str
    json: dict[str, Any] | None = None


class KeyVerdict(StrEnum):
    """What one cheap authenticated request says about an API key."""

    WORKS = "works"  # the provider accepted the key (a 404 for a task that cannot exist counts)
    BAD_KEY = "bad_key"  # refused as unauthenticated or forbidden
    NO_CREDIT = "no_credit"  # accepted, but the account cannot pay for a job
    UNAVAILABLE = "unavailable"  # no answer, rate-limited or failing: says nothing about the key
    UNEXPECTED = "unexpected"  # an answer the provider's documents do not explain


@record
class KeyProbe:
    verdict: KeyVerdict
    detail: str


class WebhookRejected(Exception):
    """A webhook that must not change state. ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class MalformedPayload(ValueError):
    """A provider body that does not have the documented shape."""


@record
class WebhookContext:
    headers: Mapping[str, str]  # lower-cased names
    raw_body: bytes
    secrets: Mapping[str, str]
    now: float
    extras: Mapping[str, str] = field(default_factory=dict)


class Provider(Protocol):
    name: str
    # Base URL, key header, extras and rate/concurrency limits; each can be overridden by
    # environment variables.
    defaults: ProviderSettings
    models: tuple[ModelSpec, ...]
    # How long a result link lives, when the provider documents it (seconds); else a safe guess.
    link_lifetime_seconds: int
    # Fields of the deployment secret holding the provider's webhook signing secrets (none when
    # it signs nothing): without them its webhooks are only hints, each confirmed by a status GET.
    webhook_secret_fields: tuple[str, ...]

    def sends_webhooks(self, extras: Mapping[str, str]) -> bool: ...

    def submit_call(self, spec: ModelSpec, req: NormalizedRequest, webhook_url: str | None,
                    extras: Mapping[str, str]) -> HttpCall: ...

    def parse_submit(self, body: Any) -> str: ...

    def status_call(self, spec: ModelSpec, task_id: str, extras: Mapping[str, str]) -> HttpCall: ...

    def parse_status(self, body: Any, *, from_webhook: bool) -> ProviderStatus: ...

    def verify_webhook(self, ctx: WebhookContext) -> str | None:
        """Raise ``WebhookRejected`` unless authentic; return the delivery id when there is one."""
        ...

    def webhook_needs_confirmation(self, ctx: WebhookContext) -> bool:
        """True when a delivery's word alone is not proof (no signature was checked): the status
        is then confirmed with reelhook's own GET before anything is recorded."""
        ...

    def webhook_secret_missing(self, ctx: WebhookContext) -> bool:
        """True when the provider signs its webhooks but no secret for it is configured, so a
        delivery could not be verified: a deployment fault, reported as a metric and alarm."""
        ...

    def error_message(self, status_code: int, body: Any) -> str: ...

    def key_probe_call(self, extras: Mapping[str, str]) -> HttpCall:
        """One cheap authenticated request that creates nothing (a status GET for a task that
        cannot exist): how ``reelhook doctor`` tells whether the configured key works."""
        ...

    def read_key_probe(self, status_code: int | None, body: Any) -> KeyProbe:
        """The verdict on the key from the probe's answer (``status_code`` None: no answer came)."""
        ...


def result_urls(items: Any) -> tuple[str, ...]:
    """Read result links defensively: a string, ``{"url"}``, or a list of either."""
    if items is None:
        return ()
    if isinstance(items, str | dict):
        items = [items]
    if not isinstance(items, list):
        raise MalformedPayload("results must be a list")
    urls: list[str] = []
    for item in items:
        url = item.get("url") if isinstance(item, dict) else item
        if not isinstance(url, str) or not url.strip():
            raise MalformedPayload("a result item has no usable url")
        urls.append(url.strip())
    return tuple(urls)


def require_mapping(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MalformedPayload(f"{what} must be a JSON object")
    return body
