"""A caller's jobs against moto: owners, GET /v1/jobs (the owner-index) and cancelling."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.conftest import Context, api_event, queue_messages
from tests.integration.test_handlers import VEO, call, freepik_body, job_items, sqs_event, webhook_event

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
UNIALL = {"model": "uniall/veo3.1-video-720p", "prompt": "a lighthouse at dusk"}


def as_user(event: dict[str, Any], arn: str | None) -> dict[str, Any]:
    """The event as API Gateway's IAM authorizer hands it over for ``arn``'s signed request."""
    if arn is not None:
        event["requestContext"]["authorizer"] = {"iam": {"userArn": arn, "accountId": "123456789012"}}
    return event


def create(handlers, body, *, user: str | None = ALICE, key: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"idempotency-key": key} if key else {}
    return call(handlers["api"], as_user(api_event("POST", "/v1/jobs", body, headers), user))


def get(handlers, job_id: str, *, user: str | None = ALICE) -> tuple[int, dict[str, Any]]:
    return call(handlers["api"], as_user(api_event("GET", f"/v1/jobs/{job_id}", route="GET /v1/jobs/{id}",
                                                   path_parameters={"id": job_id}), user))


def listing(handlers, *, user: str | None = ALICE, **query: str) -> tuple[int, dict[str, Any]]:
    return call(handlers["api"], as_user(api_event("GET", "/v1/jobs", query=query or None), user))


def cancel(handlers, job_id: str, *, user: str | None = ALICE) -> tuple[int, dict[str, Any]]:
    return call(handlers["api"], as_user(api_event("POST", f"/v1/jobs/{job_id}/cancel",
                                                   route="POST /v1/jobs/{id}/cancel",
                                                   path_parameters={"id": job_id}), user))


def every_page(handlers, *, user: str = ALICE, **query: str) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        status, page = listing(handlers, user=user, **query, **({"cursor": cursor} if cursor else {}))
        assert status == 200, page
        pages.append([job["id"] for job in page["jobs"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


# -- owners --------------------------------------------------------------------------------------


def test_a_job_is_its_creators_alone(aws, sandbox, handlers):
    status, job = create(handlers, VEO)
    assert status == 202
    assert get(handlers, job["id"])[0] == 200
    # Another identity: the job does not exist for it, whatever it asks.
    assert get(handlers, job["id"], user=BOB) == (404, {"error": {"code": "not_found", "message": "no such job"}})
    assert cancel(handlers, job["id"], user=BOB)[0] == 404
    assert listing(handlers, user=BOB) == (200, {"jobs": [], "next_cursor": None})
    assert get(handlers, job["id"], user=None)[0] == 404  # nor for a caller with no identity
    [item] = job_items(aws)
    assert item["owner"] == "iam:123456789012:user/alice" and item["status"] == "submitted"


def test_an_assumed_roles_sessions_are_one_owner(aws, sandbox, handlers):
    first = "arn:aws:sts::123456789012:assumed-role/render-pipeline/session-1"
    status, job = create(handlers, VEO, user=first)
    assert status == 202
    assert get(handlers, job["id"], user="arn:aws:sts::123456789012:assumed-role/render-pipeline/session-2")[0] == 200
    assert get(handlers, job["id"], user="arn:aws:sts::123456789012:assumed-role/other-role/session-1")[0] == 404


def test_idempotency_keys_are_per_owner_and_a_conflict_names_no_job(aws, sandbox, handlers):
    _, alices = create(handlers, VEO, key="order-1")
    _, bobs = create(handlers, VEO, key="order-1", user=BOB)
    assert alices["id"] != bobs["id"]  # Bob's key is his own: he neither gets nor blocks Alice's job
    assert create(handlers, VEO, key="order-1")[1]["id"] == alices["id"]  # a replay is still a replay
    status, conflict = create(handlers, VEO | {"prompt": "another"}, key="order-1", user=BOB)
    assert status == 409 and conflict["error"]["code"] == "idempotency_key_reused"
    assert alices["id"] not in json.dumps(conflict) and bobs["id"] not in json.dumps(conflict)


def test_the_inbox_and_the_api_do_not_share_idempotency_keys(aws, sandbox, handlers):
    from reelhook.services.inbox import idempotency_key, receive_manifest

    manifest_key = "inbox/orders/42.json"
    # An API caller takes the very key the inbox will use for this manifest...
    assert create(handlers, UNIALL, key=idempotency_key(manifest_key))[0] == 202
    boto3.client("s3").put_object(Bucket=aws.bucket_name, Key=manifest_key, Body=json.dumps(VEO).encode())
    outcome = receive_manifest(aws.bucket_name, manifest_key, callback_base_url="https://api.example.com")
    # ...and the manifest is still accepted, as a job of the inbox's own.
    assert outcome.outcome == "accepted", outcome
    owners = {item["id"]: item["owner"] for item in job_items(aws)}
    assert owners[outcome.job_id] == "inbox" and sorted(owners.values()) == ["iam:123456789012:user/alice", "inbox"]


# -- GET /v1/jobs --------------------------------------------------------------------------------


def made(handlers, bodies: list[dict[str, Any]], *, user: str = ALICE) -> list[str]:
    ids = []
    for body in bodies:
        status, job = create(handlers, body, user=user)
        assert status == 202, job
        ids.append(job["id"])
    return ids


def test_listing_is_newest_first_and_pages_cover_every_job_once(aws, sandbox, handlers):
    ids = made(handlers, [UNIALL | {"client_reference": f"r{n}"} for n in range(5)])
    made(handlers, [UNIALL], user=BOB)
    pages = every_page(handlers, limit="2")
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [job for page in pages for job in page] == ids[::-1]
    status, page = listing(handlers, limit="5")
    assert status == 200 and page["next_cursor"] is None and len(page["jobs"]) == 5
    assert page["jobs"][0]["client_reference"] == "r4" and "download_url" not in json.dumps(page)


def test_listing_filters(aws, sandbox, handlers, monkeypatch):
    veo = made(handlers, [VEO | {"client_reference": "batch-a"}])
    logical = made(handlers, [{"model": "veo-3.1/reference-to-video", "prompt": "a fox",
                               "reference_images": ["https://example.com/fox.png"], "client_reference": "batch-a"}])
    uniall = made(handlers, [UNIALL | {"client_reference": "batch-b"}, UNIALL])
    _, cancelled = cancel(handlers, uniall[1])
    assert cancelled["status"] == "cancelled"

    def ids(**query: str) -> list[str]:
        return [job for page in every_page(handlers, limit="1", **query) for job in page]

    assert ids(client_reference="batch-a") == logical + veo
    assert ids(provider="uniall") == uniall[::-1]
    assert ids(model="veo-3.1/reference-to-video") == logical  # the model as asked
    assert ids(model=VEO["model"]) == veo
    assert ids(status="cancelled") == [uniall[1]]
    assert ids(status="submitted", provider="freepik") == logical + veo
    items = {item["id"]: item for item in job_items(aws)}
    middle = items[logical[0]]["created_at"]
    assert ids(created_after=middle) == uniall[::-1] + logical
    assert ids(created_before=middle) == logical + veo
    assert ids(created_after=middle, created_before=middle) == logical
    # Another timezone names the same instant.
    assert ids(created_after="2000-01-01T01:00:00+01:00") == ids()
    assert ids(created_before="2000-01-01T00:00:00Z") == []


@pytest.mark.parametrize(("query", "field"), [
    ({"status": "done"}, "status"),
    ({"provider": "freepick"}, "provider"),
    ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"limit": "²"}, "limit"),
    ({"created_after": "yesterday"}, "created_after"),
    ({"created_after": "2026-12-01T00:00:00"}, "created_after"),  # no timezone: which instant?
    ({"created_after": "2026-12-02T00:00:00Z", "created_before": "2026-12-01T00:00:00Z"}, "created_before"),
    ({"client_reference": "x" * 257}, "client_reference"),
    ({"statsu": "queued"}, "statsu"),
])
def test_a_bad_listing_query_is_a_422_naming_the_parameter(aws, handlers, query, field):
    status, body = listing(handlers, **query)
    assert status == 422, body
    assert field in [error["field"] for error in body["error"]["fields"]]
    if field == "statsu":
        assert "did you mean 'status'" in body["error"]["fields"][0]["message"]


def test_a_cursor_reaches_only_the_callers_own_jobs(aws, sandbox, handlers):
    made(handlers, [UNIALL] * 3)
    made(handlers, [UNIALL] * 2, user=BOB)
    _, first = listing(handlers, limit="1")
    # Bob replays Alice's cursor: he goes on through his own jobs, never hers.
    status, page = listing(handlers, user=BOB, cursor=first["next_cursor"])
    assert status == 200
    bobs = {item["id"] for item in job_items(aws) if item["owner"].endswith("user/bob")}
    assert {job["id"] for job in page["jobs"]} <= bobs
    for forged in ("not-a-cursor", "eyJway", "e30", "x" * 400):
        status, body = listing(handlers, cursor=forged)
        assert (status, body["error"]["code"]) == (400, "invalid_cursor")


def test_listing_reads_the_owner_index_and_never_scans(aws, sandbox, handlers):
    from reelhook.adapters.aws import client

    made(handlers, [UNIALL] * 3)
    calls: list[tuple[str, dict[str, Any]]] = []
    ddb = client("dynamodb")
    for operation in ("Scan", "Query"):
        ddb.meta.events.register(f"before-parameter-build.dynamodb.{operation}",
                                 lambda params, op=operation, **_: calls.append((op, params)))
    assert listing(handlers, status="submitted")[0] == 200
    assert calls and {(op, params.get("IndexName")) for op, params in calls} == {("Query", "owner-index")}


# -- cancelling ----------------------------------------------------------------------------------


def test_a_queued_job_cancelled_is_never_sent(aws, sandbox, handlers, monkeypatch):
    monkeypatch.setenv("FREEPIK_REQUESTS_PER_SECOND", "0.02")  # the second job must wait for its slot
    monkeypatch.setenv("FREEPIK_BURST", "1")
    from tests.conftest import reset_caches

    reset_caches()
    create(handlers, VEO)
    _, waiting = create(handlers, VEO)
    assert waiting["status"] == "queued"
    status, cancelled = cancel(handlers, waiting["id"])
    assert status == 200 and cancelled["status"] == "cancelled"
    assert cancelled["cancellation"]["provider_task_may_continue"] is False  # nothing was ever sent
    assert cancelled["attempts"][-1]["outcome"] == "cancelled" and "waiting_for" not in cancelled
    sends = len([r for r in sandbox.request_log if r.method == "POST"])
    submit = {"Records": [{"messageId": "m", "receiptHandle": "r", "eventSource": "aws:sqs",
                           "body": json.dumps({"job_id": waiting["id"]}), "attributes": {"ApproximateReceiveCount": "1"}}]}
    assert handlers["submit"](submit, Context()) == {"batchItemFailures": []}
    assert len([r for r in sandbox.request_log if r.method == "POST"]) == sends
    assert get(handlers, waiting["id"])[1]["status"] == "cancelled"


def test_a_late_webhook_after_cancel_is_acknowledged_and_changes_nothing(aws, sandbox, handlers):
    secret = sandbox.config.freepik_webhook_secret
    _, job = create(handlers, VEO)
    task = sandbox.tasks[job["provider_task_id"]]
    status, cancelled = cancel(handlers, job["id"])
    assert status == 200 and cancelled["cancellation"]["provider_task_may_continue"] is True
    sandbox.force_status(task.task_id, "completed")
    task = sandbox.tasks[task.task_id]
    late = webhook_event(task, freepik_body(task, "COMPLETED", [sandbox.result_url(task)]), secret=secret)
    status, answer = call(handlers["callback"], late)
    assert status == 200 and answer["applied"] is False and answer["status"] == "cancelled"
    [item] = job_items(aws)
    assert item["status"] == "cancelled" and "result_urls" not in item
    assert [e["status"] for e in item["events"]] == ["queued", "submitted", "cancelled"]
    assert not queue_messages(aws)  # no copy queued
    # Cancelling again answers as the first cancel did; a finished job cannot be cancelled.
    assert cancel(handlers, job["id"]) == (200, get(handlers, job["id"])[1])


def test_a_finished_job_cannot_be_cancelled(aws, sandbox, handlers):
    from tests.integration.test_handlers import complete

    job, _ = complete(handlers, sandbox)
    # complete() creates as the anonymous caller: cancel as that caller too.
    assert handlers["transfer"](sqs_event(job["id"]), Context()) == {"batchItemFailures": []}
    status, body = cancel(handlers, job["id"], user=None)
    assert status == 409 and body["error"]["code"] == "job_finished" and "succeeded" in body["error"]["message"]
    [item] = job_items(aws)
    assert item["status"] == "succeeded"


def test_a_job_cancelled_while_its_video_is_copied_keeps_no_copy(aws, sandbox, handlers, monkeypatch):
    from reelhook.services import transfer
    from tests.integration.test_handlers import complete

    job, _ = complete(handlers, sandbox)
    real_store = transfer.store_output

    def store_then_cancel(*args: Any, **kwargs: Any) -> dict[str, Any]:
        stored = real_store(*args, **kwargs)
        assert cancel(handlers, job["id"], user=None)[0] == 200  # the owner cancels mid-copy
        return stored

    monkeypatch.setattr(transfer, "store_output", store_then_cancel)
    assert handlers["transfer"](sqs_event(job["id"]), Context()) == {"batchItemFailures": []}
    [item] = job_items(aws)
    assert item["status"] == "cancelled" and "outputs" not in item
    s3 = boto3.client("s3")
    versions = s3.list_object_versions(Bucket=aws.bucket_name, Prefix=f"videos/{job['id']}")
    assert not versions.get("Versions"), versions.get("Versions")  # nothing stored stays


def test_a_cancelled_job_frees_its_in_flight_place(aws, sandbox, handlers, monkeypatch):
    monkeypatch.setenv("UNIALL_MAX_IN_FLIGHT", "1")
    from tests.conftest import reset_caches

    reset_caches()
    _, first = create(handlers, UNIALL)
    _, second = create(handlers, UNIALL)
    assert (first["status"], second["status"], second["waiting_for"]) == ("submitted", "queued",
                                                                          "provider_concurrency")
    assert cancel(handlers, first["id"])[0] == 200
    submit = {"Records": [{"messageId": "m", "receiptHandle": "r", "eventSource": "aws:sqs",
                           "body": json.dumps({"job_id": second["id"]}), "attributes": {"ApproximateReceiveCount": "1"}}]}
    assert handlers["submit"](submit, Context()) == {"batchItemFailures": []}
    assert get(handlers, second["id"])[1]["status"] == "submitted"
