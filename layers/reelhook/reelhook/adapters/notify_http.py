"""POST a notification to a client's notify_url, connecting only to the address that was checked."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from reelhook.ssrf import check_url

USER_AGENT = "reelhook/0.1"
_client: httpx.Client | None = None


def _http() -> httpx.Client:
    global _client
    if _client is None:
        # Redirects are not followed: a receiver answers where it was asked.
        _client = httpx.Client(timeout=httpx.Timeout(connect=3.0, read=10.0, write=5.0, pool=2.0),
                               follow_redirects=False)
    return _client


def post(url: str, body: bytes, headers: Mapping[str, str], *, allow_insecure: bool) -> int:
    """The receiver's status code. Raises ``ssrf.UnsafeUrl`` before connecting to a refused
    address, and ``httpx.HTTPError`` when no answer came."""
    target = check_url(url, allow_insecure=allow_insecure)
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    request = _http().build_request(
        "POST", target.pinned_url(), content=body,
        headers={**headers, "host": netloc, "content-type": "application/json", "user-agent": USER_AGENT},
        extensions={"sni_hostname": target.host},
    )
    response = _http().send(request, stream=True)
    with contextlib.closing(response):  # the answer's body is not wanted
        return response.status_code
