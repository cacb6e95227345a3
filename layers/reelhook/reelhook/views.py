"""How a stored job is shown to clients."""

from __future__ import annotations

from typing import Any

from reelhook.adapters.aws import client

DOWNLOAD_URL_SECONDS = 3600
PUBLIC_FIELDS = ("id", "model", "provider", "status", "provider_task_id", "client_reference",
                 "created_at", "updated_at", "error", "progress", "events", "notify_url", "notifications",
                 "waiting_for", "submit_outcome", "submit_error", "effective", "effective_notes", "warnings",
                 "request", "route", "routes", "routing", "routes_skipped")
# What the current attempt's outcome is called, by job status.
ATTEMPT_OUTCOME = {"queued": "pending", "submitted": "submitted", "running": "running", "storing": "completed",
                   "succeeded": "succeeded", "failed": "failed", "cancelled": "cancelled"}


def public_job(job: dict[str, Any], *, presign: bool = True) -> dict[str, Any]:
    out = {name: job[name] for name in PUBLIC_FIELDS if name in job}
    outputs = []
    for stored in job.get("outputs", []):
        item = {k: stored[k] for k in ("s3_uri", "bytes", "sha256", "content_type", "version_id") if k in stored}
        if "media" in stored:
            item["media"] = stored["media"]
        if presign:
            item["download_url"] = _presign(stored["bucket"], stored["key"], stored.get("version_id"))
            if stored.get("poster_key"):
                item["poster_url"] = _presign(stored["bucket"], stored["poster_key"], stored.get("poster_version_id"))
        outputs.append(item)
    out["outputs"] = outputs
    out["attempts"] = attempts(job)
    if "cancellation" in job:
        # No provider has a cancel endpoint: a task that was, or may have been, created runs on.
        out["cancellation"] = {"at": job["cancellation"]["at"], "provider_task_may_continue": bool(
            job.get("provider_task_id") or job.get("submit_started_at"))}
    return out


def attempts(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Every route tried, the current one last (its outcome follows the job's status)."""
    done = [dict(attempt) for attempt in job.get("attempts", [])]
    route = job.get("route") or {"provider": job.get("provider"), "model": job.get("model")}
    current: dict[str, Any] = {"provider": route.get("provider"), "model": route.get("model"),
                               "task_id": job.get("provider_task_id"),
                               "outcome": ATTEMPT_OUTCOME.get(str(job.get("status")), str(job.get("status"))),
                               "started_at": job.get("submit_started_at"), "ended_at": None, "reason": None}
    if job.get("status") in ("succeeded", "failed", "cancelled"):
        current["ended_at"] = job.get("updated_at")
        current["reason"] = (job.get("error") or {}).get("code")
    return [*done, current]


def _presign(bucket: str, key: str, version_id: str | None = None) -> str:
    params = {"Bucket": bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
    return str(client("s3").generate_presigned_url("get_object", Params=params,
                                                   ExpiresIn=DOWNLOAD_URL_SECONDS))
