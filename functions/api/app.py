"""Client API: POST /v1/jobs, GET /v1/jobs, GET /v1/jobs/{id}, POST /v1/jobs/{id}/cancel,
GET /v1/models, GET /v1/providers, GET /v1/openapi.json."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from reelhook import http_api, owners, request_limits
from reelhook.config import settings
from reelhook.errors import error_body
from reelhook.http_router import Answer, Request, Router

logger = Logger()
router = Router(not_found=(404, {"error": {"code": "not_found", "message": "no such route"}}))


def _callback_base_url(request: Request) -> str:
    return settings().callback_base_url or f"https://{request.domain_name}"


def _owner(request: Request) -> str:
    return owners.caller(request.request_context)


@router.route("POST", "/v1/jobs")
def create_job(request: Request) -> Answer:
    try:
        body = request_limits.body_bytes(request.body, request.is_base64_encoded)
    except request_limits.UndecodableBody as exc:
        return 400, error_body("invalid_body", str(exc))
    return http_api.create_job(body, request.headers.get("idempotency-key"), _callback_base_url(request),
                               content_type=request.headers.get("content-type"), owner=_owner(request))


@router.route("GET", "/v1/jobs")
def list_jobs(request: Request) -> Answer:
    return http_api.list_jobs(_owner(request), request.query or None)


@router.route("GET", "/v1/jobs/{id}")
def get_job(request: Request) -> Answer:
    return http_api.get_job(request.path_parameters["id"], _owner(request))


@router.route("POST", "/v1/jobs/{id}/cancel")
def cancel_job(request: Request) -> Answer:
    return http_api.cancel_job(request.path_parameters["id"], _owner(request))


@router.route("GET", "/v1/models")
def list_models(_request: Request) -> Answer:
    return http_api.list_models()


@router.route("GET", "/v1/providers")
def list_providers(_request: Request) -> Answer:
    return http_api.list_providers()


@router.route("GET", "/v1/openapi.json")
def openapi(_request: Request) -> Answer:
    from reelhook.openapi import document  # built on first request; most cold starts never need it

    return 200, document()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return router.resolve(event)
