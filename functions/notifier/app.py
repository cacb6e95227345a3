"""DynamoDB stream of the jobs table -> outbox documents, EventBridge job events, notify_url deliveries."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from reelhook.services.notifier import handle_records

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    summary = handle_records(event.get("Records", []))
    metrics.add_metric(name="JobEventsPublished", unit=MetricUnit.Count, value=summary.events)
    metrics.add_metric(name="NotificationsQueued", unit=MetricUnit.Count, value=summary.deliveries)
    logger.info("status changes", extra={"documents": summary.documents, "events": summary.events,
                                         "deliveries": summary.deliveries, "failed_at": summary.failed_sequence})
    # Stream semantics: the first record not handled; the mapping retries from there.
    failures = [{"itemIdentifier": summary.failed_sequence}] if summary.failed_sequence else []
    return {"batchItemFailures": failures}
