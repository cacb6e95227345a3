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


def test_a_concrete_job_served_at_once_costs_no_circuit_request(aws, sandbox, handlers, dynamodb_calls):
    calls = dynamodb_calls
    status, body = create(handlers, ONE_IMAGE | {"model": "freepik/veo-3-1-reference-to-video"})
    assert status == 202 and body["status"] == "submitted"
    assert "GetItem" not in calls
    [budget] = [i for i in table_items(aws) if i["pk"] == "gov#freepik#rate"]
    assert not {"failures", "open_until", "probe_until"} & budget.keys()  # nothing written for the circuit


def test_a_logical_job_served_by_its_first_route_costs_no_circuit_request(aws, sandbox, handlers, order,
                                                                           dynamodb_calls):
    """The slot reservation answers with the budget item, which holds the circuit: a process
    that has never read the circuit (a cold Lambda) still sends without a GetItem for it."""
    from reelhook.adapters import circuit

    circuit.forget()
    calls = dynamodb_calls
    status, body = create(handlers, ONE_IMAGE)
    assert status == 202 and (body["provider"], body["status"]) == ("freepik", "submitted")
    assert "GetItem" not in calls and "BatchGetItem" not in calls


# -- in-flight places follow the job's current route ----------------------------------------------

FREEPIK_VEO = ONE_IMAGE | {"model": "freepik/veo-3-1-reference-to-video"}


def test_the_sweep_frees_the_place_a_moved_job_still_holds_at_its_first_provider(aws, sandbox, handlers, order,
                                                                                 monkeypatch):
    """A job that moved from Freepik to AIHubMax counts against AIHubMax only, even when its
    Freepik place was not given back (a lost release, or a consumer that read it before it moved)."""
    from reelhook.adapters import governance
    from reelhook.services.polling import dispatch_due

    monkeypatch.setenv("FREEPIK_MAX_IN_FLIGHT", "1")
    monkeypatch.setenv("AIHUBMAX_MAX_IN_FLIGHT", "5")
    reset_caches()
    sandbox.config.faults.fail_submits_for["freepik"] = [402]
    _, moved = create(handlers, ONE_IMAGE)
    assert moved["provider"] == "aihubmax"
    submit_consumer(handlers, moved["id"])
    assert governance.in_flight("aihubmax") == {moved["id"]}
    governance.acquire_in_flight("freepik", moved["id"], 1)  # the place that was never given back
    _, waiting = create(handlers, FREEPIK_VEO)
    assert (waiting["status"], waiting["waiting_for"]) == ("queued", "provider_concurrency")

    outcomes = dispatch_due(seconds=5)

    assert outcomes["in_flight_released"] == 1
    assert governance.in_flight("freepik") == set()
    assert governance.in_flight("aihubmax") == {moved["id"]}  # its task there is still running
    submit_consumer(handlers, waiting["id"])
    assert get(handlers, waiting["id"])["status"] == "submitted"


def test_a_failover_whose_release_fails_still_sends_the_job_on_at_once(aws, sandbox, handlers, order, monkeypatch):
    import boto3

    from reelhook.adapters import governance

    monkeypatch.setenv("FREEPIK_MAX_IN_FLIGHT", "1")
    reset_caches()

    def unreachable(provider: str, job_id: str) -> None:
        raise RuntimeError("ProvisionedThroughputExceededException")

    monkeypatch.setattr(governance, "release_in_flight", unreachable)
    sandbox.config.faults.fail_submits_for["freepik"] = [402]
    _, moved = create(handlers, ONE_IMAGE)
    assert moved["provider"] == "aihubmax"
    # Its next route's message is queued now, not left for the reconciler; the sweep frees the place.
    [message] = boto3.client("sqs").receive_message(QueueUrl=aws.submit_queue_url).get("Messages", [])
    assert json.loads(message["Body"])["job_id"] == moved["id"]


def test_a_consumer_that_read_the_job_before_it_moved_neither_sends_it_nor_keeps_a_place(aws, sandbox, handlers,
                                                                                        order, monkeypatch):
    """Two submit messages for one job (SQS redelivery, or the reconciler's): one moves it on, the
    other, holding the job as it was, must not send it to the provider it left."""
    import time

    from reelhook.adapters import governance
    from reelhook.adapters.jobs_table import JobStore
    from reelhook.config import settings
    from reelhook.routing import job_spec
    from reelhook.services import submit

    monkeypatch.setenv("FREEPIK_REQUESTS_PER_SECOND", "0.02")  # the logical job waits for its slot
    monkeypatch.setenv("FREEPIK_BURST", "1")
    monkeypatch.setenv("FREEPIK_MAX_IN_FLIGHT", "5")
    monkeypatch.setenv("AIHUBMAX_MAX_IN_FLIGHT", "5")
    reset_caches()
    assert create(handlers, FREEPIK_VEO)[1]["status"] == "submitted"  # spends the burst
    _, queued = create(handlers, ONE_IMAGE)
    assert (queued["status"], queued["provider"], queued["waiting_for"]) == ("queued", "freepik", "rate_limit")
    job_id = queued["id"]
    stale = JobStore().get(job_id, consistent=True)
    # The first message comes at its slot; Freepik is out of credit, so the job moves on.
    sandbox.config.faults.fail_submits_for["freepik"] = [402]
    record = {"messageId": "m1", "body": json.dumps({"job_id": job_id, "slot_at": time.time(), "attempt": 1})}
    assert handlers["submit"]({"Records": [record]}, Context()) == {"batchItemFailures": []}
    assert job(aws, job_id)["provider"] == "aihubmax"
    assert job_id not in governance.in_flight("freepik")

    # The second consumer read the job while it was still Freepik's.
    after = submit.dispatch(job_spec(stale), stale, callback_base_url=settings().callback_base_url,
                            store=JobStore(), max_wait=submit.QUEUE_WAIT_SECONDS, slot_at=time.time())

    assert after["provider"] == "aihubmax"
    assert creates(sandbox, "freepik") == 2  # the first job's and the refused one: no third
    assert job_id not in governance.in_flight("freepik")
    item = job(aws, job_id)
    assert item["status"] == "queued" and "submit_started_at" not in item and "provider_task_id" not in item
    submit_consumer(handlers, job_id, attempt=2)
    served = get(handlers, job_id)
    assert served["status"] == "submitted" and served["route"]["provider"] == "aihubmax"
    assert sandbox.tasks[served["provider_task_id"]].provider == "aihubmax"
    assert governance.in_flight("aihubmax") == {job_id}


def test_a_429_retry_after_is_waited_out_not_cut_short_by_the_reconciler(aws, sandbox, handlers, order,
                                                                         monkeypatch):
    """Refusals count towards failover once per provider answer, each after the wait it asked for:
    the reconciler must not put a refused job back on the submit queue before its Retry-After."""
    from reelhook import clock
    from reelhook.config import settings
    from reelhook.services.polling import run_pass

    monkeypatch.setenv("RECONCILE_AFTER_SECONDS", "60")
    reset_caches()
    sandbox.config.faults.retry_after_seconds = 600
    sandbox.config.faults.fail_submits_for["freepik"] = [429, 429, 429]
    _, body = create(handlers, ONE_IMAGE)
    assert (body["status"], body["provider"], body["waiting_for"]) == ("queued", "freepik", "rate_limit")
    refused_at = clock.now()
    # Past the job's first check, well before the provider's Retry-After.
    later = refused_at + settings().reconcile_after_seconds + 60
    assert later < refused_at + 600
    monkeypatch.setattr(clock, "now", lambda: later)

    outcomes = run_pass()

    assert outcomes["submit_requeued"] == 0, outcomes
    item = job(aws, body["id"])
    assert item["next_check_at"] >= refused_at + 600
    assert item["submit_refusals"] == 1 and item["provider"] == "freepik"
