"""Routing of API Gateway HTTP API (payload 2.0) events to plain functions.

The API function has seven routes, all declared in template.yaml, so a method and a path
template per route is all it needs. A general-purpose resolver costs the function's cold start
about as much again as the rest of its imports together (measured in `make bench`,
section 1), for features the API does not use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from reelhook.records import field, record

# API Gateway's path parameter syntax, as in template.yaml: /v1/jobs/{id}
_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@record
class Request:
    method: str
    path: str
    path_parameters: dict[str, str]
    headers: Mapping[str, str]  # names lower-cased: HTTP header names are case-insensitive
    query: dict[str, str]
    body: str | None
    is_base64_encoded: bool
    request_context: dict[str, Any] = field(default_factory=dict)

    @property
    def domain_name(self) -> str:
        return str(self.request_context.get("domainName") or "")


Answer = tuple[int, dict[str, Any]]
Endpoint = Callable[[Request], Answer]


def json_response(answer: Answer) -> dict[str, Any]:
    status, body = answer
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body),
            "isBase64Encoded": False}


def _path_regex(template: str) -> re.Pattern[str]:
    parts = _PARAMETER.split(template)
    # split() alternates literal text and parameter names; a parameter is one non-empty segment
    pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(pattern)


class Router:
    def __init__(self, not_found: Answer) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Endpoint]] = []
        self._not_found = not_found

    def route(self, method: str, template: str) -> Callable[[Endpoint], Endpoint]:
        def register(endpoint: Endpoint) -> Endpoint:
            self._routes.append((method.upper(), _path_regex(template), endpoint))
            return endpoint

        return register

    def resolve(self, event: Mapping[str, Any]) -> dict[str, Any]:
        context = event.get("requestContext") or {}
        method = str((context.get("http") or {}).get("method") or "").upper()
        path = str(event.get("rawPath") or (context.get("http") or {}).get("path") or "")
        for route_method, regex, endpoint in self._routes:
            found = regex.fullmatch(path)
            if found is not None and route_method == method:
                request = Request(
                    method=method,
                    path=path,
                    path_parameters=found.groupdict(),
                    headers={str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()},
                    query=dict(event.get("queryStringParameters") or {}),
                    body=event.get("body"),
                    is_base64_encoded=bool(event.get("isBase64Encoded")),
                    request_context=dict(context),
                )
                return json_response(endpoint(request))
        return json_response(self._not_found)
