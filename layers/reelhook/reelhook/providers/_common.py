"""Small helpers shared by provider modules (not a provider itself)."""

from __future__ import annotations

from typing import Any


def envelope_error(status_code: int, body: Any) -> str:
    """``{"error": {"message", "code", "param"}}`` (OpenAI-style gateways) or ``{"message"}``."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = str(error.get("message") or error.get("code") or f"HTTP {status_code}")
            param = error.get("param")
            return f"{message} (param: {param})" if param else message
        if isinstance(error, str) and error:
            return error
        if body.get("message"):
            return str(body["message"])
    return f"HTTP {status_code}"


def task_id_from(body: Any) -> str | None:
    """A create answer's task id: ``id`` or ``task_id``, top level or under ``data``."""
    if not isinstance(body, dict):
        return None
    for scope in (body, body.get("data") if isinstance(body.get("data"), dict) else {}):
        for key in ("task_id", "id"):
            value = scope.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def error_text(value: Any, default: str) -> str:
    if isinstance(value, dict):
        return str(value.get("message") or value.get("code") or default)
    if isinstance(value, str) and value:
        return value
    return default
