"""What a request from outside may hold, checked before anything acts on it.

- **Bodies**: API Gateway base64-encodes a body that is not text; it is decoded strictly
  here, and never turned into text, so bytes that are not UTF-8 reach the JSON parser
  (which refuses them with a 400) instead of raising in the event wrapper.
- **Job ids**: ``job_`` and 32 lower-case hex digits, the whole string; anything else is no
  job, so it never becomes a DynamoDB key (real DynamoDB refuses keys over 2048 bytes).
- **URLs**: no whitespace or control characters anywhere (Python's ``urlsplit`` silently
  drops tabs and newlines, the provider would not), and a host that a resolver could
  look up: an address, or a DNS name of 1-63 character labels, at most 253 in all.
"""

from __future__ import annotations

import base64
import binascii
import re

JOB_ID = re.compile(r"job_[0-9a-f]{32}")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f]")


class UndecodableBody(ValueError):
    """A body flagged as base64 that is not base64; the message says so."""


def body_bytes(body: str | None, is_base64: bool) -> bytes:
    """The request body as sent: base64-decoded (strictly) when API Gateway flagged it so."""
    if not body:
        return b""
    if not is_base64:
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise UndecodableBody("the body is marked base64-encoded but is not valid base64") from None


def is_job_id(value: str) -> bool:
    return JOB_ID.fullmatch(value) is not None


def url_text_problem(url: str) -> str | None:
    """Why ``url`` cannot be sent on as it is (whitespace or control characters), or None."""
    found = _UNSAFE_IN_URL.search(url)
    if found:
        return f"must not contain whitespace or control characters (found {found.group()!r}); percent-encode them"
    return None


def host_name_problem(host: str) -> str | None:
    """Why ``host`` (a URL's hostname, an IP literal or a DNS name) can never be looked up, or None."""
    from reelhook.ssrf import literal_address

    if literal_address(host) is not None:
        return None
    name = host.removesuffix(".")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return "has a host that is not a valid DNS name"
    if not ascii_name or len(ascii_name) > 253:
        return "has a host name longer than 253 characters" if ascii_name else "has an empty host"
    for label in ascii_name.split("."):
        if not _LABEL.fullmatch(label):
            return "has a host that is not a valid DNS name (labels of 1-63 letters, digits and hyphens)"
        if label[:4].lower() == "xn--":
            try:
                if not label[4:].encode("ascii").decode("punycode"):
                    raise UnicodeError("empty")
            except UnicodeError:
                return "has a host whose internationalised label (xn--) does not decode"
    return None
