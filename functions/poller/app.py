"""Scheduled: hand every job due within the next minute to the poll workers, each delayed until due."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from reelhook.services.polling import OUTCOME_METRICS, dispatch_due

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Leave a margin of the function's time for the last batch sent.
    outcomes = dispatch_due(seconds=max(1.0, context.get_remaining_time_in_millis() / 1000 - 10))
    published: Counter[str] = Counter()
    for outcome, count in outcomes.items():
        published[OUTCOME_METRICS.get(outcome, "JobsUnchanged")] += count
    for name, count in published.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    logger.info("dispatch pass", extra={"outcomes": dict(outcomes)})
    return {"dispatched": outcomes["dispatched"], "outcomes": dict(outcomes)}
