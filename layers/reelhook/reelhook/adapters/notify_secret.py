"""The key that signs notify_url deliveries (NotifySigningSecret's ``signing_key``).

Cached for a few minutes per secret, as the deployment secret is, so a warm invocation makes
no call and a rotated key is picked up without a redeploy.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time

from reelhook.adapters.aws import client

CACHE_SECONDS = 300
MIN_KEY_BYTES = 24  # Standard Webhooks asks for 24-64 random bytes
_cache: dict[str, tuple[float, bytes]] = {}
_lock = threading.Lock()


def signing_key(*, now: float | None = None) -> bytes:
    secret_id = os.environ.get("NOTIFY_SECRET_ID", "").strip()
    now = time.monotonic() if now is None else now
    with _lock:
        cached = _cache.get(secret_id)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
    raw = client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    key = str(json.loads(raw).get("signing_key", "")).encode()
    if len(key) < MIN_KEY_BYTES:
        raise RuntimeError("the notify signing secret's signing_key is missing or too short")
    with _lock:
        _cache[secret_id] = (now, key)
    return key


def whsec(key: bytes) -> str:
    """The key as receivers configure it (``whsec_`` + base64), e.g. for ``standardwebhooks``."""
    return "whsec_" + base64.b64encode(key).decode()


def clear_cache() -> None:
    with _lock:
        _cache.clear()
