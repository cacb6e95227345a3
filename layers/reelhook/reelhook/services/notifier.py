"""Follow job status changes on the table's stream.

For every change of a job's status: an inbox job's outbox status document is rewritten;
a terminal change is put on the event bus and, if the job has a ``notify_url``, queued for
delivery. Writes that leave the status as it was (bookkeeping) are skipped.

Records of one job arrive in order, and a failure reports the first record that was not
fully handled, so the stream retries from there (at-least-once: an event or a queued
delivery may be repeated; receivers deduplicate on the job id and status).

Once a terminal job's event is on the bus, the job records it (``event_published_at``, and
``notify_queued_at`` when a delivery was queued) and leaves the active-index. A job the
stream never delivered here (every retry failed) stays in that index, and the poll worker
publishes it with ``publish_terminal`` after a grace period.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from reelhook import clock
from reelhook.adapters.event_bus import JobEvent, put_job_events
from reelhook.adapters.jobs_table import JobStore, from_dynamo
from reelhook.adapters.notify_queue import send_delivery
from reelhook.adapters.outbox import put_document
from reelhook.records import record
from reelhook.services.outbox_paths import ORIGIN_KIND, STATUS_SUFFIX, outbox_key
from reelhook.states import TERMINAL
from reelhook.views import public_job

logger = logging.getLogger(__name__)
DETAIL_TYPES = {"succeeded": "Video Job Succeeded", "failed": "Video Job Failed", "cancelled": "Video Job Cancelled"}
TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)


@record
class StatusChange:
    sequence: str
    job: dict[str, Any]
    old_status: str | None

    @property
    def status(self) -> str:
        return str(self.job["status"])

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_VALUES and self.old_status not in TERMINAL_VALUES


def status_change(record: Mapping[str, Any]) -> StatusChange | None:
    """The job change a stream record carries, or None when there is nothing to do."""
    data = record.get("dynamodb") or {}
    key = (data.get("Keys") or {}).get("pk", {}).get("S", "")
    if record.get("eventName") not in {"INSERT", "MODIFY"} or not key.startswith("job#"):
        return None
    new = from_dynamo(data.get("NewImage") or {})
    old_status = (data.get("OldImage") or {}).get("status", {}).get("S")
    if "status" not in new or new["status"] == old_status:
        return None
    new.pop("pk", None)
    return StatusChange(str(data.get("SequenceNumber", "")), new, old_status)


@record
class Summary:
    documents: int = 0
    events: int = 0
    deliveries: int = 0
    failed_sequence: str | None = None


def handle_records(records: Iterable[Mapping[str, Any]]) -> Summary:
    changes = [c for c in map(status_change, records) if c is not None]
    documents = deliveries = 0
    events: list[tuple[int, JobEvent]] = []  # (position in changes, event)
    failed_at: int | None = None
    for position, change in enumerate(changes):
        try:
            # A stored document never carries presigned URLs: they would expire while it is read.
            view = public_job(change.job, presign=False)
            origin = change.job.get("origin") or {}
            if origin.get("kind") == ORIGIN_KIND:
                put_document(origin["bucket"], outbox_key(origin["key"], STATUS_SUFFIX), view)
                documents += 1
            if change.terminal:
                if change.job.get("notify_url"):
                    send_delivery(change.job["id"], change.status, 1)
                    deliveries += 1
                events.append((position, JobEvent(DETAIL_TYPES[change.status], view)))
        except Exception:
            logger.exception("status change not handled", extra={"job_id": change.job.get("id"),
                                                                   "sequence": change.sequence})
            failed_at = position
            break
    failed = put_job_events([event for _, event in events])
    if failed:
        first = events[min(failed)][0]
        logger.error("job events not put", extra={"failed": len(failed)})
        failed_at = first if failed_at is None else min(failed_at, first)
    published = [changes[position] for index, (position, _) in enumerate(events) if index not in set(failed)]
    _mark_published(published)
    sequence = changes[failed_at].sequence if failed_at is not None else None
    return Summary(documents, len(events) - len(failed), deliveries, sequence)


def _mark_published(changes: list[StatusChange]) -> None:
    store = JobStore()
    for change in changes:
        try:
            store.mark_published(change.job["id"], change.status, at_iso=clock.iso(clock.now()),
                                 notification_queued=bool(change.job.get("notify_url")))
        except Exception:  # not recorded: the poll worker publishes it again, which receivers deduplicate
            logger.exception("event publication not recorded", extra={"job_id": change.job.get("id")})


def publish_terminal(job: dict[str, Any], *, store: JobStore) -> bool:
    """Publish a terminal job's status as the notifier would have: its outbox document, its
    notify_url delivery (unless delivered) and its event, then record that. False if the
    event could not be put (the job stays due and is tried again)."""
    status = str(job["status"])
    view = public_job(job, presign=False)
    origin = job.get("origin") or {}
    if origin.get("kind") == ORIGIN_KIND:
        put_document(origin["bucket"], outbox_key(origin["key"], STATUS_SUFFIX), view)
    queued = bool(job.get("notify_url")) and not job.get("notify_delivered_at")
    if queued:
        # The notify function's claim lets attempt 1 out once, however often it is queued.
        send_delivery(job["id"], status, 1)
    if put_job_events([JobEvent(DETAIL_TYPES[status], view)]):
        return False
    store.mark_published(job["id"], status, at_iso=clock.iso(clock.now()), notification_queued=queued)
    return True
