"""Create a job and send it to its provider."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from reelhook import clock
from reelhook.adapters import provider_http
from reelhook.adapters.jobs_table import JobStore, active_shard
from reelhook.adapters.secrets import callback_token_key, get_secrets
from reelhook.config import settings
from reelhook.providers import get_provider
from reelhook.services.media import presigned_request
from reelhook.services.status import fail_job
from reelhook.spec import ModelSpec, NormalizedRequest
from reelhook.states import Status
from reelhook.webhook_auth import job_token


def body_hash(req: NormalizedRequest) -> str:
    return hashlib.sha256(json.dumps(req, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def callback_url(base_url: str, provider: str, job_id: str) -> str:
    token = job_token(callback_token_key(), provider, job_id)
    return f"{base_url}/v1/callbacks/{provider}/{job_id}?token={token}"


def submit_job(
    spec: ModelSpec,
    req: NormalizedRequest,
    *,
    idempotency_key: str | None,
    callback_base_url: str,
    store: JobStore | None = None,
    origin: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Store the job, then call the provider once. Returns ``(job, created)``.

    A replayed idempotency key returns the first job and makes no provider call.
    """
    store = store or JobStore()
    provider = get_provider(spec.provider)
    conf = settings()
    extras = conf.provider(spec.provider).extras
    now = clock.now()
    job_id = "job_" + uuid.uuid4().hex
    webhooks = provider.sends_webhooks(extras)
    # Poll-only providers are asked soon; webhook providers only once their webhook is overdue.
    first_check = conf.reconcile_after_seconds if webhooks else conf.poll_base_seconds
    job: dict[str, Any] = {
        "id": job_id,
        "model": spec.id,
        "provider": spec.provider,
        "status": Status.QUEUED.value,
        "request": dict(req),
        "created_at": clock.iso(now),
        "updated_at": clock.iso(now),
        "events": [{"status": Status.QUEUED.value, "at": clock.iso(now), "source": "inbox" if origin else "api"}],
        "expires_at": int(now) + conf.job_ttl_days * 86400,
        "active_shard": active_shard(job_id),
        "next_check_at": int(now) + first_check,
        "poll_count": 0,
    }
    if req.get("client_reference"):
        job["client_reference"] = req["client_reference"]
    if req.get("notify_url"):
        job["notify_url"] = req["notify_url"]  # the notify function delivers the terminal status here
    if origin:
        job["origin"] = dict(origin)  # where the job came from, e.g. an S3 inbox manifest
    job, created = store.create(
        job, idempotency_key=idempotency_key, body_hash=body_hash(req), ttl=job["expires_at"]
    )
    if not created:
        return job, False
    return send_to_provider(spec, job, callback_base_url=callback_base_url, store=store), True


def send_to_provider(
    spec: ModelSpec, job: dict[str, Any], *, callback_base_url: str, store: JobStore
) -> dict[str, Any]:
    provider = get_provider(spec.provider)
    extras = settings().provider(spec.provider).extras
    job_id = job["id"]
    hook = callback_url(callback_base_url, spec.provider, job_id) if provider.sends_webhooks(extras) else None
    call = provider.submit_call(spec, presigned_request(job["request"]), hook, extras)
    from reelhook.services.rate_limit import RateLimitTimeout, before_provider_call

    try:
        answer = provider_http.send(
            provider, call, get_secrets(), before_attempt=lambda: before_provider_call(spec.provider)
        )
        task_id = provider.parse_submit(answer.body)
    except provider_http.ProviderRejected as exc:
        return fail_job(store, job["id"], "provider_rejected", f"HTTP {exc.status_code}: {exc.message}") or job
    except (provider_http.ProviderUnavailable, RateLimitTimeout) as exc:
        return fail_job(store, job["id"], "provider_unavailable", str(exc)) or job
    except provider_http.OutcomeUnknown as exc:
        # Never re-sent: the provider may have a (paid) task. A webhook, if one comes, adopts it;
        # otherwise the reconciler fails the job as submit_outcome_unknown after the deadline.
        store.update_fields(job_id, {"submit_outcome": "unknown", "submit_error": str(exc)},
                            only_if_status=[Status.QUEUED])
        return store.get(job_id, consistent=True) or job
    except ValueError as exc:  # a 2xx answer without a task id
        return fail_job(store, job["id"], "provider_bad_response", str(exc)) or job
    now = clock.now()
    moved = store.transition(
        job_id,
        Status.SUBMITTED,
        now_iso=clock.iso(now),
        task_id=task_id,
        event={"status": Status.SUBMITTED.value, "at": clock.iso(now), "source": "submit"},
    )
    if moved.applied or moved.job is None:
        return moved.job or job
    # A webhook overtook us: it already moved the job. Make sure the task id is recorded.
    if "provider_task_id" not in moved.job:
        store.update_fields(job_id, {"provider_task_id": task_id},
                            only_if_status=[Status.RUNNING, Status.STORING, Status.SUCCEEDED])
    return store.get(job_id, consistent=True) or moved.job
