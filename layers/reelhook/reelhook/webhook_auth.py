"""Webhook authentication: the per-job URL token and Standard-Webhooks-style signatures.

The token is an HMAC of the provider and job id under a deployment key, so the callback
checks it without any lookup. Every comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

SIGNATURE_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The request is not authentic; the message says why (never the expected value)."""


def job_token(key: bytes, provider: str, job_id: str) -> str:
    mac = hmac.new(key, f"reelhook-callback:{provider}:{job_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def verify_job_token(key: bytes, provider: str, job_id: str, presented: str | None) -> bool:
    if not presented:
        return False
    expected = job_token(key, provider, job_id)
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "replace"))


def sign_standard(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, as Standard Webhooks and Freepik sign."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_standard(
    secrets: list[bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> str:
    """Check ``webhook-id``/``webhook-timestamp``/``webhook-signature``; return the webhook id.

    ``headers`` must have lower-case names. Any ``v1`` entry of the space-separated
    signature list may match any of ``secrets`` (key rotation on both sides).
    """
    msg_id = headers.get("webhook-id", "")
    raw_ts = headers.get("webhook-timestamp", "")
    raw_sig = headers.get("webhook-signature", "")
    if not (msg_id and raw_ts and raw_sig):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(raw_ts)
    except ValueError as exc:
        raise SignatureError("webhook-timestamp is not an integer") from exc
    if abs(now - timestamp) > tolerance:
        raise SignatureError("webhook-timestamp is outside the allowed tolerance")
    presented: list[bytes] = []
    for entry in raw_sig.split():
        version, _, sig = entry.partition(",")
        if version == "v1" and sig:
            presented.append(sig.encode())
    if not presented:
        raise SignatureError("webhook-signature holds no v1 signature")
    matched = False
    for secret in secrets:
        expected = sign_standard(secret, msg_id, timestamp, body).partition(",")[2].encode()
        for sig in presented:
            # Evaluate every pair so timing does not reveal which one matched.
            matched |= hmac.compare_digest(expected, sig)
    if not matched:
        raise SignatureError("no webhook-signature entry matches")
    return msg_id


def secret_bytes(secret: str, encoding: str) -> bytes:
    """Key bytes for a provider webhook secret: its raw UTF-8 bytes, or base64-decoded.

    A ``whsec_`` prefix is always dropped before base64 decoding, as Standard Webhooks does.
    """
    if encoding == "base64":
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()
