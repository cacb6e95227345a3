"""Receive a provider's webhook: authenticate, parse, confirm if unsigned, apply.

Nothing here downloads a video; a completion only queues the copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reelhook import clock, json_input
from reelhook.adapters.jobs_table import JobStore
from reelhook.adapters.secrets import callback_token_key, get_secrets
from reelhook.config import settings
from reelhook.providers import get_provider, provider_names
from reelhook.providers.base import MalformedPayload, Provider, ProviderStatus, WebhookContext, WebhookRejected
from reelhook.records import record
from reelhook.request_limits import is_job_id
from reelhook.services.status import apply_status
from reelhook.states import TERMINAL, Status
from reelhook.webhook_auth import verify_job_token

MAX_BODY_BYTES = 256 * 1024


@record
class WebhookAnswer:
    status_code: int
    body: dict[str, Any]
    # The provider signs its webhooks but this deployment has no secret for it (a metric says so).
    secret_missing: bool = False


def reject(status: int, message: str) -> WebhookAnswer:
    return WebhookAnswer(status, {"error": {"code": "webhook_rejected", "message": message}})


def _confirm(job_id: str, provider_name: str, reported: ProviderStatus) -> ProviderStatus | WebhookAnswer:
    """An unsigned webhook only says "look again": the provider's own GET decides."""
    from reelhook.adapters import provider_http
    from reelhook.services.polling import TaskMismatch, confirm_status
    from reelhook.services.rate_limit import RateLimitTimeout

    try:
        confirmed = confirm_status(job_id, provider_name, reported)
    except TaskMismatch:
        return reject(400, "the body names a task that is not this job's")
    except provider_http.ProviderRejected:
        return reject(400, "the provider does not confirm this task")
    except (provider_http.ProviderUnavailable, provider_http.OutcomeUnknown, RateLimitTimeout, MalformedPayload):
        return reject(503, "the provider could not confirm the status now; retry later")
    return confirmed if confirmed is not None else reject(404, "unknown job")


def _has_no_task_yet(job: Mapping[str, Any] | None, provider_name: str) -> bool:
    """Whether a refused write was refused because the job, still this provider's, has no task."""
    return (job is not None and job.get("provider") == provider_name and not job.get("provider_task_id")
            and Status(job["status"]) not in TERMINAL)


def receive_webhook(
    provider_name: str,
    job_id: str,
    token: str | None,
    headers: Mapping[str, str],
    raw_body: bytes,
) -> WebhookAnswer:
    if provider_name not in provider_names():
        return reject(404, "unknown provider")
    if len(raw_body) > MAX_BODY_BYTES:
        return reject(413, f"body larger than {MAX_BODY_BYTES} bytes")
    if not is_job_id(job_id):
        return reject(404, "unknown job")  # before any lookup: not every string is a DynamoDB key
    if not verify_job_token(callback_token_key(), provider_name, job_id, token):
        return reject(401, "invalid or missing callback token")
    provider = get_provider(provider_name)
    lowered = {k.lower(): v for k, v in headers.items()}
    ctx = WebhookContext(lowered, raw_body, get_secrets(), clock.now(),
                         settings().provider(provider_name).extras)
    answer = _authenticated(provider, provider_name, job_id, ctx)
    if provider.webhook_secret_missing(ctx):
        return WebhookAnswer(answer.status_code, answer.body, secret_missing=True)
    return answer


def _authenticated(provider: Provider, provider_name: str, job_id: str, ctx: WebhookContext) -> WebhookAnswer:
    """A delivery whose URL token is right: its signature (if any), body and effect."""
    raw_body = ctx.raw_body
    try:
        delivery_id = provider.verify_webhook(ctx)
    except WebhookRejected as exc:
        return reject(exc.status, exc.reason)
    try:
        status = provider.parse_status(json_input.loads(raw_body), from_webhook=True)
    except json_input.JsonInputError as exc:
        return reject(400, f"body is not valid JSON: {exc}")
    except MalformedPayload as exc:
        return reject(400, f"body does not have the documented shape: {exc}")
    if not status.task_id:
        # Checked against the job's own task in the write: a body naming none would skip that.
        return reject(400, "the body does not name its task (task_id)")
    verified = not provider.webhook_needs_confirmation(ctx)
    if not verified:
        confirmed = _confirm(job_id, provider_name, status)
        if isinstance(confirmed, WebhookAnswer):
            return confirmed
        status = confirmed
    store = JobStore()
    # A signed body is believed about the job's own task only: it never introduces a task id.
    applied = apply_status(job_id, provider_name, status, source="webhook", store=store, delivery_id=delivery_id,
                           adopt_task_id=not verified)
    if verified and _has_no_task_yet(applied.transition.job, provider_name):
        # Ahead of the create's answer (or after an unknown outcome): the provider's own GET of
        # the named task decides, as for an unsigned hint, and only then is the task adopted.
        confirmed = _confirm(job_id, provider_name, status)
        if isinstance(confirmed, WebhookAnswer):
            return confirmed
        applied = apply_status(job_id, provider_name, confirmed, source="webhook", store=store,
                               delivery_id=delivery_id)
    if not applied.transition.found:
        return reject(404, "unknown job")
    current = applied.job["status"] if applied.job else None
    body: dict[str, Any] = {"job_id": job_id, "applied": applied.transition.applied, "status": current}
    if applied.transition.seen_delivery(delivery_id):
        body["duplicate"] = True  # acknowledged so the sender stops retrying; nothing changed
    elif delivery_id and verified and not applied.transition.applied:
        # A signed webhook-id is the delivery's idempotency key, applied or not: remembered, a
        # replay of it with another body can never change the job later. (An unsigned hint's id
        # proves nothing; the same hint is confirmed again if it comes back.)
        store.remember_delivery(job_id, delivery_id)
    return WebhookAnswer(200, body)
