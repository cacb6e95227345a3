"""Copy a finished job's result links into S3, prove each one a video, then mark it succeeded.

Object keys are fixed per job and output index, so a retried copy overwrites the same
key instead of adding a second object.

A job succeeds only when every stored object parses as a video and its first frame decodes
(``services.media_check``, over ranged reads of the stored object). Faults a second GET may
not have (an expired-looking 403, an HTML page, an empty or short body, bytes that are not a
video) are retried: a few times at once with a short backoff, then by SQS redelivery and the
reconciler's re-drives, while the link's deadline allows. Only on the last attempt, or once
the deadline has passed, does the job fail, with the code of the last fault.

Links are fetched with ``http.client`` over a socket connected to the address the SSRF
check resolved (every hop checked again), and the body is read straight into the upload's
part buffers: no HTTP parser copies the bytes on the way, and the GIL is free while the
socket waits, for the part uploads and the SHA-256 thread.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

from reelhook import clock
from reelhook.adapters.jobs_table import JobStore
from reelhook.adapters.s3_objects import RangedObject, delete_quietly, put_image
from reelhook.adapters.s3_stream import StoredObject, TooLarge, Truncated, stream_to_s3
from reelhook.config import settings
from reelhook.services import media_check
from reelhook.services.status import fail_job
from reelhook.ssrf import SafeTarget, UnsafeUrl, check_url
from reelhook.states import Status

MAX_REDIRECTS = 3
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0  # for each read: a stalled source fails, a slow steady one does not
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
EXPIRED_STATUSES = frozenset({401, 403, 404, 410})
EXTENSIONS = {"video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm"}
USER_AGENT = "reelhook/0.1"
# Pauses before the second and third try of one output within an invocation: a one-off
# fault usually passes in seconds, and SQS would otherwise wait its whole visibility timeout.
RETRY_DELAYS: tuple[float, ...] = (1.0, 4.0)
_tls_context: ssl.SSLContext | None = None


class PermanentCopyError(Exception):
    """Retrying will not help (expired link, refused URL, wrong content); the job fails."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DownloadFailed(Exception):
    """The result link answered an error that may pass (5xx, 429, ...); the copy is retried."""


class FaultyOutput(Exception):
    """This attempt got something other than the video (a 403, an HTML page, an empty body,
    bytes that are not a video); retried while the link lives, then the job fails with ``code``."""

    def __init__(self, code: str, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.key = key  # the object this attempt stored, removed if the job fails on it


def _tls() -> ssl.SSLContext:
    """The TLS context for result links, made once (loading the CA bundle costs milliseconds)."""
    global _tls_context
    if _tls_context is None:
        try:
            import certifi  # the bundle httpx and botocore trust, also on Lambda

            _tls_context = ssl.create_default_context(cafile=certifi.where())
        except ImportError:
            _tls_context = ssl.create_default_context()
    return _tls_context


def _allowed_hosts(provider: str) -> tuple[str, ...]:
    return settings().provider(provider).download_hosts


class _Body:
    """A response body as a ``Readable`` for ``stream_to_s3``: bytes land in the part buffer.

    ``http.client`` reads straight into the caller's buffer (no parser copies, the GIL let go
    while the socket waits) and enforces Content-Length and chunked framing itself; a source
    that closes early raises ``IncompleteRead``, reported as ``Truncated`` so nothing is stored.
    """

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self._response = response

    def readinto(self, buffer: memoryview, /) -> int:
        try:
            return self._response.readinto(buffer)
        except http.client.IncompleteRead as exc:
            # Not the partial bytes themselves in the message: they would reach the logs.
            raise Truncated("the source closed the connection before the body ended") from exc


def _connect(target: SafeTarget) -> http.client.HTTPConnection:
    """A connection to the checked address; TLS verifies the URL's host name (and sends it as SNI)."""
    parts = urlsplit(target.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    sock: socket.socket = socket.create_connection((target.address, port), timeout=CONNECT_TIMEOUT)
    try:
        sock.settimeout(READ_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.scheme == "https":
            sock = _tls().wrap_socket(sock, server_hostname=target.host)
    except BaseException:
        sock.close()
        raise
    conn = http.client.HTTPConnection(target.address, port, timeout=READ_TIMEOUT)
    conn.sock = sock  # already connected (and pinned): http.client never resolves the name
    return conn


@contextmanager
def open_download(url: str, provider: str) -> Iterator[http.client.HTTPResponse]:
    """GET ``url`` with every hop checked against the SSRF rules; redirects re-validated."""
    conf = settings()
    for _ in range(MAX_REDIRECTS + 1):
        try:
            target = check_url(url, allowed_hosts=_allowed_hosts(provider), allow_insecure=conf.allow_insecure_fetch)
        except UnsafeUrl as exc:
            raise PermanentCopyError("output_url_refused", str(exc)) from exc
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = _connect(target)
        with contextlib.closing(conn):
            # Store the bytes exactly as served, and compare them with Content-Length.
            conn.request("GET", path, headers={
                "Host": parts.netloc.rpartition("@")[2], "Accept-Encoding": "identity", "User-Agent": USER_AGENT,
            })
            response = conn.getresponse()
            location = response.getheader("location")
            if response.status in REDIRECT_STATUSES and location:
                url = urljoin(url, location)
                continue
            if response.status in EXPIRED_STATUSES:
                # CDNs and signed-URL stores answer these for one-off faults too: retried first.
                raise FaultyOutput("output_expired", f"the result link answered HTTP {response.status}")
            if response.status >= 400:
                raise DownloadFailed(f"the result link answered HTTP {response.status}")
            yield response
            return
    raise PermanentCopyError("output_url_refused", f"more than {MAX_REDIRECTS} redirects")


def _content_type(response: http.client.HTTPResponse) -> str:
    value = (response.getheader("content-type") or "application/octet-stream").split(";")[0].strip().lower()
    if not (value.startswith("video/") or value == "application/octet-stream"):
        raise FaultyOutput("output_not_video", f"the result link served {value!r}, not a video")
    return value if value.startswith("video/") else "video/mp4"


def copy_output(url: str, *, provider: str, job_id: str, index: int) -> StoredObject:
    conf = settings()
    with open_download(url, provider) as response:
        content_type = _content_type(response)
        raw_length = (response.getheader("content-length") or "").strip()
        declared = int(raw_length) if raw_length.isascii() and raw_length.isdigit() else None
        if declared is not None and declared > conf.max_download_bytes:
            raise PermanentCopyError("output_too_large", f"the result is {declared} bytes")
        if declared == 0:
            raise FaultyOutput("output_invalid", "the result link served an empty body")
        key = f"{conf.output_prefix}{job_id}/{index}.{EXTENSIONS.get(content_type, 'mp4')}"
        try:
            stored = stream_to_s3(
                _Body(response), bucket=conf.video_bucket, key=key,
                content_type=content_type, max_bytes=conf.max_download_bytes, expected_bytes=declared,
            )
        except TooLarge as exc:
            raise PermanentCopyError("output_too_large", str(exc)) from exc
        if stored.bytes == 0:  # chunked, no Content-Length: only the stored size tells
            raise _discarded(stored, FaultyOutput("output_invalid", "the result link served an empty body"))
        return stored


def _discarded(stored: StoredObject, fault: FaultyOutput) -> FaultyOutput:
    """Remove what this attempt stored, if it can be told apart from a concurrent attempt's copy
    (its own version); else leave the key for the job's last word (``fault.key``)."""
    if stored.version_id:
        delete_quietly(stored.bucket, stored.key, stored.version_id)
    else:
        fault.key = stored.key
    return fault


def store_output(url: str, *, provider: str, job_id: str, index: int, asked: dict[str, Any]) -> dict[str, Any]:
    """Copy one result, prove it a video, store its poster: the output as the job records it."""
    stored = copy_output(url, provider=provider, job_id=job_id, index=index)
    try:
        found = media_check.inspect(RangedObject(stored.bucket, stored.key, stored.bytes,  # type: ignore[arg-type]
                                                 version_id=stored.version_id))
    except media_check.NotAVideo as exc:
        raise _discarded(stored, FaultyOutput("output_invalid", str(exc))) from exc
    output = _output(stored) | {"media": found.media}
    if found.poster_jpeg:
        poster_key = stored.key.rsplit(".", 1)[0] + ".poster.jpg"
        poster_version = put_image(stored.bucket, poster_key, found.poster_jpeg)
        output["poster_key"] = poster_key
        if poster_version:
            output["poster_version_id"] = poster_version
    output["warnings"] = media_check.compare(found.media, asked)
    return output


def _failure(exc: Exception) -> tuple[str, str]:
    """The code and message a job fails with when ``exc`` was its last attempt's fault."""
    if isinstance(exc, FaultyOutput | PermanentCopyError):
        return exc.code, exc.message
    if isinstance(exc, Truncated):
        return "output_invalid", f"the result link served a short body: {exc}"
    return "transfer_failed", f"{type(exc).__name__}: {exc}"


def _store_with_retries(url: str, *, job: dict[str, Any], index: int, deadline: float) -> dict[str, Any]:
    asked = dict(job.get("request", {})) | {k: v for k, v in (job.get("effective") or {}).items() if v is not None}
    for attempt in range(len(RETRY_DELAYS) + 1):
        try:
            return store_output(url, provider=job["provider"], job_id=job["id"], index=index, asked=asked)
        except PermanentCopyError:
            raise
        except Exception:
            if attempt == len(RETRY_DELAYS) or clock.now() + RETRY_DELAYS[attempt] >= deadline:
                raise
            time.sleep(RETRY_DELAYS[attempt])
            if not _still_storing(job["id"]):
                raise Superseded(job["id"]) from None
    raise AssertionError("unreachable")  # the loop returns or raises


class Superseded(Exception):
    """Another attempt finished the job (or it ended) while this one was retrying."""


def _still_storing(job_id: str) -> bool:
    job = JobStore().get(job_id, consistent=True)
    return job is not None and job.get("status") == Status.STORING.value


def transfer_job(job_id: str, *, final_attempt: bool, store: JobStore | None = None) -> str:
    """Copy every result of ``job_id``. Raises to request a retry; returns the outcome otherwise."""
    store = store or JobStore()
    job = store.get(job_id, consistent=True)
    if job is None:
        return "unknown_job"
    if job["status"] != Status.STORING.value:
        return "not_storing"
    deadline = float(job.get("links_expire_at") or float("inf"))
    try:
        outputs = [
            _store_with_retries(url, job=job, index=index, deadline=deadline)
            for index, url in enumerate(job.get("result_urls", []))
        ]
    except Superseded:
        return "not_storing"
    except PermanentCopyError as exc:
        fail_job(store, job_id, exc.code, exc.message, source="transfer")
        return exc.code
    except Exception as exc:
        code, message = _failure(exc)
        expired = clock.now() >= deadline
        if final_attempt or expired:
            failed = fail_job(store, job_id, code, message, source="transfer")
            key = getattr(exc, "key", None)
            if key and failed is not None and failed.get("status") == Status.FAILED.value:
                delete_quietly(settings().video_bucket, key)  # nothing false stays stored
            if code == "transfer_failed" and not expired:
                raise  # an unexplained error: the message goes to the DLQ for a look
            return code
        raise
    now = clock.now()
    warnings = [f"outputs[{i}].{w}" if len(outputs) > 1 else w for i, o in enumerate(outputs) for w in o["warnings"]]
    event: dict[str, Any] = {"status": Status.SUCCEEDED.value, "at": clock.iso(now), "source": "transfer"}
    fields: dict[str, Any] = {"outputs": [{k: v for k, v in o.items() if k != "warnings"} for o in outputs],
                              "stored_at": clock.iso(now)}
    if warnings:
        event["warnings"] = warnings
        fields["warnings"] = warnings
    moved = store.transition(job_id, Status.SUCCEEDED, now_iso=clock.iso(now), event=event, set_fields=fields)
    if not moved.applied:
        # Cancelled, failed or finished by another attempt while this one copied: what it
        # stored is nobody's output, and is not left behind.
        _discard_unrecorded(outputs, moved.job)
        return "not_storing"
    return "succeeded"


def _discard_unrecorded(outputs: list[dict[str, Any]], job: dict[str, Any] | None) -> None:
    succeeded = job is not None and job.get("status") == Status.SUCCEEDED.value
    recorded = set()
    for kept in (job or {}).get("outputs", []) if succeeded else []:
        recorded |= {(kept.get("key"), kept.get("version_id")), (kept.get("poster_key"), kept.get("poster_version_id"))}
    for output in outputs:
        for key, version in ((output["key"], output.get("version_id")),
                             (output.get("poster_key"), output.get("poster_version_id"))):
            if key is None:
                continue
            if version:
                if (key, version) not in recorded:
                    delete_quietly(output["bucket"], key, version)
            elif not succeeded:  # an unversioned bucket: the key is only this job's while it has no output
                delete_quietly(output["bucket"], key)


def _output(stored: StoredObject) -> dict[str, Any]:
    out = {"s3_uri": stored.s3_uri, "bucket": stored.bucket, "key": stored.key, "bytes": stored.bytes,
           "sha256": stored.sha256, "content_type": stored.content_type}
    if stored.version_id:
        out["version_id"] = stored.version_id  # downloads are presigned for exactly these bytes
    return out
