"""Shared fixtures: AWS via moto (in-process) built from template.yaml, and the provider sandbox."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from reelhook_local.aws_resources import StackResources, create_stack_resources, template_env
from reelhook_local.sandbox import ProviderSandbox, SandboxConfig
from reelhook_local.stack import LocalStack

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1"}


def reset_caches() -> None:
    LocalStack._reset_caches()


@pytest.fixture
def sandbox() -> Iterator[ProviderSandbox]:
    # No clock: tests move tasks on with sandbox.advance() / force_status().
    with ProviderSandbox(SandboxConfig(step_seconds=None)) as running:
        yield running


@contextmanager
def moto_stack(mp: pytest.MonkeyPatch, sandbox: ProviderSandbox) -> Iterator[StackResources]:
    """moto in-process with the template's table, bucket, queues and secret; env as deployed."""
    from moto import mock_aws

    mp.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in AWS_ENV.items():
        mp.setenv(name, value)
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        config = sandbox.config
        resources = create_stack_resources(session, secret_values={
            "callback_token_key": secrets.token_urlsafe(48),
            "freepik_api_key": config.freepik_api_key,
            "freepik_webhook_secret": config.freepik_webhook_secret,
            "uniall_api_key": config.uniall_api_key,
            "aihubmax_api_key": config.aihubmax_api_key,
        }, visibility_timeout=1)
        env = template_env(resources) | {
            "FREEPIK_BASE_URL": sandbox.base_url("freepik"),
            "UNIALL_BASE_URL": sandbox.base_url("uniall"),
            "AIHUBMAX_BASE_URL": sandbox.base_url("aihubmax"),
            "CALLBACK_BASE_URL": "http://127.0.0.1:9",  # nothing listens: tests deliver webhooks themselves
            "REELHOOK_ALLOW_INSECURE_FETCH": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        for name, value in env.items():
            mp.setenv(name, value)
        reset_caches()
        try:
            yield resources
        finally:
            reset_caches()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, sandbox: ProviderSandbox) -> Iterator[StackResources]:
    with moto_stack(monkeypatch, sandbox) as resources:
        yield resources


def table_items(resources: StackResources) -> list[dict[str, Any]]:
    from reelhook.adapters.jobs_table import from_dynamo

    client = boto3.client("dynamodb")
    return [from_dynamo(i) for i in client.scan(TableName=resources.table_name)["Items"]]


def queue_messages(resources: StackResources, url: str | None = None) -> list[dict[str, Any]]:
    answer = boto3.client("sqs").receive_message(QueueUrl=url or resources.queue_url, MaxNumberOfMessages=10,
                                                 AttributeNames=["All"], WaitTimeSeconds=0)
    return answer.get("Messages", [])


def api_event(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              path_parameters: dict[str, str] | None = None, query: dict[str, str] | None = None,
              route: str | None = None) -> dict[str, Any]:
    raw = body if isinstance(body, str | None) else json.dumps(body)
    return {
        "version": "2.0",
        "routeKey": route or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"content-type": "application/json", "host": "api.example.com"} | (headers or {}),
        "queryStringParameters": query,
        "pathParameters": path_parameters,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9",
                     "userAgent": "pytest"},
            "requestId": "r1", "routeKey": route or f"{method} {path}", "stage": "$default",
            "time": "22/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
        },
        "body": raw,
        "isBase64Encoded": False,
    }


class Context:
    function_name = "test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30000


@pytest.fixture
def dynamodb_calls(aws: StackResources) -> Iterator[list[str]]:
    """The name of every DynamoDB operation the handlers call during the test."""
    from reelhook.adapters.aws import client

    calls: list[str] = []

    def seen(model: Any, **_: Any) -> None:
        calls.append(model.name)

    events = client("dynamodb").meta.events
    events.register("before-call.dynamodb.*", seen)
    yield calls
    events.unregister("before-call.dynamodb.*", seen)  # the client outlives the test


@pytest.fixture(scope="session")
def handlers() -> dict[str, Any]:
    from reelhook_local.front import load_handler
    from reelhook_local.template import functions

    # Powertools reads these at import, as it does from the function's environment in Lambda.
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "reelhook")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "reelhook")

    return {fid.removesuffix("Function").lower(): load_handler(fn) for fid, fn in functions().items()}


