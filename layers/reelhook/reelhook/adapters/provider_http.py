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
from email.utils import parsedate_to_datetime
from typing import Any

# urllib3, not httpx: botocore has already imported it, so provider calls add nothing to a
# cold start (httpx would add ~100 ms to the api and poller functions).
import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, SSLError

from reelhook import json_input
from reelhook.config import ProviderSettings, settings
from reelhook.providers.base import HttpCall, Provider
from reelhook.records import record

REFUSED_STATUSES = frozenset({429, 503})
MAX_ATTEMPTS = 4
MAX_BACKOFF_SECONDS = 8.0
# A provider's Retry-After is honoured up to SQS's longest message delay.
MAX_REQUEUE_DELAY_SECONDS = 900.0
USER_AGENT = "reelhook/0.1"
_pool: urllib3.PoolManager | None = None
_lock = threading.Lock()
# Failures that happen before a request is on the wire: always safe to try again.
NOT_SENT = (NewConnectionError, ConnectTimeoutError, SSLError)


class ProviderRejected(Exception):
    """The provider refused the request for a reason retrying will not fix (4xx)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class ProviderUnavailable(Exception):
    """Rate-limited or failing after every retry; the request certainly did not take effect."""


class ProviderRefused(ProviderUnavailable):
    """Refused before taking effect (429/503, or never sent); ``retry_after`` is the provider's hint."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OutcomeUnknown(Exception):
    """The request may have taken effect (sent, then no clear answer)."""


@record
class ProviderResponse:
    status_code: int
    body: Any


def http_pool() -> urllib3.PoolManager:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = urllib3.PoolManager(
                    num_pools=8, maxsize=16, retries=False, timeout=urllib3.Timeout(connect=5.0, read=30.0)
                )
    return _pool


def api_key_field(provider_name: str) -> str:
    """The deployment secret's field holding a provider's API key."""
    return f"{provider_name}_api_key"


def auth_headers(provider_name: str, secrets: Mapping[str, str],
                 conf: ProviderSettings | None = None) -> dict[str, str]:
    conf = conf or settings().provider(provider_name)
    key = secrets.get(api_key_field(provider_name), "")
    return {conf.api_key_header: f"{conf.api_key_prefix}{key}"}


def retry_after_header(headers: Mapping[str, str], *, cap: float) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), at most ``cap``; None when absent or unreadable."""
    header = headers.get("retry-after")
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(cap, max(0.0, seconds))


def retry_after_seconds(headers: Mapping[str, str], attempt: int) -> float:
    """Honour ``Retry-After`` (seconds or HTTP date); otherwise exponential backoff, full jitter."""
    hinted = retry_after_header(headers, cap=MAX_BACKOFF_SECONDS)
    if hinted is not None:
        return hinted
    return random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.25 * 2**attempt))


def _body(data: bytes) -> Any:
    try:
        return json_input.loads(data)
    except json_input.JsonInputError:  # not JSON, or hostile JSON: kept as text for the error message
        return data[:500].decode("utf-8", "replace")


def send(
    provider: Provider,
    call: HttpCall,
    secrets: Mapping[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
    before_attempt: Callable[[], None] | None = None,
    retry_refused: bool = True,
) -> ProviderResponse:
    """Send ``call`` to ``provider`` and return its JSON answer, retrying only where safe.

    ``before_attempt`` runs before every attempt (the rate limiter hooks in here). With
    ``retry_refused=False`` a refusal (429/503, or a request never sent) is not retried here
    but raised as ``ProviderRefused``, for callers that queue the work for later instead.
    """
    idempotent = call.method == "GET"
    url = settings().provider(provider.name).base_url + call.path
    headers = auth_headers(provider.name, secrets) | {"user-agent": USER_AGENT, "accept": "application/json"}
    body = None
    if call.json is not None:
        body = json.dumps(call.json).encode()
        headers["content-type"] = "application/json"
    last_error = "no attempt made"
    for attempt in range(MAX_ATTEMPTS):
        if before_attempt is not None:
            before_attempt()
        try:
            response = http_pool().request(call.method, url, body=body, headers=headers, redirect=False)
        except NOT_SENT as exc:
            last_error = f"could not connect: {type(exc).__name__}"
            if not retry_refused:
                raise ProviderRefused(last_error, None) from exc
            sleep(random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.25 * 2**attempt)))
            continue
        except HTTPError as exc:  # read timeout, dropped connection: the request may have arrived
            if not idempotent:
                raise OutcomeUnknown(f"{type(exc).__name__} after the request was sent") from exc
            last_error = type(exc).__name__
            sleep(random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.25 * 2**attempt)))
            continue
        status = response.status
        if status < 300:
            return ProviderResponse(status, _body(response.data))
        message = provider.error_message(status, _body(response.data))
        if status in REFUSED_STATUSES or (idempotent and status >= 500):
            last_error = f"HTTP {status}: {message}"
            if not retry_refused:
                raise ProviderRefused(last_error, retry_after_header(response.headers, cap=MAX_REQUEUE_DELAY_SECONDS))
            sleep(retry_after_seconds(response.headers, attempt))
            continue
        if status >= 500:
            raise OutcomeUnknown(f"HTTP {status}: {message}")
        raise ProviderRejected(status, message)
    raise ProviderUnavailable(last_error)
