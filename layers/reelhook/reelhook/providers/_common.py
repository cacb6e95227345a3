"""Small helpers shared by provider modules (not a provider itself)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reelhook.providers.base import KeyProbe, KeyVerdict, MalformedPayload, Phase, ProviderStatus, require_mapping


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


def submit_task_id(body: Any) -> str:
    """The task id of a create answer (see ``task_id_from``), or ``MalformedPayload``."""
    task_id = task_id_from(body)
    if task_id is None:
        raise MalformedPayload("the submit response has no id or task_id")
    return task_id


def error_text(value: Any, default: str) -> str:
    if isinstance(value, dict):
        return str(value.get("message") or value.get("code") or default)
    if isinstance(value, str) and value:
        return value
    return default


def read_status(
    body: Any,
    *,
    vocabulary: Mapping[str, Phase],
    results: Callable[[dict[str, Any]], tuple[str, ...]],
    task_id: Callable[[dict[str, Any]], str | None] = task_id_from,
    failure: Callable[[dict[str, Any], str], str],
) -> ProviderStatus:
    """The shape every provider shares: a status word, links once done, a reason once failed.

    ``vocabulary`` maps lower-cased status words to phases. A status GET may wrap the task
    in ``data`` and a webhook may not; both are accepted from either source. "Completed"
    without any link yet counts as still running, so nothing is copied from nothing.
    """
    data = require_mapping(body, "body")
    if isinstance(data.get("data"), dict):
        data = data["data"]
    raw = data.get("status")
    if not isinstance(raw, str) or raw.lower() not in vocabulary:
        raise MalformedPayload(f"status must be one of {', '.join(vocabulary)}")
    phase = vocabulary[raw.lower()]
    urls = results(data) if phase is Phase.COMPLETED else ()
    if phase is Phase.COMPLETED and not urls:
        phase = Phase.RUNNING
    progress = data.get("progress")
    return ProviderStatus(
        task_id=task_id(data),
        phase=phase,
        raw_status=raw,
        result_urls=urls,
        error_message=failure(data, raw) if phase is Phase.FAILED else None,
        progress=int(progress) if isinstance(progress, int | float) and 0 <= progress <= 100 else None,
    )


# A status GET for a task id no provider can have issued: it creates nothing and costs nothing.
PROBE_TASK_ID = "reelhook-doctor-no-such-task"


def read_key_probe(status_code: int | None, body: Any, describe: Callable[[int, Any], str]) -> KeyProbe:
    """The verdict most gateways share: authentication is checked before the task is looked up,
    so a 404 (or a 200) means the key was accepted; 401/403 mean it was not. ``describe`` is the
    provider's ``error_message``; without an answer ``body`` says why none came."""
    if status_code is None:
        return KeyProbe(KeyVerdict.UNAVAILABLE, f"no answer: {body}")
    said = f"HTTP {status_code}: {describe(status_code, body)}"
    if status_code in (401, 403):
        return KeyProbe(KeyVerdict.BAD_KEY, said)
    if status_code == 402:
        return KeyProbe(KeyVerdict.NO_CREDIT, said)
    if status_code < 300 or status_code == 404:
        return KeyProbe(KeyVerdict.WORKS, f"HTTP {status_code}")
    if status_code == 429 or status_code >= 500:
        return KeyProbe(KeyVerdict.UNAVAILABLE, said)
    return KeyProbe(KeyVerdict.UNEXPECTED, said)
