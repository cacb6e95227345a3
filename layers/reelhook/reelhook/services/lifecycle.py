"""A caller's jobs: ``GET /v1/jobs`` (listing, from the owner-index) and cancelling one.

Both are scoped to the caller (reelhook.owners): another owner's job is "no such job",
never "forbidden", so ids cannot be probed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from reelhook import clock
from reelhook.adapters.jobs_table import JobStore
from reelhook.errors import error_body
from reelhook.providers import provider_names
from reelhook.services.rate_limit import release_in_flight
from reelhook.spec import FieldError, did_you_mean
from reelhook.states import TERMINAL, Status
from reelhook.views import public_job

Answer = tuple[int, dict[str, Any]]
DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_FILTER_LENGTH = 256
QUERY_PARAMETERS = ("status", "model", "provider", "client_reference", "created_after", "created_before",
                    "limit", "cursor")
_JOB_PK = re.compile(r"^job#job_[0-9a-f]{32}$")
_CREATED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
NON_TERMINAL = frozenset(set(Status) - TERMINAL)


class _Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.answer = (status, body)


def list_jobs(owner: str, query: Mapping[str, str] | None) -> Answer:
    """One page of the owner's jobs, newest first, with the cursor of the next page."""
    try:
        params = _list_parameters(dict(query or {}))
    except _Refused as refused:
        return refused.answer
    jobs, next_key = JobStore().owned_jobs(owner, start_key=params.pop("start_key"), **params)
    return 200, {"jobs": [public_job(job) for job in jobs], "next_cursor": _cursor(next_key) if next_key else None}


def _list_parameters(query: dict[str, str]) -> dict[str, Any]:
    problems: list[FieldError] = []
    for name in sorted(set(query) - set(QUERY_PARAMETERS)):
        problems.append(FieldError(name[:100], "is not a query parameter of GET /v1/jobs"
                                   + did_you_mean(name, list(QUERY_PARAMETERS)), list(QUERY_PARAMETERS)))
    filters: dict[str, str] = {}
    status = query.get("status")
    if status is not None:
        allowed = [s.value for s in Status]
        if status not in allowed:
            problems.append(FieldError("status", "is not a job status" + did_you_mean(status, allowed), allowed))
        filters["status"] = status
    provider = query.get("provider")
    if provider is not None:
        allowed = sorted(provider_names())
        if provider not in allowed:
            problems.append(FieldError("provider", "is not a provider" + did_you_mean(provider, allowed), allowed))
        filters["provider"] = provider
    for name in ("model", "client_reference"):
        value = query.get(name)
        if value is not None:
            if not 1 <= len(value) <= MAX_FILTER_LENGTH:
                problems.append(FieldError(name, f"must be 1 to {MAX_FILTER_LENGTH} characters",
                                           {"min": 1, "max": MAX_FILTER_LENGTH}))
            filters[name] = value
    after, before = (_instant(query, name, problems) for name in ("created_after", "created_before"))
    if after and before and after > before:
        problems.append(FieldError("created_before", "is earlier than created_after"))
    limit = DEFAULT_PAGE
    raw_limit = query.get("limit")
    if raw_limit is not None:
        if len(raw_limit) <= 3 and raw_limit.isascii() and raw_limit.isdecimal() and 1 <= int(raw_limit) <= MAX_PAGE:
            limit = int(raw_limit)
        else:
            problems.append(FieldError("limit", f"must be a whole number from 1 to {MAX_PAGE}",
                                       {"min": 1, "max": MAX_PAGE}))
    if problems:
        raise _Refused(422, error_body("validation_error", "the listing's query is not valid", problems))
    start_key = None
    if query.get("cursor") is not None:
        start_key = _start_key(query["cursor"])
    return {"created_after": after, "created_before": before, "filters": filters, "limit": limit,
            "start_key": start_key}


def _instant(query: Mapping[str, str], name: str, problems: list[FieldError]) -> str | None:
    """An ISO 8601 instant with a timezone, as the stored ``created_at`` is written (UTC, ms)."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw) if len(raw) <= 40 else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        problems.append(FieldError(name, "must be an ISO 8601 date-time with a timezone, e.g. 2026-12-01T00:00:00Z"))
        return None
    return clock.iso(parsed.astimezone(UTC).timestamp())


def _cursor(key: Mapping[str, Any]) -> str:
    # The owner is not in the cursor: it comes from the caller, so a cursor cannot reach
    # another owner's jobs whatever it is edited to say.
    position = {"pk": key["pk"]["S"], "created_at": key["created_at"]["S"]}
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def _start_key(cursor: str) -> dict[str, Any]:
    refused = _Refused(400, error_body("invalid_cursor", "cursor is not one this API gave; "
                                                         "pass next_cursor from the previous page as it is"))
    if len(cursor) > 300:
        raise refused
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise refused from None
    if (not isinstance(position, dict) or not isinstance(position.get("pk"), str)
            or not isinstance(position.get("created_at"), str) or not _JOB_PK.match(position["pk"])
            or not _CREATED_AT.match(position["created_at"])):
        raise refused
    return {"pk": {"S": position["pk"]}, "created_at": {"S": position["created_at"]}}


def cancel_job(job_id: str, owner: str) -> Answer:
    """Make the owner's non-terminal job ``cancelled``: terminal, so nothing more is copied
    and late webhooks are acknowledged and ignored. Cancelling twice answers as once did."""
    store = JobStore()
    now = clock.iso(clock.now())
    # One conditional write, no read first: the owner is part of the condition.
    moved = store.transition(
        job_id, Status.CANCELLED, now_iso=now,
        event={"status": Status.CANCELLED.value, "at": now, "source": "api"},
        set_fields={"cancellation": {"at": now}}, remove_fields=("waiting_for",), when_equal={"owner": owner},
    )
    if moved.applied and moved.job is not None:
        release_in_flight(str(moved.job.get("provider", "")), job_id)
        return 200, public_job(moved.job)
    job = moved.job
    if job is None or job.get("owner") != owner:
        return 404, error_body("not_found", "no such job")
    if job.get("status") == Status.CANCELLED.value:
        return 200, public_job(job)
    return 409, error_body("job_finished", f"the job already {job.get('status')}; only a job that has not "
                                           f"finished can be cancelled ({', '.join(sorted(NON_TERMINAL))})")
