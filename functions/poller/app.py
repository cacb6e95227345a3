"""Scheduled: poll providers without webhooks, catch missed webhooks, re-drive stuck copies."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from reelhook.services.polling import run_pass

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    outcomes = run_pass()
    logger.info("poll pass", extra={"outcomes": dict(outcomes)})
    return {"checked": sum(outcomes.values()), "outcomes": dict(outcomes)}
