"""The API's error body, shared by the HTTP API and the S3 inbox (no pydantic needed to answer)."""

from __future__ import annotations

from typing import Any

from reelhook.spec import FieldError

MAX_FIELD_ERRORS = 50  # a body of a million unknown fields gets a short answer, not a 6 MB one
MAX_FIELD_NAME = 200


def error_body(code: str, message: str, fields: list[FieldError] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if fields:
        shown = []
        for error in fields[:MAX_FIELD_ERRORS]:
            entry = error.as_dict()
            if len(entry["field"]) > MAX_FIELD_NAME:
                entry["field"] = entry["field"][:MAX_FIELD_NAME] + "…"
            shown.append(entry)
        body["error"]["fields"] = shown
        if len(fields) > MAX_FIELD_ERRORS:
            body["error"]["fields_omitted"] = len(fields) - MAX_FIELD_ERRORS
    return body
