"""Provider governance as callers see it: when may I send, and may this job hold a task.

Limits come from each provider's settings (``{NAME}_REQUESTS_PER_SECOND``, ``{NAME}_BURST``,
``{NAME}_MAX_IN_FLIGHT``; Freepik's documented rate by default). The bookkeeping lives in
``adapters.governance``: one conditional write per reservation, never read-then-write.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from reelhook.adapters import governance
from reelhook.config import settings


class RateLimitTimeout(Exception):
    """The next request slot is further away than the caller can wait."""


def reserve(provider: str, *, now: float | None = None) -> float:
    """Reserve one request to ``provider``; returns when it may be sent (now for unlimited providers)."""
    now = time.time() if now is None else now
    conf = settings().provider(provider)
    if conf.requests_per_second is None:
        return now
    return governance.reserve_request_slot(provider, conf.requests_per_second, conf.burst, now)


def wait_for_slot(
    provider: str,
    *,
    max_wait: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Block until a reserved request slot comes, if it comes within ``max_wait`` seconds."""
    now = clock()
    send_at = reserve(provider, now=now)
    if send_at - now > max_wait:
        # The slot is forfeited: a wasted slot only slows us down, it never overspends.
        raise RateLimitTimeout(f"the next {provider} request slot is {send_at - now:.1f} s away")
    if send_at > now:
        sleep(send_at - now)


def take_in_flight(provider: str, job_id: str) -> bool:
    """True when the job may hold a task at ``provider`` (always, without a cap)."""
    cap = settings().provider(provider).max_in_flight
    return cap <= 0 or governance.acquire_in_flight(provider, job_id, cap)


def release_in_flight(provider: str, job_id: str) -> None:
    if settings().provider(provider).max_in_flight > 0:
        governance.release_in_flight(provider, job_id)
