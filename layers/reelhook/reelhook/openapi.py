"""The OpenAPI 3.1 document served at ``GET /v1/openapi.json``, built from the API models."""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field

from reelhook import __version__
from reelhook.api_models import JobRequest

# The answers' shapes exist only to be documented (the handlers build plain dicts in
# views.public_job), so they live here and load only when the document is asked for.


class AudioOut(BaseModel):
    codec: str
    channels: int | None = None
    sample_rate: int | None = None


class MediaOut(BaseModel):
    """What the stored video is, as parsed and decoded by reelhook (PyAV)."""

    container: Literal["mp4", "webm"]
    duration_s: float | None = None
    width: int
    height: int
    fps: float | None = None
    video_codec: str
    audio: AudioOut | None = Field(default=None, description="The first audio track; null when there is none")


class OutputOut(BaseModel):
    s3_uri: str
    bytes: int
    sha256: str
    content_type: str
    version_id: str | None = Field(default=None, description="The S3 object version that was hashed and checked; "
                                   "download_url is presigned for it")
    media: MediaOut | None = None
    download_url: str | None = None
    poster_url: str | None = Field(default=None, description="Presigned URL of a JPEG of the first frame")


class ErrorOut(BaseModel):
    code: str = Field(description="e.g. provider_failed, output_expired (the link answered 401/403/404/410 until "
                      "its deadline or the last attempt), output_not_video (it served another content type), "
                      "output_invalid (an empty or short body, or bytes that do not parse and decode as a "
                      "video), output_too_large, output_url_refused, transfer_failed")
    message: str


class RouteOut(BaseModel):
    provider: str
    model: str


class RoutingOut(BaseModel):
    providers: list[str]
    failover: Literal["submit", "any", "none"]


class SkippedRouteOut(BaseModel):
    model: str
    provider: str
    reasons: list[dict[str, Any]]


class AttemptOut(BaseModel):
    provider: str
    model: str
    task_id: str | None = None
    outcome: str = Field(description="pending, submitted, running, completed, succeeded, failed or cancelled "
                         "for the current attempt; rejected, refused, skipped (open circuit) or failed for "
                         "one the job moved on from")
    started_at: str | None = None
    ended_at: str | None = None
    reason: str | None = None


class CancellationOut(BaseModel):
    at: str
    provider_task_may_continue: bool = Field(description="True when a provider task was, or may have been, "
                                             "created: no provider has a cancel endpoint, so it runs on (and may "
                                             "be charged); reelhook ignores what it reports")


class JobOut(BaseModel):
    id: str
    model: str = Field(description="The model asked for: a concrete one, or a logical one (route says which "
                       "concrete model serves it)")
    provider: str
    status: Literal["queued", "submitted", "running", "storing", "succeeded", "failed", "cancelled"]
    provider_task_id: str | None = None
    client_reference: str | None = None
    created_at: str
    updated_at: str
    error: ErrorOut | None = None
    outputs: list[OutputOut] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)
    notify_url: str | None = None
    notifications: list[dict[str, Any]] = Field(default_factory=list, description="Each notify_url attempt")
    progress: int | None = None
    waiting_for: Literal["rate_limit", "provider_concurrency"] | None = None
    submit_outcome: Literal["unknown"] | None = Field(
        default=None, description="unknown: the create request may have made (and may bill) a provider task; "
        "it is never sent again")
    submit_error: str | None = Field(default=None, description="Why the submit outcome is unknown")
    effective: dict[str, Any] | None = Field(
        default=None, description="What the provider was asked: each optional field as sent, else the model's "
        "default (null where no document gives one, or where an input decides it); options nested")
    effective_notes: list[str] | None = Field(default=None, description="Why an effective value is null")
    warnings: list[str] | None = Field(
        default=None, description="Where the delivered video differs from the request (resolution, aspect ratio, "
        "duration, audio); the job still succeeded. Also on its succeeded event")
    request: dict[str, Any] | None = Field(default=None, description="The job as it was asked for")
    route: RouteOut | None = Field(default=None, description="The concrete model the job is on (or was served by)")
    routes: list[str] | None = Field(default=None, description="A logical-model job's routes that can take it, "
                                     "in the order tried")
    routing: RoutingOut | None = None
    routes_skipped: list[SkippedRouteOut] | None = Field(default=None, description="Routes that cannot take the "
                                                         "job as given, with their objections")
    attempts: list[AttemptOut] = Field(default_factory=list, description="Every route tried, the current one last")
    cancellation: CancellationOut | None = None


class JobPageOut(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last")

REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}, "allowed": {},
                                       "route": {"type": "string",
                                                 "description": "For a logical model: the route that objects"}},
                    },
                },
            },
        }
    },
}


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Malformed request", 401: "Not authenticated", 404: "Not found",
            409: "Idempotency-Key reused with a different body", 413: "Body too large (over 256 KiB)",
            415: "The body is declared as something other than JSON",
            422: "The job is not valid for the model; each offending field is named"}
    return {str(code): _json("Error", text[code]) for code in codes}


def defaults_table() -> str:
    """Every model's effective default for every field it takes, as a Markdown table."""
    from reelhook.providers import all_models

    lines = ["| model | field | default when omitted | source |", "|---|---|---|---|"]
    for spec in all_models().values():
        for name in spec.optional_fields():
            default = spec.default(name)
            value = json.dumps(default.value) if default.value is not None else "none documented"
            note = f" ({default.note})" if default.note else ""
            lines.append(f"| `{spec.id}` | `{name}` | {value} | {default.source}{note} |")
        for limit in spec.own_limits:
            lines.append(f"| `{spec.id}` | `{limit.field}` | {limit.limit} {json.dumps(limit.value)} is reelhook's "
                         f"own limit | {limit.reason} |")
    return "\n".join(lines)


DESCRIPTION = """Generate a video with one call; the result is copied into your S3 bucket.

An omitted field means the model's default, and defaults differ per model. Each job records what
was asked of the provider in `effective`. Sources: `document` (the provider's document),
`spec` (Freepik's current OpenAPI spec), `reelhook` (reelhook always sends it), `undocumented`
(nothing is sent and no document says what the provider does). Limits no document gives are
marked as reelhook's own, with the reason.

"""


@cache
def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for model in (JobRequest, JobOut, JobPageOut):
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas["ModelCatalog"] = {
        "type": "object",
        "required": ["models"],
        "properties": {"models": {"type": "array", "items": {
            "type": "object", "required": ["id", "logical"],
            "description": "A concrete model (logical false: one provider, with what it accepts) or a logical "
            "one (logical true: provider-neutral, with its routes)",
            "if": {"properties": {"logical": {"const": False}}},
            "then": {"required": ["id", "provider", "defaults"]},
            "else": {"required": ["id", "routes"]},
            "properties": {
                "logical": {"type": "boolean"},
                "routes": {"type": "array", "items": {
                    "type": "object", "required": ["model", "provider"],
                    "properties": {"model": {"type": "string"}, "provider": {"type": "string"},
                                   "mode": {"type": ["string", "null"]}, "title": {"type": "string"}}}},
                "defaults": {
                    "type": "object",
                    "description": "Per optional field (options as options.<name>): what the provider uses when "
                    "the job omits it, and who says so",
                    "additionalProperties": {
                        "type": "object", "required": ["value", "source"],
                        "properties": {"value": {}, "source": {"enum": ["document", "spec", "reelhook",
                                                                         "undocumented"]},
                                       "note": {"type": "string"}},
                    },
                },
                "reelhook_limits": {
                    "type": "array", "description": "Limits no provider document gives, enforced by reelhook",
                    "items": {"type": "object", "required": ["field", "limit", "value", "reason"]},
                },
            },
        }}},
    }
    schemas["ProviderHealth"] = {
        "type": "object", "required": ["providers"],
        "properties": {"providers": {"type": "array", "items": {
            "type": "object", "required": ["name", "circuit", "rate", "in_flight"],
            "properties": {
                "name": {"type": "string"},
                "circuit": {"type": "object", "required": ["state", "consecutive_failures"], "properties": {
                    "state": {"enum": ["closed", "open", "half_open"]},
                    "consecutive_failures": {"type": "integer"},
                    "open_until": {"type": "number", "description": "Epoch seconds"},
                    "opened_at": {"type": "number"}}},
                "rate": {"type": "object", "properties": {
                    "requests_per_second": {"type": ["number", "null"]}, "burst": {"type": "integer"},
                    "booked_ahead_seconds": {"type": "number",
                                             "description": "How far ahead request slots are taken; 0: free now"}}},
                "in_flight": {"type": "object", "properties": {
                    "tasks": {"type": "integer"}, "cap": {"type": ["integer", "null"]}}},
            }}}},
    }
    job_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
    from reelhook.providers import provider_names
    from reelhook.services.lifecycle import DEFAULT_PAGE, MAX_FILTER_LENGTH, MAX_PAGE
    from reelhook.states import Status

    def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}

    text = {"type": "string", "minLength": 1, "maxLength": MAX_FILTER_LENGTH}
    instant = {"type": "string", "format": "date-time"}
    list_parameters = [
        query("status", "Only jobs in this status", {"enum": [s.value for s in Status]}),
        query("model", "Only jobs that asked for this model (as asked: a logical id matches its jobs)", text),
        query("provider", "Only jobs on (or served by) this provider", {"enum": sorted(provider_names())}),
        query("client_reference", "Only jobs with this client_reference", text),
        query("created_after", "Created at or after this instant (with a timezone)", instant),
        query("created_before", "Created at or before this instant (with a timezone)", instant),
        query("limit", f"Jobs per page (default {DEFAULT_PAGE})", {"type": "integer", "minimum": 1,
                                                                   "maximum": MAX_PAGE}),
        query("cursor", "next_cursor of the previous page, as given", {"type": "string", "maxLength": 300}),
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "reelhook",
            "version": __version__,
            "description": DESCRIPTION + defaults_table(),
        },
        "paths": {
            "/v1/jobs": {
                "post": {
                    "operationId": "createJob",
                    "summary": "Create a video job",
                    "parameters": [{
                        "name": "Idempotency-Key", "in": "header", "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
                        "description": "Same key and body: the same job, no second provider call.",
                    }],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": REF.format(model="JobRequest")}}},
                    },
                    "responses": {"202": _json("JobOut", "The job was accepted")} | _errors(400, 409, 413, 415, 422),
                },
                "get": {
                    "operationId": "listJobs",
                    "summary": "The caller's jobs, newest first, one page at a time",
                    "description": "Jobs belong to the identity that created them (the IAM principal, an assumed "
                    "role without its session name, or the JWT subject); each caller lists its own. A page may "
                    "hold fewer than limit jobs when filters match few; follow next_cursor until it is null.",
                    "parameters": list_parameters,
                    "responses": {"200": _json("JobPageOut", "One page of jobs")} | _errors(400, 422),
                },
            },
            "/v1/jobs/{id}": {
                "get": {
                    "operationId": "getJob",
                    "summary": "Read a job, with presigned download URLs once stored",
                    "parameters": [job_id],
                    "responses": {"200": _json("JobOut", "The job")} | _errors(404),
                }
            },
            "/v1/jobs/{id}/cancel": {
                "post": {
                    "operationId": "cancelJob",
                    "summary": "Cancel an unfinished job: it ends cancelled, nothing more is stored",
                    "description": "No provider has a cancel endpoint: a task already created runs on at the "
                    "provider (cancellation.provider_task_may_continue), and its late status reports are "
                    "acknowledged and ignored. Cancelling a cancelled job answers as the first cancel did.",
                    "parameters": [job_id],
                    "responses": {"200": _json("JobOut", "The cancelled job")} | {
                        "404": _json("Error", "Not found"),
                        "409": _json("Error", "The job already finished (code job_finished)")},
                }
            },
            "/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "Every model, with what it accepts",
                    "responses": {"200": _json("ModelCatalog", "The catalogue")},
                }
            },
            "/v1/providers": {
                "get": {
                    "operationId": "listProviders",
                    "summary": "Each provider's circuit, request budget and tasks in flight",
                    "responses": {"200": _json("ProviderHealth", "The providers")},
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI document",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
        },
        "components": {"schemas": schemas},
    }
