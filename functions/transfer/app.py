"""SQS → S3: copy each finished job's results, reporting failed messages for retry."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from reelhook.services.transfer import transfer_job

logger = Logger()
metrics = Metrics()
# Must match the queue's redrive maxReceiveCount: on the last receive the job records why it failed.
MAX_RECEIVES = 5


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event.get("Records", []):
        receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            job_id = json.loads(record["body"])["job_id"]
        except (KeyError, TypeError, ValueError):
            logger.error("unreadable transfer message", extra={"message_id": record.get("messageId")})
            continue  # a poison message can never succeed; do not retry it
        try:
            outcome = transfer_job(job_id, final_attempt=receives >= MAX_RECEIVES)
            logger.info("transfer", extra={"job_id": job_id, "outcome": outcome, "receives": receives})
            metrics.add_metric(name="VideosStored" if outcome == "succeeded" else "TransfersNotStored",
                               unit=MetricUnit.Count, value=1)
        except Exception:
            logger.exception("transfer failed", extra={"job_id": job_id, "receives": receives})
            metrics.add_metric(name="TransferAttemptsFailed", unit=MetricUnit.Count, value=1)
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
