"""The deployment's secret (provider keys, webhook secrets, callback token key).

Fetched from Secrets Manager once and cached for a few minutes, so a warm invocation
makes no call and a rotated value is picked up without a redeploy.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from reelhook.adapters.aws import client
from reelhook.config import settings

CACHE_SECONDS = 300
CALLBACK_TOKEN_FIELD = "callback_token_key"  # noqa: S105 - the field's name, not a secret
MIN_CALLBACK_TOKEN_KEY = 32
_cache: tuple[float, dict[str, str]] | None = None
_lock = threading.Lock()


def get_secrets(*, now: float | None = None) -> dict[str, str]:
    global _cache
    now = time.monotonic() if now is None else now
    cached = _cache
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    with _lock:
        if _cache is not None and now - _cache[0] < CACHE_SECONDS:
            return _cache[1]
        raw: Any = client("secretsmanager").get_secret_value(SecretId=settings().secret_id)["SecretString"]
        values = {str(k): str(v) for k, v in json.loads(raw).items()}
        _cache = (now, values)
        return values


def callback_token_key() -> bytes:
    key = get_secrets().get(CALLBACK_TOKEN_FIELD, "")
    if len(key) < MIN_CALLBACK_TOKEN_KEY:
        raise RuntimeError("the deployment secret's callback_token_key is missing or too short")
    return key.encode()


def clear_cache() -> None:
    global _cache
    with _lock:
        _cache = None
