"""Deliver a job's terminal status to its ``notify_url``, signed as Standard Webhooks asks.

Headers: ``webhook-id`` (``<job id>.<status>``, the same for every attempt, so receivers can
deduplicate), ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`` under the deployment's notify signing key). The body is
``{"type": "video.job.<status>", "timestamp": ..., "data": <the job as GET /v1/jobs/{id}
shows it>}``. A failed attempt is queued again with a growing delay, at most
``MAX_ATTEMPTS`` times; every attempt and its outcome is appended to the job's
``notifications``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from reelhook import clock
from reelhook.adapters import notify_http
from reelhook.adapters.notifications import claim_attempt, record_attempt
from reelhook.adapters.notify_queue import MAX_DELAY_SECONDS, send_delivery
from reelhook.adapters.notify_secret import signing_key
from reelhook.config import settings
from reelhook.records import record
from reelhook.ssrf import UnsafeUrl
from reelhook.views import public_job
from reelhook.webhook_auth import sign_standard

MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS = 30


def retry_delay(attempt: int) -> int:
    """Seconds before the attempt after ``attempt``: 30, 60, 120 ... capped at SQS's 900."""
    return int(min(MAX_DELAY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (attempt - 1)))


def webhook_id(job_id: str, status: str) -> str:
    return f"{job_id}.{status}"


def notification_body(job: dict[str, Any]) -> bytes:
    document = {"type": f"video.job.{job['status']}", "timestamp": clock.iso(clock.now()),
                "data": public_job(job)}
    return json.dumps(document, separators=(",", ":")).encode()


def signed_headers(msg_id: str, body: bytes, *, key: bytes, timestamp: int) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard(key, msg_id, timestamp, body)}


@record
class Delivery:
    outcome: str  # delivered | retrying | gave_up | refused | skipped
    status_code: int | None = None


def deliver(job_id: str, status: str, attempt: int, *, redelivery: bool = False) -> Delivery:
    """Make delivery attempt ``attempt``. Raises only if the retry could not be queued."""
    job = claim_attempt(job_id, status, attempt, redelivery=redelivery)
    if job is None:  # delivered already, a duplicate message, or nothing to deliver
        return Delivery("skipped")
    msg_id = webhook_id(job_id, status)
    body = notification_body(job)
    headers = signed_headers(msg_id, body, key=signing_key(), timestamp=int(time.time()))
    entry: dict[str, Any] = {"id": msg_id, "attempt": attempt, "at": clock.iso(clock.now())}
    code: int | None = None
    try:
        code = notify_http.post(job["notify_url"], body, headers, allow_insecure=settings().allow_insecure_fetch)
    except UnsafeUrl as exc:  # the URL will not become safe by retrying
        record_attempt(job_id, entry | {"outcome": "refused", "error": str(exc)[:500]}, delivered_at=None)
        return Delivery("refused")
    except notify_http.DeliveryFailed as exc:
        entry["error"] = str(exc)[:500]
    if code is not None:
        entry["status_code"] = code
        if 200 <= code < 300:
            record_attempt(job_id, entry | {"outcome": "delivered"}, delivered_at=entry["at"])
            return Delivery("delivered", code)
    if attempt >= MAX_ATTEMPTS:
        record_attempt(job_id, entry | {"outcome": "gave_up"}, delivered_at=None)
        return Delivery("gave_up", code)
    delay = retry_delay(attempt)
    record_attempt(job_id, entry | {"outcome": "failed", "retry_in_seconds": delay}, delivered_at=None)
    send_delivery(job_id, status, attempt + 1, delay_seconds=delay)
    return Delivery("retrying", code)
