"""The S3 inbox: a job manifest put under ``inbox/`` is submitted as ``POST /v1/jobs`` would be.

The manifest is the same JSON as the API's body and goes through the same validation and
idempotency. The idempotency key comes from the object key, so S3's at-least-once events
(and re-uploads of the same manifest) never make a second job: one object key, one job.
A manifest that is refused leaves ``outbox/<path>.error.json`` with the API's error body;
the job's status document, ``outbox/<path>.status.json``, is kept by the notifier.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote, unquote_plus

from reelhook import http_api, owners
from reelhook.adapters.outbox import delete_document, put_document, read_object
from reelhook.config import settings
from reelhook.errors import error_body
from reelhook.records import record
from reelhook.services.outbox_paths import ERROR_SUFFIX, INBOX_PREFIX, ORIGIN_KIND, outbox_key

# A manifest is an API body put in S3: the same limit.
MAX_MANIFEST_BYTES = http_api.MAX_BODY_BYTES


@record
class InboxOutcome:
    outcome: str  # accepted | rejected | ignored
    key: str
    job_id: str | None = None
    status_code: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


def idempotency_key(object_key: str) -> str:
    key = f"s3:{object_key}"
    if len(key) <= 255 and all(0x21 <= ord(c) <= 0x7E for c in key):
        return key
    # Keys with spaces or non-ASCII (or longer than the API allows) are hashed instead.
    return "s3:sha256:" + hashlib.sha256(object_key.encode()).hexdigest()


def _key_candidates(key: str) -> list[str]:
    # EventBridge may hand over the key URL-encoded; the key as given is tried first.
    out: list[str] = []
    for candidate in (key, unquote(key), unquote_plus(key)):
        if candidate not in out:
            out.append(candidate)
    return out


def _manifest(bucket: str, key: str) -> tuple[str, bytes] | None:
    for candidate in _key_candidates(key):
        raw = read_object(bucket, candidate, max_bytes=MAX_MANIFEST_BYTES)
        if raw is not None:
            return candidate, raw
    return None


def receive_manifest(bucket: str, key: str, *, size: int | None = None, callback_base_url: str) -> InboxOutcome:
    """Submit the manifest at ``s3://bucket/key``; the outcome says what became of it."""
    if bucket != settings().video_bucket or not key.startswith(INBOX_PREFIX) or key.endswith("/"):
        return InboxOutcome("ignored", key)
    if size is not None and size > MAX_MANIFEST_BYTES:
        return _reject(bucket, key, 413, error_body(
            "manifest_too_large", f"the manifest is {size} bytes; at most {MAX_MANIFEST_BYTES} are read"))
    found = _manifest(bucket, key)
    if found is None:  # deleted before we got to it
        return InboxOutcome("ignored", key)
    key, raw = found
    if len(raw) > MAX_MANIFEST_BYTES:
        return _reject(bucket, key, 413, error_body(
            "manifest_too_large", f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes"))
    origin = {"kind": ORIGIN_KIND, "bucket": bucket, "key": key}
    status, body = http_api.create_job(raw, idempotency_key(key), callback_base_url, origin=origin,
                                       owner=owners.INBOX)
    if status != 202:
        return _reject(bucket, key, status, body)
    # A manifest fixed and put again under the same key: its earlier refusal no longer holds.
    delete_document(bucket, outbox_key(key, ERROR_SUFFIX))
    return InboxOutcome("accepted", key, job_id=body["id"], status_code=status)


def _reject(bucket: str, key: str, status: int, body: dict[str, Any]) -> InboxOutcome:
    document = {**body, "status_code": status, "manifest": f"s3://{bucket}/{key}"}
    put_document(bucket, outbox_key(key, ERROR_SUFFIX), document)
    return InboxOutcome("rejected", key, status_code=status)
