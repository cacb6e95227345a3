"""The transfer queue: one message per job whose results must be copied."""

from __future__ import annotations

import json

from reelhook.adapters.aws import client
from reelhook.config import settings


def send_transfer(job_id: str) -> None:
    client("sqs").send_message(
        QueueUrl=settings().transfer_queue_url,
        MessageBody=json.dumps({"job_id": job_id}),
    )
