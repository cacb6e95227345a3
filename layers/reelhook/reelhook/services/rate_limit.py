"""Provider governance as callers see it: when may I send, and may this job hold a task.

Limits come from each provider's settings (``{NAME}_REQUESTS_PER_SECOND``, ``{NAME}_BURST``,
``{NAME}_MAX_IN_FLIGHT``; Freepik's documented rate by default). The bookkeeping lives in
``adapters.governance``: one conditional write per reservation, never read-then-write.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from reelhook.adapters import governance
from reelhook.adapters.jobs_table import JobStore
from reelhook.config import settings
from reelhook.states import TERMINAL, Status

# Jobs in these states hold no task at the provider; their place is released on entering them.
_HOLDS_NO_TASK = frozenset({*TERMINAL, Status.STORING})


class RateLimitTimeout(Exception):
    """The next request slot is further away than the caller can wait."""


def reserve(provider: str, *, now: float | None = None) -> float:
    """Reserve one request to ``provider``; returns when it may be sent (now for unlimited providers).

    The slot is held however far away it is: for callers that will use it then (the submit
    queue's message carries it). Callers that will not wait use ``reserve_within``.
    """
    now = time.time() if now is None else now
    conf = settings().provider(provider)
    if conf.requests_per_second is None:
        return now
    at = governance.reserve_request_slot(provider, conf.requests_per_second, conf.burst, now)
    if at is None:  # pragma: no cover - only a reservation with max_wait can be refused
        raise RuntimeError("a reservation without max_wait was refused")
    return at


def reserve_within(provider: str, max_wait: float, *, now: float | None = None) -> float | None:
    """Reserve a request slot only if it comes within ``max_wait`` seconds; None (nothing
    reserved, nothing spent) when it does not."""
    now = time.time() if now is None else now
    conf = settings().provider(provider)
    if conf.requests_per_second is None:
        return now
    return governance.reserve_request_slot(provider, conf.requests_per_second, conf.burst, now, max_wait=max_wait)


def reserve_many_within(provider: str, count: int, max_wait: float, *, now: float | None = None) -> list[float] | None:
    """Reserve ``count`` request slots in one write if the last comes within ``max_wait``
    seconds; returns when each may be sent, or None (nothing reserved)."""
    now = time.time() if now is None else now
    conf = settings().provider(provider)
    if conf.requests_per_second is None:
        return [now] * count
    return governance.reserve_request_slots(provider, conf.requests_per_second, conf.burst, now, count,
                                            max_wait=max_wait)


def slot_gate(
    provider: str,
    *,
    max_wait: float,
    held_at: float | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Callable[[], None]:
    """What runs before each attempt of one request: the first attempt waits for the slot
    reserved for it (``held_at``), if any; every other attempt reserves its own."""
    held = [held_at] if held_at is not None else []

    def before_attempt() -> None:
        if held:
            delay = held.pop() - clock()
            if delay > 0:
                sleep(delay)
            return
        wait_for_slot(provider, max_wait=max_wait, clock=clock, sleep=sleep)

    return before_attempt


def wait_for_slot(
    provider: str,
    *,
    max_wait: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Block until a reserved request slot comes, if it comes within ``max_wait`` seconds."""
    now = clock()
    send_at = reserve_within(provider, max_wait, now=now)
    if send_at is None:
        raise RateLimitTimeout(f"the next {provider} request slot is more than {max_wait:g} s away")
    if send_at > now:
        sleep(send_at - now)


def take_in_flight(provider: str, job_id: str) -> bool:
    """True when the job may hold a task at ``provider`` (always, without a cap)."""
    cap = settings().provider(provider).max_in_flight
    return cap <= 0 or governance.acquire_in_flight(provider, job_id, cap)


def release_in_flight(provider: str, job_id: str) -> None:
    if settings().provider(provider).max_in_flight > 0:
        governance.release_in_flight(provider, job_id)


def sweep_in_flight(provider: str, store: JobStore | None = None) -> set[str]:
    """Release the places of jobs that hold no task at ``provider`` (a release that never happened).

    A job leaves the in-flight set when it starts storing, fails, is cancelled or fails over
    to another provider; a Lambda that died in between, a consumer that read the job before
    it moved, or a job deleted by its TTL would otherwise hold its place for ever and, at the
    cap, stop the provider's queue. Returns the job ids released.

    Read, then release, without a condition: every state released here is one a job never
    leaves for a task at ``provider`` again (terminal, storing, gone, or moved on, since a
    job never returns to a provider it left), so a release can never free a live place.
    """
    if settings().provider(provider).max_in_flight <= 0:
        return set()
    members = governance.in_flight(provider)
    if not members:
        return set()
    found = (store or JobStore()).statuses(members)

    def holds_no_task(job_id: str) -> bool:
        if job_id not in found:
            return True
        status, current = found[job_id]
        return status in _HOLDS_NO_TASK or current != provider

    stale = {job_id for job_id in members if holds_no_task(job_id)}
    for job_id in stale:
        governance.release_in_flight(provider, job_id)
    return stale
