"""POST a notification to a client's notify_url, connecting only to the address that was checked.

urllib3, not httpx: botocore has already imported it, so a delivery adds nothing to the notify
function's cold start (httpx cost it about 40 ms). Every request goes to the address
``ssrf.check_url`` approved (the pool is keyed by that address), TLS still verifies the URL's
host name and sends it as SNI, and redirects are never followed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from reelhook.ssrf import check_url

USER_AGENT = "reelhook/0.1"
# Connect, then every read of the answer. urllib3 sends the body under the connect timeout
# (per socket operation), so one attempt lasts at most about 2 * connect + read.
TIMEOUT = urllib3.Timeout(connect=3.0, read=10.0)
# A receiver's answer is read up to this much so its connection can be reused; a longer one
# is not worth waiting for, and its connection is closed instead.
DRAIN_BYTES = 64 * 1024
# The names the job's ``notifications[].error`` has always used for these failures, most
# specific first (urllib3's NewConnectionError is a subclass of its ConnectTimeoutError).
_KINDS: tuple[tuple[type[HTTPError], str], ...] = (
    (NewConnectionError, "ConnectError"),
    (ConnectTimeoutError, "ConnectTimeout"),
    (SSLError, "ConnectError"),
    (ReadTimeoutError, "ReadTimeout"),
    (ProtocolError, "RemoteProtocolError"),
)
_pool: urllib3.PoolManager | None = None
_lock = threading.Lock()


class DeliveryFailed(Exception):
    """No answer came (could not connect, timed out, connection dropped); str() is ``"<kind>: <detail>"``."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def _http() -> urllib3.PoolManager:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                try:
                    import certifi  # the bundle httpx trusted (and botocore does): the same CAs as before

                    ca_certs: str | None = certifi.where()
                except ImportError:
                    ca_certs = None  # the system's
                _pool = urllib3.PoolManager(num_pools=16, maxsize=4, retries=False, timeout=TIMEOUT,
                                            ca_certs=ca_certs)
    return _pool


def _kind(exc: HTTPError) -> str:
    return next((name for cls, name in _KINDS if isinstance(exc, cls)), "TransportError")


def post(url: str, body: bytes, headers: Mapping[str, str], *, allow_insecure: bool) -> int:
    """The receiver's status code. Raises ``ssrf.UnsafeUrl`` before connecting to a refused
    address, and ``DeliveryFailed`` when no answer came."""
    target = check_url(url, allow_insecure=allow_insecure)
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    # The pool connects to the checked address only; TLS verifies and names the URL's host.
    tls = {"server_hostname": target.host, "assert_hostname": target.host} if https else None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request_headers = {**headers, "host": parts.netloc.rpartition("@")[2], "content-type": "application/json",
                       "user-agent": USER_AGENT}
    try:
        pool = _http().connection_from_host(target.address, port=port, scheme=parts.scheme, pool_kwargs=tls)
        response = pool.urlopen("POST", path, body=body, headers=request_headers, redirect=False, retries=False,
                                timeout=TIMEOUT, preload_content=False, assert_same_host=False)
    except HTTPError as exc:
        raise DeliveryFailed(_kind(exc), str(exc)) from exc
    try:
        # A short answer read to its end goes back to the pool (urllib3 releases it itself).
        response.read(DRAIN_BYTES, decode_content=False)
    except HTTPError:
        pass  # the status is what counts; the connection is closed below
    finally:
        if not response.closed:
            response.close()  # closes the connection too: never reused mid-answer
        response.release_conn()  # a closed one is opened afresh by its next request
    return response.status
