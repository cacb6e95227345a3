"""The client API's behaviour, independent of the Lambda event format.

Each function returns ``(status_code, body)``; the ``api`` handler only routes to them
(reelhook.http_router).
The request model (pydantic) is imported by the first ``create_job``: reading a job or the
model catalogue never needs it.
"""

from __future__ import annotations

import re
from typing import Any

from reelhook import json_input
from reelhook.adapters.jobs_table import IdempotencyMismatch, JobStore
from reelhook.errors import error_body
from reelhook.http_router import Answer
from reelhook.providers import all_models
from reelhook.routing import is_logical, logical_routes, plan_routes, routing_errors
from reelhook.services.media import check_s3_inputs
from reelhook.services.submit import submit_job
from reelhook.spec import FieldError, ModelSpec, did_you_mean
from reelhook.views import public_job

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}\Z")
JOB_ID = re.compile(r"^job_[0-9a-f]{32}\Z")  # \Z: "$" also matches before a trailing newline


# Far above any real job (a few KB), far below Lambda's 6 MB: refused before parsing.
MAX_BODY_BYTES = 256 * 1024


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def create_job(
    raw_body: str | bytes | None,
    idempotency_key: str | None,
    callback_base_url: str,
    *,
    owner: str,
    origin: dict[str, Any] | None = None,
    content_type: str | None = None,
) -> Answer:
    """Validate and submit a job for ``owner`` (reelhook.owners), whose namespace the
    Idempotency-Key is in. ``origin`` is stored on the job (e.g. the S3 inbox key).

    ``content_type`` is the request's header, when it came over HTTP: a body declared as
    anything but JSON is refused (415) rather than guessed at.
    """
    if content_type is not None and not _is_json(content_type):
        return 415, error_body("unsupported_media_type",
                               f"the body must be sent as application/json, not {content_type[:100]!r}")
    if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
        return 400, error_body("invalid_header", "Idempotency-Key must be 1-255 visible ASCII characters "
                                                "(! to ~: no spaces or control characters)")
    size = len(raw_body or b"")
    if size > MAX_BODY_BYTES:
        return 413, error_body("body_too_large", f"the body is {size} bytes; at most {MAX_BODY_BYTES} are accepted")
    try:
        data = json_input.loads(raw_body)
    except json_input.JsonInputError as exc:
        return 400, error_body("invalid_json", f"the body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return 400, error_body("invalid_json", "the body must be a JSON object")
    unstorable = json_input.unstorable_numbers(data)
    if unstorable:
        return 422, error_body("validation_error", "the job is not valid",
                               [FieldError(field, problem) for field, problem in unstorable])
    from pydantic import ValidationError

    from reelhook.api_models import JobRequest, pydantic_errors

    try:
        request = JobRequest.model_validate(data)
    except ValidationError as exc:
        errors = pydantic_errors(exc)
        named = all_models().get(data["model"]) if isinstance(data.get("model"), str) else None
        return 422, error_body("validation_error", "the job is not valid",
                               _with_choices(errors, named) if named else errors)
    normalized = request.normalized()
    plan = None
    if is_logical(request.model):
        problems = routing_errors(normalized.get("routing"))
        if problems:
            return 422, error_body("validation_error", "the job's routing is not valid", problems)
        plan, problems = plan_routes(request.model, normalized, normalized.get("routing"),
                                     extra_check=check_s3_inputs)
        if plan is None:
            return 422, error_body("validation_error", f"no route of {request.model} can take this job; "
                                                       "each route's objections are listed", problems)
        spec = all_models()[plan.routes[0]]
    else:
        spec = all_models().get(request.model)
        if spec is None:
            allowed = sorted(all_models()) + sorted(logical_routes())
            return 422, error_body("validation_error", "unknown model",
                                   [FieldError("model", "is not a known model" + did_you_mean(request.model, allowed),
                                               allowed)])
        if "routing" in normalized:
            return 422, error_body("validation_error", f"the job is not valid for {spec.id}", [FieldError(
                "routing", f"applies only to a logical model; {spec.id} is served by {spec.provider} alone",
                sorted(logical_routes()))])
        problems = spec.validate(normalized) or check_s3_inputs(spec, normalized)
        if problems:
            return 422, error_body("validation_error", f"the job is not valid for {spec.id}", problems)
    try:
        job, _created = submit_job(spec, normalized, idempotency_key=idempotency_key,
                                   callback_base_url=callback_base_url, origin=origin, plan=plan, owner=owner)
    except IdempotencyMismatch:
        # The other job is not named: an answer never says more than the caller sent.
        return 409, error_body("idempotency_key_reused",
                               "this Idempotency-Key was already used with a different body; use a new key")
    return 202, public_job(job)


def _with_choices(errors: list[FieldError], spec: ModelSpec) -> list[FieldError]:
    """A field of the wrong type (``duration: "eight"``) still learns what the named model takes."""
    choices = {"duration": spec.durations, "aspect_ratio": spec.aspect_ratios, "resolution": spec.resolutions}
    out = []
    for error in errors:
        allowed = choices.get(error.field)
        if error.allowed is None and allowed:
            error = FieldError(error.field, f"{error.message}; {spec.id} takes one of "
                                            f"{', '.join(map(str, allowed))}", list(allowed))
        out.append(error)
    return out


def get_job(job_id: str, owner: str) -> Answer:
    if not JOB_ID.match(job_id):
        return 404, error_body("not_found", "no such job")
    job = JobStore().get(job_id)
    if job is None or job.get("owner") != owner:  # another owner's job does not exist for this caller
        return 404, error_body("not_found", "no such job")
    return 200, public_job(job)


def list_jobs(owner: str, query: dict[str, str] | None) -> Answer:
    from reelhook.services import lifecycle

    return lifecycle.list_jobs(owner, query)


def cancel_job(job_id: str, owner: str) -> Answer:
    if not JOB_ID.match(job_id):
        return 404, error_body("not_found", "no such job")
    from reelhook.services import lifecycle

    return lifecycle.cancel_job(job_id, owner)


def list_models() -> Answer:
    from reelhook.routing import catalog_entry

    concrete = [spec.catalog_entry() | {"logical": False} for spec in all_models().values()]
    return 200, {"models": [catalog_entry(model_id) for model_id in logical_routes()] + concrete}


def list_providers() -> Answer:
    """Each provider's health and governance: circuit, request budget, tasks in flight."""
    import time

    from reelhook.adapters import governance
    from reelhook.adapters.circuit import parse_item
    from reelhook.config import settings
    from reelhook.providers import provider_names

    names = list(provider_names())
    items = governance.budget_items(names)
    now = time.time()
    out = []
    for name in names:
        conf = settings().provider(name)
        rate_item = items.get(f"gov#{name}#rate", {})
        tat = int(rate_item["tat"]["N"]) / governance.MICROS if "tat" in rate_item else None
        in_flight = items.get(f"gov#{name}#in-flight", {}).get("jobs", {}).get("SS", [])
        state = parse_item(rate_item)
        out.append({
            "name": name,
            "circuit": state.view(now),
            "rate": {"requests_per_second": conf.requests_per_second, "burst": conf.burst,
                     # How far ahead the budget is booked: 0 when a request may go now.
                     "booked_ahead_seconds": round(max(0.0, tat - now), 3) if tat is not None else 0.0},
            "in_flight": {"tasks": len(in_flight), "cap": conf.max_in_flight or None},
        })
    return 200, {"providers": out}
