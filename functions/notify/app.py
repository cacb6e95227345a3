"""SQS -> notify_url: one signed POST per message, failed attempts re-queued with a delay."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from reelhook.services.notify import deliver

logger = Logger()
metrics = Metrics()
METRICS = {"delivered": "NotificationsDelivered", "retrying": "NotificationAttemptsFailed",
           "gave_up": "NotificationsAbandoned", "refused": "NotificationsAbandoned"}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    records = event.get("Records", [])
    metrics.add_metric(name="NotifyMessagesReceived", unit=MetricUnit.Count, value=len(records))
    for record in records:
        try:
            message = json.loads(record["body"])
            job_id, status, attempt = str(message["job_id"]), str(message["status"]), int(message["attempt"])
        except (KeyError, TypeError, ValueError):
            logger.error("unreadable notify message", extra={"message_id": record.get("messageId")})
            continue  # a poison message can never succeed; do not retry it
        receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        try:
            result = deliver(job_id, status, attempt, redelivery=receives > 1)
        except Exception:
            logger.exception("notification not handled", extra={"job_id": job_id, "attempt": attempt})
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        if result.outcome in METRICS:
            metrics.add_metric(name=METRICS[result.outcome], unit=MetricUnit.Count, value=1)
        logger.info("notification", extra={"job_id": job_id, "attempt": attempt, "outcome": result.outcome,
                                           "status_code": result.status_code})
    return {"batchItemFailures": failures}
