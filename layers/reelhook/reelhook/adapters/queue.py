"""The work queues: copies to make (transfer), create requests waiting for their turn (submit),
and due jobs to check with their provider (poll)."""

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


def send_checks(checks: list[dict[str, object]], *, delays: list[int]) -> int:
    """Queue due-job checks, ten per request; returns how many SQS refused (they stay due)."""
    refused = 0
    sqs = client("sqs")
    for start in range(0, len(checks), 10):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps(check), "DelaySeconds": max(0, min(900, delay))}
            for i, (check, delay) in enumerate(zip(checks[start:start + 10], delays[start:start + 10], strict=True))
        ]
        answer = sqs.send_message_batch(QueueUrl=settings().poll_queue_url, Entries=entries)
        refused += len(answer.get("Failed", []))
    return refused
