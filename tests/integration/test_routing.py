"""Logical models: validation against every route, failover in the submit consumer, circuits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Context, api_event, reset_caches, table_items
from tests.integration.test_handlers import call, create, freepik_body, webhook_event

VEO = "veo-3.1/reference-to-video"
ONE_IMAGE = {"model": VEO, "prompt": "a cat on a skateboard", "reference_images": ["https://example.com/cat.png"]}
TWO_IMAGES = ONE_IMAGE | {"reference_images": ["https://example.com/a.png", "https://example.com/b.png"]}


@pytest.fixture
def order(monkeypatch):
    monkeypatch.setenv("ROUTING_PROVIDER_ORDER", "freepik,aihubmax,uniall")
    reset_caches()


def job(aws, job_id: str) -> dict[str, Any]:
    [item] = [i for i in table_items(aws) if i["pk"] == f"job#{job_id}"]
    return item


def get(handlers, job_id: str) -> dict[str, Any]:
    status, body = call(handlers["api"], api_event("GET", f"/v1/jobs/{job_id}", route="GET /v1/jobs/{id}",
                                                   path_parameters={"id": job_id}))
    assert status == 200
    return body


def submit_consumer(handlers, job_id: str, attempt: int = 1) -> None:
    """Hand the submit consumer the job's message, as the queue does once its delay is over."""
    record = {"messageId": f"m{attempt}", "body": json.dumps({"job_id": job_id, "attempt": attempt})}
    assert handlers["submit"]({"Records": [record]}, Context()) == {"batchItemFailures": []}


def creates(sandbox, provider: str) -> int:
    return sum(1 for r in sandbox.request_log if r.method == "POST" and r.path.startswith(f"/{provider}/"))


def test_the_catalogue_lists_logical_models_with_their_routes_in_order(aws, handlers, order):
    status, body = call(handlers["api"], api_event("GET", "/v1/models"))
    assert status == 200
    entries = {entry["id"]: entry for entry in body["models"]}
    veo = entries[VEO]
    assert veo["logical"] is True
    assert [r["provider"] for r in veo["routes"]] == ["freepik", "aihubmax", "uniall", "uniall", "uniall"]
    assert {r["mode"] for r in veo["routes"] if r["provider"] == "uniall"} == {"multi-image-reference"}
    assert [r["model"] for r in entries["veo-3.1-fast/reference-to-video"]["routes"]] == [
        "aihubmax/veo-3.1-fast-reference-to-video"]
    assert entries["freepik/veo-3-1-reference-to-video"]["logical"] is False


def test_a_logical_job_goes_to_the_first_route_that_takes_it_and_records_the_others(aws, sandbox, handlers, order):
    # duration 8: Freepik's Veo takes no duration; one image: UniAll's reference mode needs two.
    status, body = create(handlers, ONE_IMAGE | {"duration": 8})
    assert status == 202, body
    assert body["model"] == VEO and body["provider"] == "aihubmax"
    assert body["route"] == {"provider": "aihubmax", "model": "aihubmax/veo-3.1-reference-to-video"}
    assert body["request"]["model"] == VEO
    skipped = {s["model"]: s for s in body["routes_skipped"]}
    assert skipped["freepik/veo-3-1-reference-to-video"]["reasons"][0]["field"] == "duration"
    assert skipped["uniall/veo3.1-video-720p"]["reasons"][0]["field"] == "reference_images"
    assert body["routes"] == ["aihubmax/veo-3.1-reference-to-video"]
    assert [(a["provider"], a["outcome"]) for a in body["attempts"]] == [("aihubmax", "submitted")]
    assert creates(sandbox, "aihubmax") == 1 and creates(sandbox, "freepik") == 0


def test_a_job_no_route_takes_is_one_422_naming_each_routes_objections(aws, sandbox, handlers, order):
    status, body = create(handlers, ONE_IMAGE | {"duration": 6})
    assert status == 422
    routes = {f["route"] for f in body["error"]["fields"]}
    assert routes == {"freepik/veo-3-1-reference-to-video", "aihubmax/veo-3.1-reference-to-video",
                      "uniall/veo3.1-video-720p", "uniall/veo3.1-video-1080p", "uniall/veo3.1-video-4k"}
    assert not [i for i in table_items(aws) if i["pk"].startswith("job#")]
    assert sandbox.request_log == []


def test_routing_is_checked(aws, handlers, order):
    status, body = create(handlers, ONE_IMAGE | {"routing": {"providers": ["freepick"]}})
    assert status == 422
    [error] = body["error"]["fields"]
    assert error["field"] == "routing.providers[0]" and "did you mean 'freepik'" in error["message"]
    status, body = create(handlers, ONE_IMAGE | {"routing": {"failover": "sometimes"}})
    assert status == 422 and body["error"]["fields"][0]["field"] == "routing.failover"
    concrete = ONE_IMAGE | {"model": "freepik/veo-3-1-reference-to-video", "routing": {"failover": "any"}}
    status, body = create(handlers, concrete)
    assert status == 422 and body["error"]["fields"][0]["field"] == "routing"


def test_a_job_keeps_to_the_providers_it_names(aws, sandbox, handlers, order):
    status, body = create(handlers, TWO_IMAGES | {"routing": {"providers": ["uniall", "freepik"]}})
    assert status == 202
    assert body["provider"] == "uniall" and "aihubmax/veo-3.1-reference-to-video" not in body["routes"]
    assert body["routes"][-1] == "freepik/veo-3-1-reference-to-video"


def test_a_refused_submit_moves_the_job_to_its_next_route(aws, sandbox, handlers, order):
    sandbox.config.faults.fail_submits_for["freepik"] = [402]
    status, body = create(handlers, ONE_IMAGE)
    assert status == 202
    # The API's inline send was refused for credit: the job is queued again, on AIHubMax.
    assert body["status"] == "queued" and body["provider"] == "aihubmax"
    [first, current] = body["attempts"]
    assert (first["provider"], first["outcome"], first["task_id"]) == ("freepik", "rejected", None)
    assert first["reason"].startswith("HTTP 402")
    assert current == current | {"provider": "aihubmax", "outcome": "pending"}
    submit_consumer(handlers, body["id"])
    now = get(handlers, body["id"])
    assert now["status"] == "submitted" and now["route"]["model"] == "aihubmax/veo-3.1-reference-to-video"
    assert creates(sandbox, "freepik") == 1 and creates(sandbox, "aihubmax") == 1
    assert [e.get("source") for e in now["events"]] == ["api", "failover", "submit"]


def test_without_failover_a_refused_submit_fails_the_job(aws, sandbox, handlers, order):
    sandbox.config.faults.fail_submits_for["freepik"] = [402]
    status, body = create(handlers, ONE_IMAGE | {"routing": {"failover": "none"}})
    assert status == 202 and body["status"] == "failed" and body["error"]["code"] == "provider_rejected"
    assert creates(sandbox, "aihubmax") == 0


def test_429s_that_go_on_move_the_job_on_after_the_configured_refusals(aws, sandbox, handlers, order, monkeypatch):
    monkeypatch.setenv("REFUSALS_BEFORE_FAILOVER", "3")
    reset_caches()
    sandbox.config.faults.fail_submits_for["freepik"] = [429, 429, 429]
    status, body = create(handlers, ONE_IMAGE)
    assert status == 202 and body["status"] == "queued" and body["provider"] == "freepik"
    assert body["waiting_for"] == "rate_limit"
    submit_consumer(handlers, body["id"], attempt=1)
    assert job(aws, body["id"])["provider"] == "freepik"  # two refusals: still Freepik's
    submit_consumer(handlers, body["id"], attempt=2)
    moved = get(handlers, body["id"])
    assert moved["provider"] == "aihubmax" and moved["attempts"][0]["outcome"] == "refused"
    submit_consumer(handlers, body["id"], attempt=3)
    assert get(handlers, body["id"])["status"] == "submitted"
    assert creates(sandbox, "freepik") == 3 and creates(sandbox, "aihubmax") == 1


def test_no_failover_after_an_unknown_outcome(aws, sandbox, handlers, order):
    sandbox.config.faults.fail_submits_for["freepik"] = [500]
    status, body = create(handlers, ONE_IMAGE | {"routing": {"failover": "any"}})
    assert status == 202
    assert body["provider"] == "freepik" and body["submit_outcome"] == "unknown"
    submit_consumer(handlers, body["id"])  # a redelivered message must not send it anywhere
    assert creates(sandbox, "freepik") == 1 and creates(sandbox, "aihubmax") == 0
    assert len(get(handlers, body["id"])["attempts"]) == 1


def test_with_any_a_failed_task_moves_the_job_and_the_old_tasks_news_changes_nothing(aws, sandbox, handlers, order):
    secret = sandbox.config.freepik_webhook_secret
    status, body = create(handlers, ONE_IMAGE | {"routing": {"failover": "any"}})
    assert status == 202 and body["status"] == "submitted"
    task = sandbox.tasks[body["provider_task_id"]]
    failed = webhook_event(task, freepik_body(task, "FAILED"), secret=secret)
    assert call(handlers["callback"], failed)[1]["status"] == "queued"
    moved = get(handlers, body["id"])
    assert moved["provider"] == "aihubmax" and "provider_task_id" not in moved
    assert moved["attempts"][0] | {"provider": "freepik", "task_id": task.task_id, "outcome": "failed"} == \
        moved["attempts"][0]
    submit_consumer(handlers, body["id"])
    # Freepik's task says it completed after all: the job is AIHubMax's now, so nothing moves.
    late = webhook_event(task, freepik_body(task, "COMPLETED", ["https://cdn.example/v.mp4"]), secret=secret)
    assert call(handlers["callback"], late)[1]["applied"] is False
    after = job(aws, body["id"])
    assert after["status"] == "submitted" and after["provider"] == "aihubmax" and "result_urls" not in after


def test_with_submit_a_failed_task_fails_the_job(aws, sandbox, handlers, order):
    secret = sandbox.config.freepik_webhook_secret
    _, body = create(handlers, ONE_IMAGE)
    task = sandbox.tasks[body["provider_task_id"]]
    answer = call(handlers["callback"], webhook_event(task, freepik_body(task, "FAILED"), secret=secret))
    assert answer[1]["status"] == "failed"
    assert creates(sandbox, "aihubmax") == 0


def test_the_circuit_opens_after_consecutive_failures_and_a_probe_closes_it(aws, sandbox, handlers, order,
                                                                            monkeypatch):
    from reelhook import clock
    from reelhook.adapters import circuit

    monkeypatch.setenv("CIRCUIT_FAILURE_THRESHOLD", "2")
    monkeypatch.setenv("CIRCUIT_COOLDOWN_SECONDS", "30")
    reset_caches()
    now = [clock.now()]
    monkeypatch.setattr(clock, "now", lambda: now[0])
    sandbox.config.faults.fail_submits_for["freepik"] = [402, 402]
    for _ in range(2):
        assert create(handlers, ONE_IMAGE)[1]["provider"] == "aihubmax"
    assert circuit.read("freepik", now[0], fresh=True).state(now[0]) == "open"
    # Open: a new job skips Freepik without asking it.
    _, body = create(handlers, ONE_IMAGE)
    assert body["provider"] == "aihubmax" and body["attempts"][0]["outcome"] == "skipped"
    assert creates(sandbox, "freepik") == 2
    # After the cool-down one job probes Freepik; it answers, and the circuit closes.
    now[0] += 31
    circuit.forget()
    _, body = create(handlers, ONE_IMAGE)
    assert body["provider"] == "freepik" and body["status"] == "submitted"
    state = circuit.read("freepik", now[0], fresh=True)
    assert state.state(now[0]) == "closed" and state.failures == 0


def test_a_concrete_job_served_at_once_costs_no_circuit_request(aws, sandbox, handlers):
    from reelhook.adapters.aws import client

    calls: list[str] = []
    client("dynamodb").meta.events.register("before-call.dynamodb.*",
                                            lambda model, **_: calls.append(model.name))
    status, body = create(handlers, ONE_IMAGE | {"model": "freepik/veo-3-1-reference-to-video"})
    assert status == 202 and body["status"] == "submitted"
    assert "GetItem" not in calls
    assert not [i for i in table_items(aws) if i["pk"].endswith("#circuit")]
