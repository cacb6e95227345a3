"""HTTP calls to providers: auth from the secret, retries with backoff, honest failure kinds.

Retries follow one rule: a request is repeated only when it certainly did not take
effect. A GET is always safe to repeat. A submit (POST) is repeated after 429 and 503,
which refuse the request, and after a failure to connect; a 500/502/504 or a timeout
after the body was sent leaves the outcome unknown, and the caller must not re-send.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from reelhook.config import settings
from reelhook.providers.base import HttpCall, Provider

REFUSED_STATUSES = frozenset({429, 503})
MAX_ATTEMPTS = 4
MAX_BACKOFF_SECONDS = 8.0
_client: httpx.Client | None = None
_lock = threading.Lock()


class ProviderRejected(Exception):
    """The provider refused the request for a reason retrying will not fix (4xx)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class ProviderUnavailable(Exception):
    """Rate-limited or failing after every retry; the request certainly did not take effect."""


class OutcomeUnknown(Exception):
    """The request may have taken effect (sent, then no clear answer)."""


@dataclass(frozen=True)
class ProviderResponse:
    status_code: int
    body: Any


def http_client() -> httpx.Client:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = httpx.Client(
                    timeout=httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0),
                    follow_redirects=False,
                    headers={"user-agent": "reelhook/0.1"},
                )
    return _client


def auth_headers(provider_name: str, secrets: Mapping[str, str]) -> dict[str, str]:
    conf = settings().provider(provider_name)
    key = secrets.get(f"{provider_name}_api_key", "")
    return {conf.api_key_header: f"{conf.api_key_prefix}{key}"}


def retry_after_seconds(response: httpx.Response, attempt: int) -> float:
    """Honour ``Retry-After`` (seconds or HTTP date); otherwise exponential backoff, full jitter."""
    header = response.headers.get("retry-after")
    if header:
        try:
            return min(MAX_BACKOFF_SECONDS, max(0.0, float(header)))
        except ValueError:
            try:
                return min(MAX_BACKOFF_SECONDS, max(0.0, parsedate_to_datetime(header).timestamp() - time.time()))
            except (TypeError, ValueError):
                pass
    return random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.25 * 2**attempt))


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:500]


def send(
    provider: Provider,
    call: HttpCall,
    secrets: Mapping[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
    before_attempt: Callable[[], None] | None = None,
) -> ProviderResponse:
    """Send ``call`` to ``provider`` and return its JSON answer, retrying only where safe.

    ``before_attempt`` runs before every attempt (the rate limiter hooks in here).
    """
    idempotent = call.method == "GET"
    url = settings().provider(provider.name).base_url + call.path
    headers = auth_headers(provider.name, secrets)
    last_error = "no attempt made"
    for attempt in range(MAX_ATTEMPTS):
        if before_attempt is not None:
            before_attempt()
        try:
            response = http_client().request(call.method, url, json=call.json, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            last_error = f"could not connect: {type(exc).__name__}"
            sleep(random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.25 * 2**attempt)))
            continue
        except httpx.HTTPError as exc:
            if not idempotent:
                raise OutcomeUnknown(f"{type(exc).__name__} after the request was sent") from exc
            last_error = type(exc).__name__
            sleep(random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.25 * 2**attempt)))
            continue
        if response.status_code < 300:
            return ProviderResponse(response.status_code, _body(response))
        body = _body(response)
        message = provider.error_message(response.status_code, body)
        if response.status_code in REFUSED_STATUSES or (idempotent and response.status_code >= 500):
            last_error = f"HTTP {response.status_code}: {message}"
            sleep(retry_after_seconds(response, attempt))
            continue
        if response.status_code >= 500:
            raise OutcomeUnknown(f"HTTP {response.status_code}: {message}")
        raise ProviderRejected(response.status_code, message)
    raise ProviderUnavailable(last_error)
