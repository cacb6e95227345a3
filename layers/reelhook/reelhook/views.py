"""How a stored job is shown to clients."""

from __future__ import annotations

from typing import Any

from reelhook.adapters.aws import client

DOWNLOAD_URL_SECONDS = 3600
PUBLIC_FIELDS = ("id", "model", "provider", "status", "provider_task_id", "client_reference",
                 "created_at", "updated_at", "error", "progress", "events", "notify_url", "notifications",
                 "waiting_for", "submit_outcome", "submit_error", "effective", "effective_notes", "warnings")


def public_job(job: dict[str, Any], *, presign: bool = True) -> dict[str, Any]:
    out = {name: job[name] for name in PUBLIC_FIELDS if name in job}
    outputs = []
    for stored in job.get("outputs", []):
        item = {k: stored[k] for k in ("s3_uri", "bytes", "sha256", "content_type")}
        if "media" in stored:
            item["media"] = stored["media"]
        if presign:
            item["download_url"] = _presign(stored["bucket"], stored["key"])
            if stored.get("poster_key"):
                item["poster_url"] = _presign(stored["bucket"], stored["poster_key"])
        outputs.append(item)
    out["outputs"] = outputs
    return out


def _presign(bucket: str, key: str) -> str:
    return str(client("s3").generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                                   ExpiresIn=DOWNLOAD_URL_SECONDS))
