"""Create a job and send it to its provider."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

from reelhook import clock
from reelhook.adapters import circuit, provider_http
from reelhook.adapters.jobs_table import JobStore, active_shard
from reelhook.adapters.queue import send_submit
from reelhook.adapters.secrets import callback_token_key, get_secrets
from reelhook.config import settings
from reelhook.providers import get_provider
from reelhook.routing import RoutePlan, job_spec
from reelhook.services import failover, rate_limit
from reelhook.services.media import presigned_request
from reelhook.services.status import fail_job
from reelhook.spec import ModelSpec, NormalizedRequest
from reelhook.states import Status
from reelhook.webhook_auth import job_token

logger = logging.getLogger(__name__)
# The API and the inbox send at once only when a request slot is this close; the submit
# consumer sleeps for a slot up to QUEUE_WAIT_SECONDS and queues anything further away.
INLINE_WAIT_SECONDS = 0.2
QUEUE_WAIT_SECONDS = 2.0
# A message that comes back up to this long after its reserved slot still sends on it (the
# slot was counted and never used); later than that it reserves a new one. Late sends bunch
# at most rate * (window + 5 s) + burst into a window: for Freepik's defaults 9.5 * 125 + 5 =
# 1,193 in any 2 minutes (limit 1,200) and 9.5 * 10 + 5 = 100 in any 5 s (limit 250).
LATE_SLOT_SECONDS = 5.0
# Records of one batch handled at once, so each waits for its own slot rather than in line.
BATCH_THREADS = 10
# A provider at its in-flight cap is asked again after this backoff (seconds, jittered).
CONCURRENCY_BASE_DELAY = 5
CONCURRENCY_MAX_DELAY = 120


def body_hash(req: NormalizedRequest) -> str:
    return hashlib.sha256(json.dumps(req, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def callback_url(base_url: str, provider: str, job_id: str) -> str:
    token = job_token(callback_token_key(), provider, job_id)
    return f"{base_url}/v1/callbacks/{provider}/{job_id}?token={token}"


def submit_job(
    spec: ModelSpec,
    req: NormalizedRequest,
    *,
    idempotency_key: str | None,
    callback_base_url: str,
    store: JobStore | None = None,
    origin: dict[str, Any] | None = None,
    plan: RoutePlan | None = None,
    owner: str,
) -> tuple[dict[str, Any], bool]:
    """Store the job, then send it if its provider allows it right now, else queue it.

    Returns ``(job, created)``; never waits for a provider's budget. A replayed idempotency
    key returns the first job and makes no provider call. ``spec`` is the route to try first;
    ``plan`` the job's routes when it named a logical model.
    """
    store = store or JobStore()
    provider = get_provider(spec.provider)
    conf = settings()
    extras = conf.provider(spec.provider).extras
    now = clock.now()
    job_id = "job_" + uuid.uuid4().hex
    webhooks = provider.sends_webhooks(extras)
    # Poll-only providers are asked soon; webhook providers only once their webhook is overdue.
    first_check = conf.reconcile_after_seconds if webhooks else conf.poll_base_seconds
    job: dict[str, Any] = {
        "id": job_id,
        "owner": owner,
        "model": req.get("model") or spec.id,
        "provider": spec.provider,
        "route": {"provider": spec.provider, "model": spec.id},
        "status": Status.QUEUED.value,
        "request": dict(req),
        "created_at": clock.iso(now),
        "updated_at": clock.iso(now),
        "events": [{"status": Status.QUEUED.value, "at": clock.iso(now), "source": "inbox" if origin else "api"}],
        "active_shard": active_shard(job_id),
        "next_check_at": int(now) + first_check,
        "poll_count": 0,
    }
    # What the provider is asked: sent values, else each field's default (null where no document
    # gives one); the notes say why a value is null. The job view shows both.
    job["effective"], job["effective_notes"] = spec.effective(req)
    if req.get("client_reference"):
        job["client_reference"] = req["client_reference"]
    if req.get("notify_url"):
        job["notify_url"] = req["notify_url"]  # the notify function delivers the terminal status here
    if origin:
        job["origin"] = dict(origin)  # where the job came from, e.g. an S3 inbox manifest
    if plan is not None:
        job["routes"], job["routing"] = list(plan.routes), plan.stored()
        if plan.skipped:
            job["routes_skipped"] = list(plan.skipped)
    # The request slot is reserved before the job is stored, so that a job which must wait is
    # written once, already saying why (in a burst, most do). A replayed idempotency key wastes
    # its slot: that only slows sending down, it never overspends.
    slot_at = _reserve_quietly(spec.provider)
    if slot_at is not None and slot_at - time.time() > INLINE_WAIT_SECONDS:
        job["waiting_for"] = "rate_limit"
    job, created = store.create(
        # The job's own TTL is set when it ends (JobStore.transition); the key's counts from now.
        job, idempotency_key=idempotency_key, body_hash=body_hash(req), ttl=int(now) + conf.job_ttl_days * 86400
    )
    if not created:
        return job, False
    try:
        return dispatch(spec, job, callback_base_url=callback_base_url, store=store, max_wait=INLINE_WAIT_SECONDS,
                        slot_at=slot_at), True
    except Exception:
        # The job is stored and queued: the reconciler puts it on the submit queue when it comes due.
        logger.exception("job %s stored but not yet handed on; the reconciler will", job_id)
        return store.get(job_id, consistent=True) or job, True


def _reserve_quietly(provider: str) -> float | None:
    try:
        return rate_limit.reserve(provider)
    except Exception:  # the budget item is unreachable: store the job anyway, dispatch tries again
        logger.exception("could not reserve a %s request slot before storing the job", provider)
        return None


def dispatch(
    spec: ModelSpec,
    job: dict[str, Any],
    *,
    callback_base_url: str,
    store: JobStore,
    max_wait: float,
    slot_at: float | None = None,
    attempt: int = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Send a queued job now if its provider allows it within ``max_wait`` seconds, else queue it.

    Never fails a job for being busy: no request slot or no in-flight room puts the job on
    the submit queue, with the reason in ``waiting_for``. ``slot_at`` is a request slot this
    job reserved earlier (its queue message carries it).
    """
    if job.get("status") != Status.QUEUED.value or job.get("submit_started_at"):
        return job  # sent, being sent, or moved on: never twice
    provider = spec.provider
    if failover.may_fail_over(job, "submit") and not circuit.usable(provider, clock.now()):
        moved = failover.fail_over(store, job, outcome="skipped", reason=f"the {provider} circuit is open")
        if moved is not None:
            return moved
    if not rate_limit.take_in_flight(provider, job["id"]):
        return _wait(job, "provider_concurrency", delay=_backoff(attempt), attempt=attempt, store=store)
    now = time.time()
    if slot_at is not None and now - slot_at > LATE_SLOT_SECONDS:
        slot_at = None  # sending on a stale slot would bunch requests above the rate: take a new one
    if slot_at is None:
        slot_at = rate_limit.reserve(provider, now=now)
    if slot_at - now > max_wait:
        return _wait(job, "rate_limit", delay=_delay_until(slot_at, now), slot_at=slot_at, attempt=attempt, store=store)
    if slot_at > now:
        sleep(slot_at - now)
    claimed_at = clock.iso(clock.now())
    if not store.claim_submit(job["id"], claimed_at, provider=provider):
        now_job = store.get(job["id"], consistent=True) or job
        if now_job.get("provider") != provider:
            # This caller read the job before it failed over: the place it just took is not the
            # job's (a job never returns to a provider it left, so releasing it is safe).
            rate_limit.release_in_flight(provider, job["id"])
        return now_job
    return send_to_provider(spec, job, callback_base_url=callback_base_url, store=store,
                            claimed_at=claimed_at, attempt=attempt)


def _delay_until(slot_at: float, now: float) -> int:
    """The queue delay (whole seconds) that brings a message back just before its slot.

    Rounding down lets the consumer sleep the last fraction (it sleeps up to
    QUEUE_WAIT_SECONDS) and send on time. Rounding up would bring every message back up to a
    second late, so a second's worth of slots would arrive together and go out as one bunch.
    """
    return max(0, math.floor(slot_at - now))


def _backoff(attempt: int) -> int:
    return int(min(CONCURRENCY_MAX_DELAY, CONCURRENCY_BASE_DELAY * 2 ** min(attempt, 6)) * random.uniform(0.8, 1.2))


def _wait(job: dict[str, Any], reason: str, *, delay: int, attempt: int, store: JobStore,
          slot_at: float | None = None) -> dict[str, Any]:
    if job.get("waiting_for") != reason:
        store.update_fields(job["id"], {"waiting_for": reason}, only_if_status=[Status.QUEUED])
    send_submit(job["id"], delay_seconds=delay, slot_at=slot_at, attempt=attempt + 1)
    return {**job, "waiting_for": reason}


def send_to_provider(
    spec: ModelSpec, job: dict[str, Any], *, callback_base_url: str, store: JobStore,
    claimed_at: str, attempt: int = 0,
) -> dict[str, Any]:
    """Send the create request of a job this caller has claimed; at most once, whatever happens."""
    provider = get_provider(spec.provider)
    extras = settings().provider(spec.provider).extras
    job_id = job["id"]
    hook = callback_url(callback_base_url, spec.provider, job_id) if provider.sends_webhooks(extras) else None
    call = provider.submit_call(spec, presigned_request(job["request"]), hook, extras)
    try:
        answer = provider_http.send(provider, call, get_secrets(), retry_refused=False)
        task_id = provider.parse_submit(answer.body)
    except provider_http.ProviderRefused as exc:
        # Certainly no task: give the claim back and try again later, as the provider asks,
        # or, after refusals enough in a row, on the job's next route.
        failover.submit_failed(spec.provider, None)
        refusals = int(job.get("submit_refusals", 0)) + 1
        if refusals >= settings().refusals_before_failover and failover.may_fail_over(job, "submit"):
            moved = failover.fail_over(store, {**job, "submit_started_at": claimed_at}, outcome="refused",
                                       reason=f"{refusals} refusals in a row, the last {exc}", claimed_at=claimed_at)
            if moved is not None:
                return moved
        delay = math.ceil(exc.retry_after if exc.retry_after is not None else _backoff(attempt))
        # The reconciler re-queues a queued job once its next check is due: due before the
        # message comes back, it would send the job again before the provider's Retry-After,
        # spend a refusal early (failing over sooner than asked) and start a second chain of
        # messages. It steps in only once this message is overdue.
        waiting = {"waiting_for": "rate_limit", "last_submit_error": str(exc)[:500], "submit_refusals": refusals,
                   "next_check_at": int(clock.now()) + delay + settings().reconcile_after_seconds}
        if store.release_submit(job_id, claimed_at, waiting):
            send_submit(job_id, delay_seconds=delay, attempt=attempt + 1)
        return store.get(job_id, consistent=True) or job
    except provider_http.ProviderRejected as exc:
        failover.submit_failed(spec.provider, exc.status_code)
        reason = f"HTTP {exc.status_code}: {exc.message}"
        if failover.may_fail_over(job, "submit"):
            moved = failover.fail_over(store, {**job, "submit_started_at": claimed_at}, outcome="rejected",
                                       reason=reason, claimed_at=claimed_at)
            if moved is not None:
                return moved
        return fail_job(store, job["id"], "provider_rejected", reason) or job
    except provider_http.OutcomeUnknown as exc:
        failover.submit_failed(spec.provider, None)
        return _outcome_unknown(store, job, str(exc))
    except ValueError as exc:
        # A 2xx answer reelhook cannot read a task id from (UniAll documents only "{}"): the
        # provider accepted the request, so it is as unknown as a timeout, never a failure to retry.
        return _outcome_unknown(store, job, f"the provider accepted the create request but its answer has no "
                                            f"usable task id ({exc}); it may have created, and may bill, a task")
    failover.submit_succeeded(spec.provider)
    now = clock.now()
    moved = store.transition(
        job_id,
        Status.SUBMITTED,
        now_iso=clock.iso(now),
        task_id=task_id,
        event={"status": Status.SUBMITTED.value, "at": clock.iso(now), "source": "submit"},
    )
    if moved.applied or moved.job is None:
        return moved.job or job
    # A webhook overtook us: it already moved the job. Make sure the task id is recorded.
    if "provider_task_id" not in moved.job:
        store.update_fields(job_id, {"provider_task_id": task_id},
                            only_if_status=[Status.RUNNING, Status.STORING, Status.SUCCEEDED])
    return store.get(job_id, consistent=True) or moved.job


def _outcome_unknown(store: JobStore, job: dict[str, Any], reason: str) -> dict[str, Any]:
    """Never re-sent: the provider may have a (paid) task. A webhook, if one comes, adopts it;
    otherwise the reconciler fails the job as submit_outcome_unknown after the deadline."""
    store.update_fields(job["id"], {"submit_outcome": "unknown", "submit_error": reason[:1000]},
                        only_if_status=[Status.QUEUED])
    return store.get(job["id"], consistent=True) or job


class _SubmitMessage(NamedTuple):
    message_id: str
    job_id: str
    slot_at: float | None  # the request slot reserved for this job, if any
    attempt: int

    @classmethod
    def read(cls, record: dict[str, Any]) -> _SubmitMessage | None:
        try:
            body = json.loads(record["body"])
            slot = body.get("slot_at")
            return cls(str(record["messageId"]), str(body["job_id"]),
                       float(slot) if isinstance(slot, int | float) else None, int(body.get("attempt", 0)))
        except (KeyError, TypeError, ValueError):
            logger.error("unreadable submit message %s", record.get("messageId"))  # a poison message never succeeds
            return None


def handle_submit_messages(records: list[dict[str, Any]], *, callback_base_url: str) -> list[str]:
    """The submit queue's consumer: returns the message ids to retry.

    The batch's jobs are read in one consistent BatchGetItem rather than one GetItem each: a
    record waiting for its request slot holds the whole invocation, so every round trip it
    saves is consumer time given back to the queue.
    """
    store = JobStore()
    messages = [message for message in map(_SubmitMessage.read, records) if message is not None]
    try:
        jobs = store.get_many({message.job_id for message in messages}, consistent=True)
    except Exception:
        logger.exception("could not read the jobs of %d submit messages; they come back", len(messages))
        return [message.message_id for message in messages]

    def one(message: _SubmitMessage) -> str | None:
        job = jobs.get(message.job_id)
        if job is None:
            return None  # gone (deleted, or expired by its TTL): nothing to send
        try:
            dispatch(job_spec(job), job, callback_base_url=callback_base_url, store=store,
                     max_wait=QUEUE_WAIT_SECONDS, slot_at=message.slot_at, attempt=message.attempt)
        except Exception:
            logger.exception("submit of job %s not handled; the message comes back", message.job_id)
            return message.message_id
        return None

    if len(messages) <= 1:
        results = [one(message) for message in messages]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(BATCH_THREADS, len(messages)), thread_name_prefix="submit") as pool:
            results = list(pool.map(one, messages))
    return [message_id for message_id in results if message_id]
