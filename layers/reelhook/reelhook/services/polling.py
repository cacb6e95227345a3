"""Ask providers for status: polling for providers without webhooks, and the reconciler.

One scheduled pass walks the sparse ``active-index`` for jobs whose ``next_check_at``
has passed. Poll-only providers are asked with backoff per job; webhook providers are
asked only when their webhook is overdue (a missed webhook). Jobs stuck in ``storing``
get their copy re-queued. Every status goes through ``apply_status``, as webhooks do.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reelhook import clock
from reelhook.adapters import provider_http
from reelhook.adapters.jobs_table import JobStore
from reelhook.adapters.queue import send_checks, send_submit, send_transfer
from reelhook.adapters.secrets import get_secrets
from reelhook.config import settings
from reelhook.providers import get_provider, provider_names
from reelhook.providers.base import MalformedPayload, Phase, ProviderStatus
from reelhook.routing import job_spec
from reelhook.services.rate_limit import RateLimitTimeout, reserve_many_within, slot_gate, sweep_in_flight
from reelhook.services.status import TARGET, apply_status, fail_job, storing_check_at
from reelhook.states import TERMINAL, Status, can_move

logger = logging.getLogger(__name__)
# A copy still pending this close to its links' deadline is worth an alarm.
NEAR_EXPIRY_SECONDS = 600
# A status GET waits this long at most for its request slot; a job that cannot get one stays
# due and is checked on the next pass.
POLL_SLOT_WAIT_SECONDS = 5.0
# Outcomes of a pass, published as CloudWatch metrics under these names (README: Metrics).
OUTCOME_METRICS = {
    "moved_to_submitted": "JobsAdvanced", "moved_to_running": "JobsAdvanced", "moved_to_storing": "JobsAdvanced",
    "moved_to_failed": "JobsAdvanced", "moved_to_queued": "JobsFailedOver",
    "unchanged": "JobsUnchanged", "provider_unavailable": "ProviderUnavailable",
    "poll_rejected": "PollRejected", "transfer_redriven": "TransfersRedriven",
    "transfer_redriven_near_expiry": "JobsNearLinkExpiry", "failed_output_expired": "JobsOutputExpired",
    "failed_unknown_submit": "JobsSubmitOutcomeUnknown", "waiting_for_submit": "JobsUnchanged",
    "submit_requeued": "SubmitsRequeued", "in_flight_released": "InFlightReleased",
    "in_flight_sweep_failed": "PollErrors",
    "deferred": "JobsDeferred", "dispatched": "ChecksDispatched", "dispatch_refused": "PollErrors",
    "already_checked": "JobsUnchanged", "already_dispatched": "ChecksAlreadyQueued", "unreadable": "PollErrors",
    "moved_on": "JobsUnchanged", "terminal": "JobsUnchanged", "error": "PollErrors",
    "failed_deadline_exceeded": "JobsPastDeadline", "failed_task_missing": "JobsPastDeadline",
    "event_republished": "JobEventsRepublished", "event_republish_failed": "PollErrors",
    "awaiting_event": "JobsUnchanged", "event_recorded": "JobsUnchanged",
}
# Phases measured against the running deadline, and the events that start it.
IN_PROGRESS = frozenset({Status.SUBMITTED, Status.RUNNING})


def fetch_status(job: dict[str, Any], *, held_slot: float | None = None) -> ProviderStatus:
    """The provider's status of the job's task. ``held_slot``: a request slot already reserved
    for this check (a batch reserves its slots together); retries reserve their own."""
    spec = job_spec(job)
    provider = get_provider(spec.provider)
    call = provider.status_call(spec, job["provider_task_id"], settings().provider(spec.provider).extras)
    answer = provider_http.send(
        provider, call, get_secrets(),
        before_attempt=slot_gate(spec.provider, max_wait=POLL_SLOT_WAIT_SECONDS, held_at=held_slot),
    )
    return provider.parse_status(answer.body, from_webhook=False)


class TaskMismatch(Exception):
    """A webhook names another task than the one this job has."""


def confirm_status(job_id: str, provider_name: str, reported: ProviderStatus) -> ProviderStatus | None:
    """For unsigned webhooks: believe the provider's own status endpoint, not the body."""
    job = JobStore().get(job_id, consistent=True)
    if job is None or job.get("provider") != provider_name:
        return None
    known = job.get("provider_task_id")
    if known and reported.task_id and reported.task_id != known:
        raise TaskMismatch(reported.task_id)
    task_id = known or reported.task_id
    if not task_id:
        return None
    confirmed = fetch_status({**job, "provider_task_id": task_id})
    if confirmed.task_id and confirmed.task_id != task_id:
        raise TaskMismatch(confirmed.task_id)
    return confirmed


def next_interval(job: dict[str, Any]) -> int:
    conf = settings()
    provider = get_provider(job["provider"])
    if provider.sends_webhooks(conf.provider(job["provider"]).extras):
        return conf.reconcile_after_seconds
    backoff = conf.poll_base_seconds * 2 ** min(int(job.get("poll_count", 0)), 6)
    return int(min(conf.poll_max_seconds, backoff) * random.uniform(0.8, 1.0)) or 1


def asks_provider(job: dict[str, Any]) -> bool:
    """Whether checking this job starts with a status request (see ``check_job``)."""
    status = Status(job["status"])
    return status not in TERMINAL and status is not Status.STORING and bool(job.get("provider_task_id"))


def check_job(job: dict[str, Any], *, store: JobStore, claimed: bool = False, held_slot: float | None = None) -> str:
    """Look at one due job and move it on. Returns what was done (for metrics and logs).

    ``claimed``: the job came from ``claim_check``, which already moved ``next_check_at`` on.
    ``held_slot``: a request slot reserved for its status request.
    """
    now = clock.now()
    status = Status(job["status"])
    if status in TERMINAL:
        return _publish_if_lost(job, store=store, now=now)
    if status is Status.STORING:
        return _redrive_storing(job, store=store, now=now)
    if not job.get("provider_task_id"):
        if not job.get("submit_started_at") and _overdue(job, status, now):
            return _fail_overdue(job, status, store=store)
        return _resolve_unsent(job, store=store, now=now)
    bookkeeping = {"next_check_at": int(now) + next_interval(job), "poll_count": int(job.get("poll_count", 0)) + 1}
    if claimed:
        bookkeeping = {}
    try:
        reported = fetch_status(job, held_slot=held_slot)
    except (provider_http.ProviderUnavailable, provider_http.OutcomeUnknown, RateLimitTimeout):
        if bookkeeping:
            store.update_fields(job["id"], bookkeeping, only_if_status=[status])
        return _unless_overdue(job, status, now, store, "provider_unavailable")
    except (provider_http.ProviderRejected, MalformedPayload) as exc:
        if isinstance(exc, provider_http.ProviderRejected) and exc.status_code == 404:
            missing = store.count_task_missing(job["id"], status, str(job["provider_task_id"]))
            if missing is not None and missing >= settings().task_missing_polls:
                fail_job(store, job["id"], "provider_task_missing",
                         f"the provider answered 404 (task not found) for task {job['provider_task_id']} "
                         f"on {missing} status checks in a row", source="poll", allowed_from=frozenset({status}))
                return "failed_task_missing"
        store.update_fields(job["id"], bookkeeping | {"last_poll_error": str(exc)[:500]}, only_if_status=[status])
        return _unless_overdue(job, status, now, store, "poll_rejected")
    # Any answer about the task ends a run of 404s.
    reset = {"task_missing_polls": 0} if job.get("task_missing_polls") else {}
    # storing and terminal transitions set (or clear) next_check_at themselves
    keeps_polling = reported.phase in (Phase.SUBMITTED, Phase.RUNNING)
    # The usual answer is "still running": states only move forward, so the transition's
    # condition would refuse it; no write is spent to learn that.
    if can_move(status, TARGET[reported.phase]):
        applied = apply_status(job["id"], job["provider"], reported, source="poll", store=store,
                               extra_fields=(bookkeeping | reset) if keeps_polling and (bookkeeping or reset) else None)
        if applied.transition.applied:
            return f"moved_to_{applied.target.value}"
    if bookkeeping or reset:
        store.update_fields(job["id"], bookkeeping | reset, only_if_status=[status])
    return _unless_overdue(job, status, now, store, "unchanged")


def _phase_started(job: dict[str, Any], status: Status) -> float:
    """When the job entered the phase its deadline measures: created (queued), or first
    submitted or running."""
    if status in IN_PROGRESS:
        for event in job.get("events", []):
            if event.get("status") in IN_PROGRESS:
                return _epoch(str(event.get("at", ""))) or _epoch(job.get("created_at", ""))
    return _epoch(job.get("created_at", ""))


def _overdue(job: dict[str, Any], status: Status, now: float) -> bool:
    conf = settings()
    limit = conf.running_max_age_seconds if status in IN_PROGRESS else conf.queued_max_age_seconds
    return now - _phase_started(job, status) > limit


def _fail_overdue(job: dict[str, Any], status: Status, *, store: JobStore) -> str:
    phase = "submitted or running" if status in IN_PROGRESS else "queued"
    # Conditional on the status the age was measured in: a job that moved on meanwhile is left
    # alone. A queued job is failed only while nobody claimed its create request.
    fail_job(store, job["id"], "deadline_exceeded",
             f"the job stayed {phase} longer than its deadline allows", source="reconciler",
             allowed_from=IN_PROGRESS if status in IN_PROGRESS else frozenset({status}),
             unless_fields=() if status in IN_PROGRESS else ("submit_started_at",))
    return "failed_deadline_exceeded"


def _unless_overdue(job: dict[str, Any], status: Status, now: float, store: JobStore, outcome: str) -> str:
    """The check did not move the job on: past its phase's deadline it fails instead."""
    return _fail_overdue(job, status, store=store) if _overdue(job, status, now) else outcome


def _publish_if_lost(job: dict[str, Any], *, store: JobStore, now: float) -> str:
    """A terminal job still in the active-index: its event was not recorded as published.
    After the grace period (the notifier may still be retrying) it is published from here."""
    if job.get("event_published_at"):
        store.leave_active_index(job["id"])
        return "event_recorded"
    status = Status(job["status"])
    publish_at = int(_epoch(job.get("updated_at", ""))) + settings().event_republish_after_seconds
    if now < publish_at:
        store.update_fields(job["id"], {"next_check_at": publish_at}, only_if_status=[status])
        return "awaiting_event"
    # Imported here: only this rare path needs the notifier's outbox and bus adapters.
    from reelhook.services.notifier import publish_terminal

    if publish_terminal(job, store=store):
        logger.warning("job event re-published", extra={"job_id": job["id"], "status": status.value})
        return "event_republished"
    return "event_republish_failed"


def _redrive_storing(job: dict[str, Any], *, store: JobStore, now: float) -> str:
    """A copy that has not finished: queue it again while the links live, else record why."""
    deadline = int(job.get("links_expire_at", now))
    if now >= deadline:
        fail_job(store, job["id"], "output_expired",
                 "the provider's result links expired before the copy into S3 finished", source="reconciler")
        return "failed_output_expired"
    if store.update_fields(job["id"], {"next_check_at": storing_check_at(now, deadline)},
                           only_if_status=[Status.STORING]):
        send_transfer(job["id"])
        return "transfer_redriven_near_expiry" if deadline - now <= NEAR_EXPIRY_SECONDS else "transfer_redriven"
    return "moved_on"


def _resolve_unsent(job: dict[str, Any], *, store: JobStore, now: float) -> str:
    """A job with no task id. Waiting for its turn: make sure it is on the submit queue.

    Claimed (a create request may have been sent) but no task id: never re-sent. After the
    deadline the job fails as an unknown outcome, since the provider may have a task.
    """
    reconcile = settings().reconcile_after_seconds
    later = {"next_check_at": int(now) + reconcile}
    claimed_at = job.get("submit_started_at")
    if not claimed_at and job.get("submit_outcome") != "unknown":
        # A lost or dead-lettered queue message must not strand the job; a duplicate is harmless
        # (the claim lets only one create request out).
        if store.update_fields(job["id"], later, only_if_status=[Status.QUEUED]):
            send_submit(job["id"])
            return "submit_requeued"
        return "moved_on"
    if now - _epoch(claimed_at or job.get("created_at", "")) < reconcile:
        store.update_fields(job["id"], later, only_if_status=[Status.QUEUED])
        return "waiting_for_submit"
    why = f" ({job['submit_error']})" if job.get("submit_error") else ""
    fail_job(store, job["id"], "submit_outcome_unknown",
             "the provider call did not return a task id in time; the provider may have created, and may bill, "
             f"a task for this job, which reelhook did not re-send to avoid paying twice{why}", source="reconciler")
    return "failed_unknown_submit"


def _epoch(iso_time: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


# Checks one worker runs at once: each mostly waits on the provider and DynamoDB.
WORKER_THREADS = 10


def dispatch_horizon() -> int:
    """How far ahead a pass dispatches: up to the next pass (the poller's period), so each check
    is sent about once. A check due sooner than that after the one being made would wait for
    the pass after next, so the worker queues it itself."""
    return settings().poller_period_seconds


class DispatchMemo:
    """Checks this process dispatched lately, by (job id, due time).

    A job stays due until its worker claims it, so a pass that runs before the claim (workers
    behind under a burst, or a check due now) would send it again, and again at every pass,
    each copy one more wasted claim. Checks sent within ``hold_seconds`` are skipped; after
    that they are sent again, so a check lost on the way (a dead-lettered message) is not lost
    for good. Only an optimisation: the worker's conditional claim is what lets one check in.
    """

    def __init__(self) -> None:
        self._sent: dict[tuple[str, int], float] = {}

    @staticmethod
    def hold_seconds() -> float:
        return max(30.0, 5.0 * settings().poller_period_seconds)

    def fresh(self, job_id: str, due: int, now: float) -> bool:
        sent = self._sent.get((job_id, due))
        return sent is None or now - sent >= self.hold_seconds()

    def sent(self, checks: list[dict[str, object]], now: float) -> None:
        for check in checks:
            self._sent[(str(check["job_id"]), int(str(check["due"])))] = now

    def forget_old(self, now: float) -> None:
        hold = self.hold_seconds()
        self._sent = {key: at for key, at in self._sent.items() if now - at < hold}


# Lives as long as the poller's execution environment: warm passes share it.
dispatch_memo = DispatchMemo()
# Outcomes after which the job's next_check_at is the one the claim set.
STILL_POLLING = frozenset({"unchanged", "moved_to_submitted", "moved_to_running", "provider_unavailable",
                           "poll_rejected"})


def _queued_by_worker(due: int, now: int) -> bool:
    """Whether the worker queues the check due at ``due`` itself: the schedule's next pass
    would send it late."""
    return due - now < dispatch_horizon()


def _follow_up(job: dict[str, Any], due: int) -> None:
    now = int(clock.now())
    if _queued_by_worker(due, now):
        send_checks([{"job_id": job["id"], "due": due, "next": due + next_interval(job)}], delays=[due - now])


def dispatch_due(*, store: JobStore | None = None, horizon: int | None = None,
                 seconds: float = 50.0, memo: DispatchMemo | None = None) -> Counter[str]:
    """Put every job due within ``horizon`` seconds (default: until the next pass) on the poll
    queue, each delayed until it is due.

    Shards are read at once, one thread each, so none waits behind another. Each message
    carries the ``next_check_at`` it was found with: the worker's claim is conditional on
    it, so a job dispatched twice is still checked once. Checks this process sent lately are
    not sent again (``DispatchMemo``).
    """
    store = store or JobStore()
    memo = memo or dispatch_memo
    now = int(clock.now())
    horizon = dispatch_horizon() if horizon is None else horizon
    deadline = time.monotonic() + seconds
    counts: Counter[str] = Counter()
    memo.forget_old(now)

    def send(batch: list[dict[str, object]], delays: list[int], found: Counter[str]) -> None:
        refused = send_checks(batch, delays=delays)
        found["dispatched"] += len(batch)
        found["dispatch_refused"] += refused
        if not refused:
            memo.sent(batch, now)

    def shard_pass(shard: int) -> Counter[str]:
        found: Counter[str] = Counter()
        batch: list[dict[str, object]] = []
        delays: list[int] = []
        for job in store.due_in_shard(shard, now + horizon):
            due = int(job["next_check_at"])
            if not memo.fresh(job["id"], due, now):
                found["already_dispatched"] += 1
                continue
            if job.get("check_queued_for") == due and now - due < memo.hold_seconds():
                found["queued_by_worker"] += 1  # unless that check is long overdue (the worker died)
                continue
            batch.append({"job_id": job["id"], "due": due, "next": due + next_interval(job)})
            delays.append(due - now)
            if len(batch) == 100 or time.monotonic() >= deadline:
                send(batch, delays, found)
                batch, delays = [], []
                if time.monotonic() >= deadline:
                    found["deferred"] += 1  # the rest stays due for the next run
                    break
        if batch:
            send(batch, delays, found)
        return found

    shards = settings().active_shards
    with ThreadPoolExecutor(min(16, shards), thread_name_prefix="dispatch") as pool:
        for found in pool.map(shard_pass, range(shards)):
            counts.update(found)
    for provider in provider_names():
        try:
            released = sweep_in_flight(provider, store)
        except Exception:  # the checks are queued already; a failed sweep is retried next minute
            logger.exception("in-flight sweep failed", extra={"provider": provider})
            counts["in_flight_sweep_failed"] += 1
            continue
        if released:
            logger.warning("released in-flight places of finished jobs", extra={"provider": provider,
                                                                                "job_ids": sorted(released)})
            counts["in_flight_released"] += len(released)
    return counts


def check_messages(records: list[dict[str, Any]], *, store: JobStore | None = None) -> tuple[Counter[str], list[str]]:
    """The poll queue's consumer: claim each due job, reserve the batch's request slots
    together (one write per provider), check each job. Returns outcomes and message ids to retry."""
    store = store or JobStore()

    def claim(record: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None, int]:
        """(outcome if done already, the claimed job, its next check)."""
        try:
            message = json.loads(record["body"])
            job_id, due, following = str(message["job_id"]), int(message["due"]), int(message["next"])
        except (KeyError, TypeError, ValueError):
            logger.error("unreadable poll message %s", record.get("messageId"))
            return "unreadable", None, 0
        try:
            # The claim says whether this worker will queue the next check (_follow_up).
            job = store.claim_check(job_id, due=due, next_check_at=following,
                                    queued_by_worker=_queued_by_worker(following, int(clock.now())))
        except Exception:
            logger.exception("claiming job %s failed; the message comes back", job_id)
            return "error", None, 0
        return ("already_checked", None, 0) if job is None else (None, job, following)

    def check(job: dict[str, Any], following: int, held_slot: float | None) -> str:
        outcome = check_job(job, store=store, claimed=True, held_slot=held_slot)
        if outcome in STILL_POLLING:
            _follow_up(job, following)
        return outcome

    with ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="check") as pool:
        claims = list(pool.map(claim, records))
        held = _reserve_batch_slots([job for _, job, _ in claims if job is not None and asks_provider(job)])

        def one(index: int) -> tuple[str, str | None]:
            outcome, job, following = claims[index]
            if job is None:
                return str(outcome), (str(records[index]["messageId"]) if outcome == "error" else None)
            try:
                return check(job, following, held.get(job["id"])), None
            except Exception:
                logger.exception("checking job %s failed; the message comes back", job["id"])
                return "error", str(records[index]["messageId"])

        results = list(pool.map(one, range(len(records))))
    return Counter(outcome for outcome, _ in results), [failed for _, failed in results if failed]


def _reserve_batch_slots(jobs: list[dict[str, Any]]) -> dict[str, float]:
    """One reservation per provider for the batch's status requests: job id -> its slot.

    Jobs left out (a batch whose slots are not all within the wait, or a failed write) reserve
    their own slot before their request, as a lone check does.
    """
    by_provider: dict[str, list[str]] = {}
    for job in jobs:
        by_provider.setdefault(job_spec(job).provider, []).append(job["id"])
    held: dict[str, float] = {}
    for provider, job_ids in by_provider.items():
        if len(job_ids) < 2:
            continue
        try:
            slots = reserve_many_within(provider, len(job_ids), POLL_SLOT_WAIT_SECONDS)
        except Exception:
            logger.exception("could not reserve %s request slots for a batch", provider)
            continue
        if slots is not None:
            held.update(zip(job_ids, slots, strict=True))
    return held


def run_pass(*, store: JobStore | None = None, limit: int = 2000) -> Counter[str]:
    """Claim and check due jobs in this process: the worker's path without the queue in between
    (tests, and a one-off pass from a shell)."""
    store = store or JobStore()
    due = itertools.islice(store.due_jobs(int(clock.now())), limit)
    records = [{"messageId": job["id"], "body": json.dumps(
        {"job_id": job["id"], "due": int(job["next_check_at"]), "next": int(clock.now()) + next_interval(job)})}
        for job in due]
    outcomes, _ = check_messages(records, store=store)
    return outcomes
