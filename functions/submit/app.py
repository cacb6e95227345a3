"""SQS -> provider: send each queued job's create request when its provider allows it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from reelhook.config import settings
from reelhook.services.submit import handle_submit_messages

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records", [])
    failed = handle_submit_messages(records, callback_base_url=settings().callback_base_url)
    metrics.add_metric(name="SubmitMessagesReceived", unit=MetricUnit.Count, value=len(records))
    if failed:
        metrics.add_metric(name="SubmitAttemptsFailed", unit=MetricUnit.Count, value=len(failed))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
