"""Moving a job to its next route, and keeping each provider's circuit.

A job naming a logical model carries its routes (concrete models, in order) and a policy:
``submit`` moves on when a submit is refused or unavailable, ``any`` also when the task
fails, ``none`` never. A submit whose outcome is unknown never moves on: a paid task may
exist. Each route is tried once per job, and a job moves only to another provider, so a
late webhook or poll for an earlier attempt names a provider the job no longer has and
changes nothing (the table's conditions check the provider).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from reelhook import clock
from reelhook.adapters import circuit
from reelhook.adapters.jobs_table import JobStore
from reelhook.adapters.queue import send_submit
from reelhook.config import settings
from reelhook.providers import get_model, get_provider
from reelhook.routing import job_spec
from reelhook.services.rate_limit import release_in_flight
from reelhook.spec import ModelSpec
from reelhook.states import Status

logger = logging.getLogger(__name__)
# Definite refusals that say the provider account, not the job, is the problem.
ACCOUNT_REFUSALS = frozenset({401, 402, 403})


def policy(job: dict[str, Any]) -> str:
    if len(job.get("routes") or ()) < 2:
        return "none"
    return str((job.get("routing") or {}).get("failover") or settings().routing_failover)


def may_fail_over(job: dict[str, Any], on: Literal["submit", "task"]) -> bool:
    chosen = policy(job)
    return chosen == "any" or (chosen == "submit" and on == "submit")


def next_route(job: dict[str, Any], now: float) -> ModelSpec | None:
    """The first route not tried yet whose provider's circuit lets it in; failing that, the
    first one not tried (an open circuit beats giving up on the job)."""
    tried = {attempt["provider"] for attempt in job.get("attempts") or ()} | {job["provider"]}
    untried = [spec for spec in (get_model(m) for m in job.get("routes") or ()) if spec.provider not in tried]
    for spec in untried:
        if circuit.usable(spec.provider, now):
            return spec
    return untried[0] if untried else None


def fail_over(store: JobStore, job: dict[str, Any], *, outcome: str, reason: str,
              claimed_at: str | None = None, task_id: str | None = None) -> dict[str, Any] | None:
    """Queue ``job`` on its next route. None when no route is left (the caller carries on as
    without routing); otherwise the job as it now is (moved by this call or by another)."""
    now = clock.now()
    spec = next_route(job, now)
    if spec is None:
        return None
    old = job_spec(job)
    now_iso = clock.iso(now)
    attempt = {"provider": old.provider, "model": old.id, "task_id": job.get("provider_task_id"),
               "outcome": outcome, "started_at": job.get("submit_started_at"), "ended_at": now_iso,
               "reason": reason[:500]}
    conf = settings()
    first_check = (conf.reconcile_after_seconds if get_provider(spec.provider).sends_webhooks(
        conf.provider(spec.provider).extras) else conf.poll_base_seconds)
    effective, notes = spec.effective(job["request"])
    moved = store.switch_route(
        job["id"], from_provider=old.provider, route={"provider": spec.provider, "model": spec.id},
        attempt=attempt, now_iso=now_iso, claimed_at=claimed_at, task_id=task_id,
        event={"status": Status.QUEUED.value, "at": now_iso, "source": "failover", "reason": outcome,
               "from": old.id, "to": spec.id},
        set_fields={"next_check_at": int(now) + first_check, "effective": effective, "effective_notes": notes},
    )
    if not moved.applied:
        return moved.job or job
    logger.warning("job %s moved from %s to %s", job["id"], old.id, spec.id,
                   extra={"outcome": outcome, "reason": reason[:200]})
    try:
        release_in_flight(old.provider, job["id"])
    except Exception:  # the poller's sweep frees it: the job is no longer that provider's
        logger.exception("could not free job %s's %s in-flight place", job["id"], old.provider)
    send_submit(job["id"], delay_seconds=0)
    return moved.job


def submit_failed(provider: str, status_code: int | None) -> None:
    """Count a submit failure against the provider's circuit (job-specific refusals do not count)."""
    if status_code is not None and status_code not in ACCOUNT_REFUSALS:
        return
    try:
        circuit.record_failure(provider, clock.now())
    except Exception:  # health bookkeeping must never fail the submit it describes
        logger.exception("could not record a %s submit failure", provider)


def submit_succeeded(provider: str) -> None:
    try:
        circuit.record_success(provider, clock.now())
    except Exception:
        logger.exception("could not record a %s submit success", provider)
