"""Outgoing notifications: the jobs table's stream -> notifier -> EventBridge and the notify
queue -> notify -> a signed POST to the job's notify_url (verified with ``standardwebhooks``).

moto in-process plays AWS and the provider sandbox plays Freepik; the stream is read as
the event source mapping would hand it over (tests/integration/notify_support.py).
"""

from __future__ import annotations

import json

import boto3
import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import Context, api_event, reset_caches, table_items
from tests.integration.notify_support import (
    Receiver,
    StreamReader,
    bus_events,
    bus_target,
    delayed_notify_messages,
    enable_integrations,
    notify_messages,
    run_notifier,
    sqs_record,
    whsec,
)
from tests.integration.test_handlers import VEO, call, create, freepik_body, sqs_event, webhook_event


@pytest.fixture
def stack(aws, monkeypatch):
    enable_integrations(monkeypatch, aws)
    return aws


def job_item(resources, job_id):
    [item] = [i for i in table_items(resources) if i["pk"] == f"job#{job_id}"]
    return item


def api_job(handlers, job_id):
    return call(handlers["api"], api_event("GET", f"/v1/jobs/{job_id}", route="GET /v1/jobs/{id}",
                                           path_parameters={"id": job_id}))[1]


def stored_view(handlers, job_id):
    """The job as GET /v1/jobs/{id} shows it, without the (expiring) download and poster URLs."""
    job = api_job(handlers, job_id)
    for output in job["outputs"]:
        output.pop("download_url")
        output.pop("poster_url", None)
    return job


def hook(handlers, sandbox, task, status, generated=()):
    event = webhook_event(task, freepik_body(task, status, generated), secret=sandbox.config.freepik_webhook_secret)
    return call(handlers["callback"], event)[1]


def succeed(handlers, sandbox, body=VEO):
    """A Freepik job carried to succeeded: webhooks, then the transfer."""
    status, job = create(handlers, body)
    assert status == 202, job
    task = sandbox.tasks[job["provider_task_id"]]
    assert hook(handlers, sandbox, task, "IN_PROGRESS")["status"] == "running"
    task = sandbox.force_status(task.task_id, "completed")
    assert hook(handlers, sandbox, task, "COMPLETED", [sandbox.result_url(task)])["status"] == "storing"
    assert handlers["transfer"](sqs_event(job["id"]), Context()) == {"batchItemFailures": []}
    return job["id"]


def fail(handlers, sandbox, body=VEO):
    status, job = create(handlers, body)
    assert status == 202, job
    assert hook(handlers, sandbox, sandbox.tasks[job["provider_task_id"]], "FAILED")["status"] == "failed"
    return job["id"]


def deliver(handlers, message, receives=1):
    return handlers["notify"]({"Records": [sqs_record(message, receives)]}, Context())


# ---------------------------------------------------------------------------- EventBridge


def test_terminal_transitions_reach_the_bus_once_with_the_public_job(stack, sandbox, handlers):
    target = bus_target(stack)
    reader = StreamReader(stack)
    ok = succeed(handlers, sandbox)
    bad = fail(handlers, sandbox)

    event = reader.event()
    # The mapping's filters keep only the two terminal transitions out of every write made.
    assert [r["dynamodb"]["NewImage"]["status"]["S"] for r in event["Records"]] == ["succeeded", "failed"]
    assert handlers["notifier"](event, Context()) == {"batchItemFailures": []}

    received = {e["detail"]["id"]: e for e in bus_events(target)}
    assert set(received) == {ok, bad}
    assert received[ok]["detail-type"] == "Video Job Succeeded" and received[ok]["source"] == "reelhook"
    assert received[ok]["detail"] == stored_view(handlers, ok)
    assert received[bad]["detail-type"] == "Video Job Failed"
    assert received[bad]["detail"]["error"]["code"] == "provider_failed"
    # Nothing new happened: nothing more is published.
    assert run_notifier(handlers, reader) == {"batchItemFailures": []}
    assert bus_events(target) == []
    assert notify_messages(stack) == []  # neither job asked for a notify_url


def test_more_than_ten_terminal_changes_in_one_batch_all_arrive(stack, sandbox, handlers):
    target = bus_target(stack)
    reader = StreamReader(stack)
    failed = set()
    for _ in range(13):
        sandbox.config.faults.fail_next_submit_with = 402
        status, job = create(handlers, VEO)
        assert status == 202 and job["status"] == "failed"
        failed.add(job["id"])
    assert run_notifier(handlers, reader) == {"batchItemFailures": []}
    events = bus_events(target)
    assert {e["detail"]["id"] for e in events} == failed and len(events) == 13
    assert {e["detail-type"] for e in events} == {"Video Job Failed"}


def test_a_change_that_could_not_be_published_is_retried_from_its_record(stack, sandbox, handlers, monkeypatch):
    target = bus_target(stack)
    reader = StreamReader(stack)
    job_id = succeed(handlers, sandbox)
    event = reader.event()
    [record] = event["Records"]

    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")
    assert handlers["notifier"](event, Context()) == {
        "batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    assert bus_events(target) == []
    # The mapping hands the same records over again; this time the bus is there.
    monkeypatch.setenv("EVENT_BUS_NAME", stack.event_bus_name)
    assert handlers["notifier"](event, Context()) == {"batchItemFailures": []}
    assert [e["detail"]["id"] for e in bus_events(target)] == [job_id]


def test_a_non_terminal_webhook_still_costs_one_write(stack, sandbox, handlers):
    reader = StreamReader(stack)
    status, job = create(handlers, VEO | {"notify_url": "https://hooks.example.com/x"})
    assert status == 202
    reader.read(filtered=False)
    assert hook(handlers, sandbox, sandbox.tasks[job["provider_task_id"]], "IN_PROGRESS")["status"] == "running"
    [change] = reader.read(filtered=False)  # one item write, and the notifier is not even invoked for it
    assert change["eventName"] == "MODIFY" and change["dynamodb"]["NewImage"]["status"]["S"] == "running"
    assert reader.read() == []


# ---------------------------------------------------------------------------- notify_url


def test_notify_url_receives_a_post_that_standardwebhooks_verifies(stack, sandbox, handlers):
    reader = StreamReader(stack)
    with Receiver() as receiver:
        job_id = succeed(handlers, sandbox, VEO | {"notify_url": receiver.url})
        assert job_item(stack, job_id)["notify_url"] == receiver.url
        assert run_notifier(handlers, reader) == {"batchItemFailures": []}
        [message] = notify_messages(stack)
        queued = json.loads(message["Body"])
        assert queued == {"job_id": job_id, "status": "succeeded", "attempt": 1}

        assert deliver(handlers, queued) == {"batchItemFailures": []}
        [request] = receiver.requests
        assert request.path == "/hooks/reelhook"
        assert request.headers["webhook-id"] == f"{job_id}.succeeded"
        assert request.headers["content-type"] == "application/json"
        # The receiver's side, exactly as the README shows it.
        payload = Webhook(whsec(stack)).verify(request.body, request.headers)
        assert payload["type"] == "video.job.succeeded"
        assert payload["data"]["id"] == job_id and payload["data"]["status"] == "succeeded"
        [output] = payload["data"]["outputs"]
        assert output["download_url"].startswith("https://")
        assert output["sha256"] == sandbox.served_sha256
        # A forged or altered body does not verify.
        with pytest.raises(Exception, match="signature"):
            Webhook(whsec(stack)).verify(request.body.replace(b"succeeded", b"failed"), request.headers)

        [attempt] = job_item(stack, job_id)["notifications"]
        assert attempt["id"] == f"{job_id}.succeeded" and attempt["attempt"] == 1
        assert attempt["outcome"] == "delivered" and attempt["status_code"] == 200
        # The same message again (SQS and the stream deliver at least once): no second POST.
        assert deliver(handlers, queued) == {"batchItemFailures": []}
        assert deliver(handlers, queued, receives=2) == {"batchItemFailures": []}
        assert len(receiver.requests) == 1
        assert len(job_item(stack, job_id)["notifications"]) == 1
        # The bookkeeping writes leave the status alone: nothing is queued or published again.
        assert run_notifier(handlers, reader) == {"batchItemFailures": []}
        assert notify_messages(stack) == []


def test_failed_deliveries_are_retried_later_with_the_same_id(stack, sandbox, handlers):
    from reelhook.services.notify import MAX_ATTEMPTS, retry_delay

    assert [retry_delay(n) for n in range(1, MAX_ATTEMPTS)] == [30, 60, 120, 240, 480, 900, 900]
    with Receiver() as receiver:
        job_id = fail(handlers, sandbox, VEO | {"notify_url": receiver.url})
        receiver.statuses.put(500)
        receiver.statuses.put(503)
        message = {"job_id": job_id, "status": "failed", "attempt": 1}
        assert deliver(handlers, message) == {"batchItemFailures": []}
        assert delayed_notify_messages(stack) == 1  # attempt 2, in 30 s
        assert deliver(handlers, message | {"attempt": 2}) == {"batchItemFailures": []}
        assert delayed_notify_messages(stack) == 2
        assert deliver(handlers, message | {"attempt": 3}) == {"batchItemFailures": []}
        assert delayed_notify_messages(stack) == 2  # delivered: nothing more queued

    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        assert Webhook(whsec(stack)).verify(request.body, request.headers)["type"] == "video.job.failed"
    attempts = job_item(stack, job_id)["notifications"]
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in attempts] == [
        (1, "failed", 500), (2, "failed", 503), (3, "delivered", 200)]
    assert [a.get("retry_in_seconds") for a in attempts] == [30, 60, None]
    # A late copy of an earlier attempt changes nothing once delivered.
    assert deliver(handlers, message) == {"batchItemFailures": []}
    assert len(receiver.requests) == 3


def test_delivery_gives_up_after_the_last_attempt(stack, sandbox, handlers):
    from reelhook.services.notify import MAX_ATTEMPTS

    with Receiver() as receiver:
        job_id = fail(handlers, sandbox, VEO | {"notify_url": receiver.url})
        receiver.statuses.put(500)
        last = {"job_id": job_id, "status": "failed", "attempt": MAX_ATTEMPTS}
        assert deliver(handlers, last) == {"batchItemFailures": []}
    assert len(receiver.requests) == 1
    assert delayed_notify_messages(stack) == 0 and notify_messages(stack) == []
    [attempt] = job_item(stack, job_id)["notifications"]
    assert (attempt["attempt"], attempt["outcome"], attempt["status_code"]) == (MAX_ATTEMPTS, "gave_up", 500)


def test_an_unreachable_receiver_is_recorded_and_retried(stack, sandbox, handlers):
    with Receiver() as receiver:
        url = receiver.url
    job_id = fail(handlers, sandbox, VEO | {"notify_url": url})  # nothing listens there any more
    assert deliver(handlers, {"job_id": job_id, "status": "failed", "attempt": 1}) == {"batchItemFailures": []}
    [attempt] = job_item(stack, job_id)["notifications"]
    assert attempt["outcome"] == "failed" and "ConnectError" in attempt["error"] and "status_code" not in attempt
    assert delayed_notify_messages(stack) == 1


def test_a_notify_url_on_a_private_address_is_never_called(stack, sandbox, handlers):
    # Intake refuses literal private addresses; a name can still resolve to one by delivery
    # time, which is what the stored URL stands for here.
    job_id = fail(handlers, sandbox, VEO | {"notify_url": "https://hooks.example.com/hooks"})
    boto3.client("dynamodb").update_item(
        TableName=stack.table_name, Key={"pk": {"S": f"job#{job_id}"}},
        UpdateExpression="SET notify_url = :url", ExpressionAttributeValues={":url": {"S": "https://10.1.2.3/hooks"}})
    assert deliver(handlers, {"job_id": job_id, "status": "failed", "attempt": 1}) == {"batchItemFailures": []}
    [attempt] = job_item(stack, job_id)["notifications"]
    assert attempt["outcome"] == "refused" and "non-public" in attempt["error"]
    assert delayed_notify_messages(stack) == 0  # retrying cannot make it safe


def test_messages_for_jobs_without_a_notify_url_or_unreadable_ones_do_nothing(stack, sandbox, handlers):
    job_id = fail(handlers, sandbox)
    assert deliver(handlers, {"job_id": job_id, "status": "failed", "attempt": 1}) == {"batchItemFailures": []}
    assert deliver(handlers, {"job_id": "job_" + "0" * 32, "status": "failed", "attempt": 1}) == {
        "batchItemFailures": []}
    assert handlers["notify"]({"Records": [{"messageId": "x", "body": "not json"}]}, Context()) == {
        "batchItemFailures": []}
    assert "notifications" not in job_item(stack, job_id)


def test_notify_url_must_be_https_when_deployed(stack, handlers, monkeypatch):
    from reelhook.openapi import document

    monkeypatch.setenv("REELHOOK_ALLOW_INSECURE_FETCH", "false")
    reset_caches()
    for url in ("http://hooks.example.com/x", "ftp://hooks.example.com/x", "https://user:pw@hooks.example.com/x"):
        status, answer = create(handlers, VEO | {"notify_url": url})
        assert status == 422 and [f["field"] for f in answer["error"]["fields"]] == ["notify_url"], answer
    status, job = create(handlers, VEO | {"notify_url": "https://hooks.example.com/reelhook?team=video"})
    assert status == 202
    assert job_item(stack, job["id"])["notify_url"] == "https://hooks.example.com/reelhook?team=video"
    schema = document()["components"]["schemas"]["JobRequest"]["properties"]["notify_url"]
    assert "Standard Webhooks" in schema["description"]


def test_the_signing_key_is_the_generated_secret_in_whsec_form(stack):
    from reelhook.adapters.notify_secret import signing_key

    raw = json.loads(boto3.client("secretsmanager").get_secret_value(
        SecretId=stack.notify_secret_id)["SecretString"])["signing_key"]
    assert signing_key() == raw.encode() and len(raw) == 48
    assert whsec(stack).startswith("whsec_")
