"""What the server and the provider modules exchange: requests, responses, webhooks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, Protocol

from .config import SandboxConfig
from .tasks import Phase, Task, TaskStore


class BadJson(ValueError):
    """The request body is not a JSON object."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # below the provider prefix, without the query string
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def json_object(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadJson(f"the body is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise BadJson("the body must be a JSON object")
        return value

    def bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


class AbortResponse(Exception):
    """Raised by a response's ``chunks`` to close the connection mid-body (a truncated download)."""


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Streamed instead of ``body`` when set; ``headers`` must then carry the Content-Length.
    chunks: Iterable[bytes] | None = None

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        *,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return cls(status, encode_json(payload), {"Content-Type": content_type, **(headers or {})})


@dataclass(frozen=True)
class Outgoing:
    """A webhook the sandbox is about to send."""

    url: str
    body: bytes
    headers: dict[str, str]
    status: str  # the task status it reports
    delivery_id: str


def encode_json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class Host(Protocol):
    """The sandbox services a provider module uses."""

    config: SandboxConfig
    tasks: TaskStore

    def now(self) -> float: ...

    def result_url(self, task: Task) -> str: ...

    def api_fault(self, request: Literal["submit", "status"], provider: str | None = None) -> int | None:
        """The status to refuse this create or status GET with (an injected fault), if any."""
        ...


class ProviderApi(Protocol):
    """One impersonated provider, mounted under ``/<name>``."""

    name: str

    def handle(self, request: Request) -> Response: ...

    def refusal(self, status: int, headers: dict[str, str]) -> Response:
        """An error answer (a 429, 500 or 503) in this provider's own shape."""
        ...

    def notifications(self, task: Task) -> list[Outgoing]:
        """Webhooks to send now that ``task`` has entered its current phase."""
        ...


def status_words(
    submitted: str, running: str, completed: str, failed: str
) -> dict[Phase, str]:
    """A provider's vocabulary; RESULTS_PENDING reads as completed (its results are just empty)."""
    return {
        Phase.SUBMITTED: submitted,
        Phase.RUNNING: running,
        Phase.RESULTS_PENDING: completed,
        Phase.COMPLETED: completed,
        Phase.FAILED: failed,
    }


# Injected failures for the OpenAI-style error envelopes (UniAll, AIHubMax): code, type, message.
_FAULTS: dict[int, tuple[str, str, str]] = {
    402: ("insufficient_quota", "insufficient_quota", "Insufficient quota for this request"),
    429: ("rate_limit_exceeded", "rate_limit_error", "Too many requests"),
    500: ("internal_error", "server_error", "Internal server error"),
    502: ("bad_gateway", "server_error", "Bad gateway"),
    503: ("service_unavailable", "server_error", "Service unavailable, please try again later"),
}


def fault_words(status: int) -> tuple[str, str, str]:
    """``(code, type, message)`` for an injected failure with this HTTP status."""
    if status in _FAULTS:
        return _FAULTS[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return ("error", "api_error", phrase)

