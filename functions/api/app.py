"""Client API: POST /v1/jobs, GET /v1/jobs/{id}, GET /v1/models, GET /v1/providers, GET /v1/openapi.json."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from reelhook import http_api, owners, request_limits
from reelhook.config import settings
from reelhook.errors import error_body

logger = Logger()
app = APIGatewayHttpResolver()


def _json(answer: tuple[int, dict[str, Any]]) -> Response:
    status, body = answer
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def _callback_base_url() -> str:
    configured = settings().callback_base_url
    if configured:
        return configured
    context = app.current_event.request_context
    return f"https://{context.domain_name}"


def _owner() -> str:
    return owners.caller(app.current_event.raw_event.get("requestContext"))


@app.post("/v1/jobs")
def create_job() -> Response:
    event = app.current_event
    try:  # not event.decoded_body: it raises on bad base64 and on bytes that are not UTF-8
        body = request_limits.body_bytes(event.body, event.is_base64_encoded)
    except request_limits.UndecodableBody as exc:
        return _json((400, error_body("invalid_body", str(exc))))
    return _json(http_api.create_job(body, event.headers.get("idempotency-key"), _callback_base_url(),
                                     content_type=event.headers.get("content-type"), owner=_owner()))


@app.get("/v1/jobs")
def list_jobs() -> Response:
    return _json(http_api.list_jobs(_owner(), app.current_event.query_string_parameters))


@app.get("/v1/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    return _json(http_api.get_job(job_id, _owner()))


@app.post("/v1/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> Response:
    return _json(http_api.cancel_job(job_id, _owner()))


@app.get("/v1/models")
def list_models() -> Response:
    return _json(http_api.list_models())


@app.get("/v1/providers")
def list_providers() -> Response:
    return _json(http_api.list_providers())


@app.get("/v1/openapi.json")
def openapi() -> Response:
    from reelhook.openapi import document  # built on first request; most cold starts never need it

    return _json((200, document()))


@app.not_found
def not_found(_exc: Exception) -> Response:
    return _json((404, {"error": {"code": "not_found", "message": "no such route"}}))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
