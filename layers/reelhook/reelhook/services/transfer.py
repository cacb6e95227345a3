"""Copy a finished job's result links into S3, then mark it succeeded.

Object keys are fixed per job and output index, so a retried copy overwrites the same
key instead of adding a second object.

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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

from reelhook import clock
from reelhook.adapters.jobs_table import JobStore
from reelhook.adapters.s3_stream import StoredObject, TooLarge, Truncated, stream_to_s3
from reelhook.config import settings
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
_tls_context: ssl.SSLContext | None = None


class PermanentCopyError(Exception):
    """Retrying will not help (expired link, refused URL, wrong content); the job fails."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DownloadFailed(Exception):
    """The result link answered an error that may pass (5xx, 429, ...); the copy is retried."""


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
                raise PermanentCopyError("output_expired", f"the result link answered HTTP {response.status}")
            if response.status >= 400:
                raise DownloadFailed(f"the result link answered HTTP {response.status}")
            yield response
            return
    raise PermanentCopyError("output_url_refused", f"more than {MAX_REDIRECTS} redirects")


def _content_type(response: http.client.HTTPResponse) -> str:
    value = (response.getheader("content-type") or "application/octet-stream").split(";")[0].strip().lower()
    if not (value.startswith("video/") or value == "application/octet-stream"):
        raise PermanentCopyError("output_not_video", f"the result link served {value!r}, not a video")
    return value if value.startswith("video/") else "video/mp4"


def copy_output(url: str, *, provider: str, job_id: str, index: int) -> StoredObject:
    conf = settings()
    with open_download(url, provider) as response:
        content_type = _content_type(response)
        raw_length = (response.getheader("content-length") or "").strip()
        declared = int(raw_length) if raw_length.isascii() and raw_length.isdigit() else None
        if declared is not None and declared > conf.max_download_bytes:
            raise PermanentCopyError("output_too_large", f"the result is {declared} bytes")
        key = f"{conf.output_prefix}{job_id}/{index}.{EXTENSIONS.get(content_type, 'mp4')}"
        try:
            stored = stream_to_s3(
                _Body(response), bucket=conf.video_bucket, key=key,
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
