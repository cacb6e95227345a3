"""The API's error body, shared by the HTTP API and the S3 inbox (no pydantic needed to answer)."""

from __future__ import annotations

from typing import Any

from reelhook.spec import FieldError


def error_body(code: str, message: str, fields: list[FieldError] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = [f.as_dict() for f in fields]
    return body
