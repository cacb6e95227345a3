"""Apply a provider's status to a job: the one transition path for webhooks and polls."""

from __future__ import annotations

from typing import Any

from reelhook import clock
from reelhook.adapters.jobs_table import JobStore, Transition
from reelhook.adapters.queue import send_transfer
from reelhook.links import links_deadline
from reelhook.providers import get_provider
from reelhook.providers.base import Phase, ProviderStatus
from reelhook.records import record
from reelhook.services.rate_limit import release_in_flight
from reelhook.states import Status

TARGET = {
    Phase.SUBMITTED: Status.SUBMITTED,
    Phase.RUNNING: Status.RUNNING,
    Phase.COMPLETED: Status.STORING,
    Phase.FAILED: Status.FAILED,
}
# A job in storing that has not succeeded by then is re-driven by the reconciler, and
# always a margin before its links expire, so the copy is retried while it still can work.
STORING_GRACE_SECONDS = 900
EXPIRY_MARGIN_SECONDS = 300


def storing_check_at(now: float, links_expire_at: int) -> int:
    return int(max(now + 30, min(now + STORING_GRACE_SECONDS, links_expire_at - EXPIRY_MARGIN_SECONDS)))


@record
class Applied:
    transition: Transition
    target: Status

    @property
    def job(self) -> dict[str, Any] | None:
        return self.transition.job


def apply_status(
    job_id: str,
    provider_name: str,
    status: ProviderStatus,
    *,
    source: str,
    store: JobStore | None = None,
    extra_fields: dict[str, Any] | None = None,
    delivery_id: str | None = None,
    adopt_task_id: bool = True,
) -> Applied:
    """One conditional write; a completion also queues the copy. Late or duplicate: no-op."""
    store = store or JobStore()
    now = clock.now()
    target = TARGET[status.phase]
    event: dict[str, Any] = {"status": target.value, "at": clock.iso(now), "source": source,
                             "provider_status": status.raw_status}
    fields: dict[str, Any] = dict(extra_fields or {})
    if status.progress is not None:
        fields["progress"] = status.progress
    if target is Status.STORING:
        deadline = links_deadline(status.result_urls, get_provider(provider_name).link_lifetime_seconds, now)
        fields |= {
            "result_urls": list(status.result_urls),
            "provider_completed_at": clock.iso(now),
            "links_expire_at": deadline,
            "next_check_at": storing_check_at(now, deadline),
        }
    elif target is Status.FAILED:
        fields["error"] = {"code": "provider_failed", "message": (status.error_message or "")[:2000]}
        event["reason"] = "provider_failed"
    transition = store.transition(
        job_id,
        target,
        now_iso=clock.iso(now),
        event=event,
        provider=provider_name,
        task_id=status.task_id,
        adopt_task_id=adopt_task_id,
        set_fields=fields,
        delivery_id=delivery_id,
        # A failed task of a job whose routing says "any" moves it to its next route instead.
        unless_failover="any" if target is Status.FAILED else None,
    )
    if target is Status.FAILED and not transition.applied and _fails_over(transition.job, provider_name, status):
        from reelhook.services import failover

        moved = failover.fail_over(store, transition.job or {}, outcome="failed",
                                   reason=f"the task failed: {status.error_message or status.raw_status}"[:500],
                                   task_id=status.task_id or str((transition.job or {}).get("provider_task_id")))
        if moved is not None and moved.get("provider") != provider_name:
            return Applied(Transition(applied=True, found=True, job=moved), Status.QUEUED)
        # No route left (or the move lost a race and the job is still here): it fails as
        # it would without routing.
        transition = store.transition(job_id, target, now_iso=clock.iso(now), event=event, provider=provider_name,
                                      task_id=status.task_id, adopt_task_id=adopt_task_id, set_fields=fields,
                                      delivery_id=delivery_id)
    if transition.applied and target in (Status.STORING, Status.FAILED):
        # The provider is done with the task: its in-flight slot frees for the next job.
        release_in_flight(provider_name, job_id)
    if transition.applied and target is Status.STORING:
        # If this send is lost (crash), the reconciler re-drives jobs stuck in storing.
        send_transfer(job_id)
    return Applied(transition, target)


def _fails_over(job: dict[str, Any] | None, provider_name: str, status: ProviderStatus) -> bool:
    """Whether a refused FAILED write was refused only for the job's "any" failover policy."""
    if not job or job.get("provider") != provider_name or job.get("status") not in (Status.SUBMITTED, Status.RUNNING):
        return False
    if status.task_id and job.get("provider_task_id") not in (None, status.task_id):
        return False
    return (job.get("routing") or {}).get("failover") == "any"


def fail_job(store: JobStore, job_id: str, code: str, message: str, *, source: str = "submit",
             allowed_from: frozenset[Status] | None = None, unless_fields: tuple[str, ...] = ()
             ) -> dict[str, Any] | None:
    """Fail a non-terminal job with ``error.code``/``error.message``; returns the job as it now is.

    ``allowed_from`` narrows the statuses it may fail from (a deadline holds for the phase it
    was measured in); ``unless_fields`` refuses the write while the job has any of them.
    """
    now = clock.now()
    moved = store.transition(
        job_id,
        Status.FAILED,
        now_iso=clock.iso(now),
        event={"status": Status.FAILED.value, "at": clock.iso(now), "source": source, "reason": code},
        set_fields={"error": {"code": code, "message": message[:2000]}},
        allowed_from=allowed_from,
        unless_fields=unless_fields,
    )
    if moved.applied and moved.job is not None:
        release_in_flight(str(moved.job.get("provider", "")), job_id)
    return moved.job
