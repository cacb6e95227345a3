"""Copy a finished job's result links into S3, then mark it succeeded.

Object keys are fixed per job and output index, so a retried copy overwrites the same
key instead of adding a second object.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from reelhook import clock
from reelhook.adapters.jobs_table import JobStore
from reelhook.adapters.s3_stream import StoredObject, TooLarge, stream_to_s3
from reelhook.config import settings
from reelhook.services.status import fail_job
from reelhook.ssrf import UnsafeUrl, check_url
from reelhook.states import Status

MAX_REDIRECTS = 3
# None: the body in the pieces it arrives in (up to 64 KiB each). Re-chunking to a fixed size
# would copy every byte once more (httpx's chunker), and stream_to_s3 joins pieces into parts anyway.
CHUNK_BYTES: int | None = None
EXPIRED_STATUSES = frozenset({401, 403, 404, 410})
EXTENSIONS = {"video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm"}
_download_client: httpx.Client | None = None


class PermanentCopyError(Exception):
    """Retrying will not help (expired link, refused URL, wrong content); the job fails."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _client() -> httpx.Client:
    global _download_client
    if _download_client is None:
        _download_client = httpx.Client(
            timeout=httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0),
            follow_redirects=False,
            # Store the bytes exactly as served, and compare them with Content-Length.
            headers={"accept-encoding": "identity", "user-agent": "reelhook/0.1"},
        )
    return _download_client


def _allowed_hosts(provider: str) -> tuple[str, ...]:
    return settings().provider(provider).download_hosts


@contextmanager
def open_download(url: str, provider: str) -> Iterator[httpx.Response]:
    """GET ``url`` with every hop checked against the SSRF rules; redirects re-validated."""
    conf = settings()
    for _ in range(MAX_REDIRECTS + 1):
        try:
            target = check_url(url, allowed_hosts=_allowed_hosts(provider), allow_insecure=conf.allow_insecure_fetch)
        except UnsafeUrl as exc:
            raise PermanentCopyError("output_url_refused", str(exc)) from exc
        netloc = urlsplit(url).netloc.rpartition("@")[2]
        request = _client().build_request(
            "GET", target.pinned_url(), headers={"host": netloc}, extensions={"sni_hostname": target.host}
        )
        response = _client().send(request, stream=True)
        with contextlib.closing(response):
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            if response.status_code in EXPIRED_STATUSES:
                raise PermanentCopyError("output_expired", f"the result link answered HTTP {response.status_code}")
            if response.status_code >= 400:
                raise httpx.HTTPStatusError(
                    f"the result link answered HTTP {response.status_code}",
                    request=response.request, response=response,
                )
            yield response
            return
    raise PermanentCopyError("output_url_refused", f"more than {MAX_REDIRECTS} redirects")


def _content_type(response: httpx.Response) -> str:
    value = response.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    if not (value.startswith("video/") or value == "application/octet-stream"):
        raise PermanentCopyError("output_not_video", f"the result link served {value!r}, not a video")
    return value if value.startswith("video/") else "video/mp4"


def copy_output(url: str, *, provider: str, job_id: str, index: int) -> StoredObject:
    conf = settings()
    with open_download(url, provider) as response:
        content_type = _content_type(response)
        raw_length = response.headers.get("content-length", "")
        declared = int(raw_length) if raw_length.isdigit() else None
        if declared is not None and declared > conf.max_download_bytes:
            raise PermanentCopyError("output_too_large", f"the result is {declared} bytes")
        key = f"{conf.output_prefix}{job_id}/{index}.{EXTENSIONS.get(content_type, 'mp4')}"
        try:
            stored = stream_to_s3(
                response.iter_bytes(CHUNK_BYTES), bucket=conf.video_bucket, key=key,
                content_type=content_type, max_bytes=conf.max_download_bytes, expected_bytes=declared,
            )
        except TooLarge as exc:
            raise PermanentCopyError("output_too_large", str(exc)) from exc
        return stored


def transfer_job(job_id: str, *, final_attempt: bool, store: JobStore | None = None) -> str:
    """Copy every result of ``job_id``. Raises to request a retry; returns the outcome otherwise."""
    store = store or JobStore()
    job = store.get(job_id, consistent=True)
    if job is None:
        return "unknown_job"
    if job["status"] != Status.STORING.value:
        return "not_storing"
    try:
        outputs = [
            copy_output(url, provider=job["provider"], job_id=job_id, index=index)
            for index, url in enumerate(job.get("result_urls", []))
        ]
    except PermanentCopyError as exc:
        fail_job(store, job_id, exc.code, exc.message, source="transfer")
        return exc.code
    except Exception as exc:
        if final_attempt:
            fail_job(store, job_id, "transfer_failed", f"{type(exc).__name__}: {exc}", source="transfer")
        raise
    now = clock.now()
    store.transition(
        job_id,
        Status.SUCCEEDED,
        now_iso=clock.iso(now),
        event={"status": Status.SUCCEEDED.value, "at": clock.iso(now), "source": "transfer"},
        set_fields={"outputs": [_output(o) for o in outputs], "stored_at": clock.iso(now)},
    )
    return "succeeded"


def _output(stored: StoredObject) -> dict[str, Any]:
    return {"s3_uri": stored.s3_uri, "bucket": stored.bucket, "key": stored.key, "bytes": stored.bytes,
            "sha256": stored.sha256, "content_type": stored.content_type}
