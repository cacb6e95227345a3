"""S3 inbox: a job manifest put under inbox/ in the video bucket (S3 -> EventBridge "Object Created")."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from reelhook.config import settings
from reelhook.services.inbox import receive_manifest

logger = Logger()
metrics = Metrics()
METRICS = {"accepted": "InboxJobsAccepted", "rejected": "InboxManifestsRejected", "ignored": "InboxEventsIgnored"}


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event.get("detail") or {}
    obj = detail.get("object") or {}
    size = obj.get("size")
    outcome = receive_manifest(
        str((detail.get("bucket") or {}).get("name", "")),
        str(obj.get("key", "")),
        size=size if isinstance(size, int) else None,
        callback_base_url=settings().callback_base_url,
    )
    metrics.add_metric(name=METRICS[outcome.outcome], unit=MetricUnit.Count, value=1)
    logger.info("manifest", extra=outcome.as_dict())
    return outcome.as_dict()
