"""The OpenAPI 3.1 document served at ``GET /v1/openapi.json``, built from the API models."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field

from reelhook import __version__
from reelhook.api_models import JobRequest

# The answers' shapes exist only to be documented (the handlers build plain dicts in
# views.public_job), so they live here and load only when the document is asked for.


class OutputOut(BaseModel):
    s3_uri: str
    bytes: int
    sha256: str
    content_type: str
    download_url: str | None = None


class ErrorOut(BaseModel):
    code: str
    message: str


class JobOut(BaseModel):
    id: str
    model: str
    provider: str
    status: Literal["queued", "submitted", "running", "storing", "succeeded", "failed"]
    provider_task_id: str | None = None
    client_reference: str | None = None
    created_at: str
    updated_at: str
    error: ErrorOut | None = None
    outputs: list[OutputOut] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)
    notify_url: str | None = None
    notifications: list[dict[str, Any]] = Field(default_factory=list, description="Each notify_url attempt")

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
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}, "allowed": {}},
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


@cache
def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for model in (JobRequest, JobOut):
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas["ModelCatalog"] = {
        "type": "object",
        "required": ["models"],
        "properties": {"models": {"type": "array", "items": {"type": "object", "required": ["id", "provider"]}}},
    }
    job_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "reelhook",
            "version": __version__,
            "description": "Generate a video with one call; the result is copied into your S3 bucket.",
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
                }
            },
            "/v1/jobs/{id}": {
                "get": {
                    "operationId": "getJob",
                    "summary": "Read a job, with presigned download URLs once stored",
                    "parameters": [job_id],
                    "responses": {"200": _json("JobOut", "The job")} | _errors(404),
                }
            },
            "/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "Every model, with what it accepts",
                    "responses": {"200": _json("ModelCatalog", "The catalogue")},
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
