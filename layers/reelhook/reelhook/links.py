"""When a provider's result link stops working.

The provider's documented lifetime is the upper bound; a signed URL that states its own
expiry (S3 and GCS V4 signatures, CloudFront/S3 V2 ``Expires``, Azure SAS ``se``) may end
sooner, and the earlier deadline wins.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit


def _stamp(value: str) -> float | None:
    for fmt in ("%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def _seconds(value: str) -> int | None:
    # ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses, and
    # a thousands-digit number would trip int()'s length limit.
    return int(value) if value.isascii() and value.isdecimal() and len(value) <= 15 else None


def url_expiry(url: str) -> float | None:
    """The epoch second a signed URL says it expires, or None when it says nothing."""
    query = {key.lower(): value for key, value in parse_qsl(urlsplit(url).query)}
    for date_key, ttl_key in (("x-amz-date", "x-amz-expires"), ("x-goog-date", "x-goog-expires")):
        ttl = _seconds(query.get(ttl_key, ""))
        if date_key in query and ttl is not None:
            start = _stamp(query[date_key])
            if start is not None:
                return start + ttl
    for key in ("expires", "exp"):
        expires = _seconds(query.get(key, ""))
        if expires is not None:
            return float(expires)
    if "se" in query:
        return _stamp(query["se"])
    return None


def links_deadline(urls: list[str] | tuple[str, ...], lifetime_seconds: int, now: float) -> int:
    deadlines = [now + lifetime_seconds]
    deadlines += [expiry for url in urls if (expiry := url_expiry(url)) is not None]
    return int(min(deadlines))
