"""Provider webhooks: POST /v1/callbacks/{provider}/{job_id}?token=...

Authenticates, applies the status with one conditional write, queues the copy when the
provider is done, and answers at once. It never downloads anything.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from reelhook import request_limits
from reelhook.services.webhooks import receive_webhook, reject

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    params = event.get("pathParameters") or {}
    provider, job_id = params.get("provider", ""), params.get("job_id", "")
    try:
        body = request_limits.body_bytes(event.get("body"), bool(event.get("isBase64Encoded")))
    except request_limits.UndecodableBody as exc:
        answer = reject(400, str(exc))
    else:
        answer = receive_webhook(
            provider,
            job_id,
            (event.get("queryStringParameters") or {}).get("token"),
            event.get("headers") or {},
            body,
        )
    if answer.secret_missing:
        # A default deploy leaves the Freepik secret empty: each such delivery is counted (alarm).
        metrics.add_metric(name="WebhookSecretMissing", unit=MetricUnit.Count, value=1)
    if answer.status_code >= 400:
        metrics.add_metric(name="WebhooksRejected", unit=MetricUnit.Count, value=1)
    elif answer.body.get("applied"):
        metrics.add_metric(name="WebhooksApplied", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="WebhooksIgnored", unit=MetricUnit.Count, value=1)
    logger.info("webhook", extra={"provider": provider, "job_id": job_id, "status_code": answer.status_code,
                                  "result": answer.body.get("status") or answer.body.get("error", {}).get("message")})
    return {"statusCode": answer.status_code, "headers": {"content-type": "application/json"},
            "body": json.dumps(answer.body)}
