"""SQS -> provider: check each due job (poll, missed webhook, stuck copy) and move it on."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from reelhook.services.polling import OUTCOME_METRICS, check_messages

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    outcomes, failed = check_messages(event.get("Records", []))
    published: Counter[str] = Counter()
    for outcome, count in outcomes.items():
        published[OUTCOME_METRICS.get(outcome, "JobsUnchanged")] += count
    for name, count in published.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="JobsChecked", unit=MetricUnit.Count, value=sum(outcomes.values()))
    logger.info("checks", extra={"outcomes": dict(outcomes)})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
