"""reelhook.http_router: HTTP API (payload 2.0) events to the API's functions."""

from __future__ import annotations

import json
from typing import Any

from reelhook.http_router import Request, Router


def event(method: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"version": "2.0", "rawPath": path, "requestContext": {"http": {"method": method, "path": path},
                                                                  "domainName": "api.example.test"}} | extra


def router() -> tuple[Router, list[Request]]:
    seen: list[Request] = []
    routes = Router(not_found=(404, {"error": {"code": "not_found"}}))

    @routes.route("GET", "/v1/jobs/{id}")
    def get_job(request: Request) -> tuple[int, dict[str, Any]]:
        seen.append(request)
        return 200, {"id": request.path_parameters["id"]}

    @routes.route("POST", "/v1/jobs/{id}/cancel")
    def cancel_job(request: Request) -> tuple[int, dict[str, Any]]:
        seen.append(request)
        return 202, {"cancelled": request.path_parameters["id"]}

    return routes, seen


def test_a_path_template_yields_its_parameters_and_a_json_answer() -> None:
    routes, seen = router()
    answer = routes.resolve(event("GET", "/v1/jobs/job_1"))
    assert answer == {"statusCode": 200, "headers": {"content-type": "application/json"},
                      "body": json.dumps({"id": "job_1"}), "isBase64Encoded": False}
    assert seen[0].path_parameters == {"id": "job_1"} and seen[0].domain_name == "api.example.test"
    assert json.loads(routes.resolve(event("POST", "/v1/jobs/job_2/cancel"))["body"]) == {"cancelled": "job_2"}


def test_a_parameter_is_one_path_segment_and_the_whole_path_must_match() -> None:
    routes, seen = router()
    for path in ("/v1/jobs/a/b", "/v1/jobs/", "/v1/jobs/job_1/", "/x/v1/jobs/job_1", "/v1/jobs/job_1/cancel/more"):
        assert routes.resolve(event("GET", path))["statusCode"] == 404, path
    assert not seen


def test_the_method_must_match_the_route() -> None:
    routes, seen = router()
    assert routes.resolve(event("POST", "/v1/jobs/job_1"))["statusCode"] == 404
    assert routes.resolve(event("GET", "/v1/jobs/job_1/cancel"))["statusCode"] == 404
    assert routes.resolve(event("get", "/v1/jobs/job_1"))["statusCode"] == 200
    assert len(seen) == 1


def test_header_names_are_case_insensitive_and_the_rest_is_passed_on() -> None:
    routes, seen = router()
    routes.resolve(event("GET", "/v1/jobs/j", headers={"Idempotency-Key": "k1", "content-type": "application/json"},
                         queryStringParameters={"limit": "5"}, body="e30=", isBase64Encoded=True))
    request = seen[0]
    assert request.headers == {"idempotency-key": "k1", "content-type": "application/json"}
    assert request.query == {"limit": "5"} and request.body == "e30=" and request.is_base64_encoded


def test_an_event_without_method_or_path_is_not_found() -> None:
    routes, seen = router()
    assert routes.resolve({})["statusCode"] == 404
    assert routes.resolve({"rawPath": "/v1/jobs/j"})["statusCode"] == 404
    assert not seen
