"""The notify queue: one message per notify_url delivery attempt."""

from __future__ import annotations

import json
import os

from reelhook.adapters.aws import client

MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds


def send_delivery(job_id: str, status: str, attempt: int, *, delay_seconds: int = 0) -> None:
    client("sqs").send_message(
        QueueUrl=os.environ.get("NOTIFY_QUEUE_URL", "").strip(),
        MessageBody=json.dumps({"job_id": job_id, "status": status, "attempt": attempt}),
        DelaySeconds=max(0, min(MAX_DELAY_SECONDS, delay_seconds)),
    )
