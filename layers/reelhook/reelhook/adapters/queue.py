"""The work queues: copies to make (transfer) and create requests waiting for their turn (submit)."""

from __future__ import annotations

import json

from reelhook.adapters.aws import client
from reelhook.config import settings


def send_transfer(job_id: str) -> None:
    client("sqs").send_message(
        QueueUrl=settings().transfer_queue_url,
        MessageBody=json.dumps({"job_id": job_id}),
    )


def send_submit(job_id: str, *, delay_seconds: int = 0, slot_at: float | None = None, attempt: int = 0) -> None:
    """Queue a create request; ``slot_at`` is a request slot already reserved for it."""
    body: dict[str, object] = {"job_id": job_id, "attempt": attempt}
    if slot_at is not None:
        body["slot_at"] = round(slot_at, 3)
    client("sqs").send_message(
        QueueUrl=settings().submit_queue_url,
        MessageBody=json.dumps(body),
        DelaySeconds=max(0, min(900, int(delay_seconds))),
    )
