"""The handlers against moto (AWS) and the provider sandbox (real HTTP), asserting what they did."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from tests.conftest import Context, api_event, queue_messages, table_items

VEO = {"model": "freepik/veo-3-1-reference-to-video", "prompt": "a cat on a skateboard",
       "reference_images": ["https://example.com/cat.png"], "resolution": "720p", "seed": 3}


def call(handler, event) -> tuple[int, dict[str, Any]]:
    answer = handler(event, Context())
    return answer["statusCode"], json.loads(answer["body"])


def create(handlers, body, key=None):
    headers = {"idempotency-key": key} if key else {}
    return call(handlers["api"], api_event("POST", "/v1/jobs", body, headers))


def job_items(aws):
    return [i for i in table_items(aws) if i["pk"].startswith("job#")]


def webhook_event(task, body: dict[str, Any], *, secret: str, token: str | None = None, ts: int | None = None,
                  sign_with: str | None = None, raw: bytes | None = None, msg_id: str | None = None) -> dict[str, Any]:
    hook = urlsplit(task.webhook_url)
    provider, job_id = hook.path.split("/")[-2:]
    raw = raw if raw is not None else json.dumps(body).encode()
    msg_id, ts = msg_id or f"msg_{uuid.uuid4().hex}", ts or int(time.time())
    mac = hmac.new((sign_with or secret).encode(), f"{msg_id}.{ts}.".encode() + raw, hashlib.sha256).digest()
    token = token if token is not None else parse_qs(hook.query)["token"][0]
    event = api_event("POST", hook.path, raw.decode("latin-1"), {
        "webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }, {"provider": provider, "job_id": job_id}, {"token": token}, route="POST /v1/callbacks/{provider}/{job_id}")
    return event


def status_gets(sandbox) -> int:
    """How many GETs the sandbox has answered so far (status checks, result downloads)."""
    return len([r for r in sandbox.request_log if r.method == "GET"])


def freepik_body(task, status, generated=()):
    return {"task_id": task.task_id, "status": status, "generated": list(generated)}


def test_submit_stores_job_and_calls_provider_once(aws, sandbox, handlers):
    status, job = create(handlers, VEO)
    assert status == 202
    assert job["status"] == "submitted" and job["provider_task_id"]
    [task] = [sandbox.tasks[t] for t in sandbox.tasks]
    assert task.body["image_urls"] == ["https://example.com/cat.png"]
    assert task.body["webhook_url"].startswith(f"http://127.0.0.1:9/v1/callbacks/freepik/{job['id']}?token=")
    [item] = job_items(aws)
    assert item["status"] == "submitted" and item["provider_task_id"] == task.task_id
    assert [e["status"] for e in item["events"]] == ["queued", "submitted"]

    status, read = call(handlers["api"], api_event("GET", f"/v1/jobs/{job['id']}", route="GET /v1/jobs/{id}",
                                                   path_parameters={"id": job["id"]}))
    assert status == 200 and read["id"] == job["id"] and read["outputs"] == []


def test_idempotency_key_replays_and_refuses_a_different_body(aws, sandbox, handlers):
    first = create(handlers, VEO, key="order-42")
    again = create(handlers, VEO, key="order-42")
    assert first[0] == again[0] == 202 and first[1]["id"] == again[1]["id"]
    status, body = create(handlers, VEO | {"prompt": "something else"}, key="order-42")
    assert status == 409 and body["error"]["code"] == "idempotency_key_reused"
    assert first[1]["id"] not in json.dumps(body)  # the other job is not named
    assert len([sandbox.tasks[t] for t in sandbox.tasks]) == 1
    assert len(job_items(aws)) == 1


@pytest.mark.parametrize(("body", "status", "fields"), [
    (VEO | {"reference_images": []}, 422, {"reference_images"}),
    (VEO | {"resolution": "8k", "aspect_ratio": "1:1"}, 422, {"resolution", "aspect_ratio"}),
    (VEO | {"reference_images": ["http://example.com/a.png"]}, 422, {"reference_images[0].url"}),
    (VEO | {"model": "nope"}, 422, {"model"}),
    (VEO | {"colour": "red"}, 422, {"colour"}),
    (VEO | {"seed": "1"}, 422, {"seed"}),
    ({"model": VEO["model"]}, 422, {"prompt", "reference_images"}),
    # Addresses that are not public are refused before any provider call, in every spelling.
    (VEO | {"reference_images": ["https://169.254.169.254/latest/meta-data/"]}, 422, {"reference_images[0].url"}),
    (VEO | {"reference_images": ["https://10.0.0.1/a.png"]}, 422, {"reference_images[0].url"}),
    (VEO | {"reference_images": ["https://[::ffff:169.254.169.254]/a.png"]}, 422, {"reference_images[0].url"}),
    (VEO | {"reference_images": ["https://2852039166/a.png"]}, 422, {"reference_images[0].url"}),
    (VEO | {"reference_images": ["https://[64:ff9b::a9fe:a9fe]/a.png"]}, 422, {"reference_images[0].url"}),
    (VEO | {"notify_url": "https://10.1.2.3/hooks"}, 422, {"notify_url"}),
    (VEO | {"notify_url": "https://0xA9FEA9FE/hooks"}, 422, {"notify_url"}),
])
def test_client_mistakes_are_4xx_naming_the_field_and_change_nothing(aws, sandbox, handlers, body, status, fields):
    got, answer = create(handlers, body)
    assert got == status
    assert {f["field"] for f in answer["error"]["fields"]} == fields
    assert all(f["message"] for f in answer["error"]["fields"])
    assert job_items(aws) == [] and [sandbox.tasks[t] for t in sandbox.tasks] == []


def test_malformed_json_and_unknown_routes(aws, handlers):
    assert call(handlers["api"], api_event("POST", "/v1/jobs", "{not json"))[0] == 400
    assert call(handlers["api"], api_event("POST", "/v1/jobs", "[1]"))[0] == 400
    assert call(handlers["api"], api_event("GET", "/v1/jobs/job_x", route="GET /v1/jobs/{id}",
                                           path_parameters={"id": "job_x"}))[0] == 404
    missing = "job_" + "0" * 32
    assert call(handlers["api"], api_event("GET", f"/v1/jobs/{missing}", route="GET /v1/jobs/{id}",
                                           path_parameters={"id": missing}))[0] == 404
    assert call(handlers["api"], api_event("POST", "/v1/jobs", VEO, {"idempotency-key": "bad key\n"}))[0] == 400


def test_provider_rejection_fails_the_job_with_its_message(aws, sandbox, handlers):
    sandbox.config.faults.fail_next_submit_with = 402
    status, job = create(handlers, VEO)
    assert status == 202 and job["status"] == "failed"
    assert job["error"]["code"] == "provider_rejected" and "402" in job["error"]["message"]


def test_rate_limited_submit_goes_back_on_the_queue_with_its_retry_after(aws, sandbox, handlers):
    sandbox.config.faults.fail_next_submit_with = 429
    sandbox.config.faults.retry_after_seconds = 7
    status, job = create(handlers, VEO)
    # Accepted and waiting, not failed, and not retried inline.
    assert status == 202 and job["status"] == "queued" and job["waiting_for"] == "rate_limit"
    assert len([r for r in sandbox.request_log if r.method == "POST"]) == 1
    [item] = job_items(aws)
    assert "submit_started_at" not in item  # the claim was given back: no task can exist
    # Delayed as the provider asked: not receivable yet.
    assert queue_messages(aws, aws.submit_queue_url) == []
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.submit_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    record = {"messageId": "m1", "body": json.dumps({"job_id": job["id"], "attempt": 1})}
    assert handlers["submit"]({"Records": [record]}, Context()) == {"batchItemFailures": []}
    [item] = job_items(aws)
    assert item["status"] == "submitted" and "waiting_for" not in item
    assert len(list(sandbox.tasks)) == 1


def test_a_duplicate_submit_message_never_sends_twice(aws, sandbox, handlers):
    _, job = create(handlers, VEO)
    assert job["status"] == "submitted"
    record = {"messageId": "m1", "body": json.dumps({"job_id": job["id"]})}
    assert handlers["submit"]({"Records": [record, record]}, Context()) == {"batchItemFailures": []}
    assert len([r for r in sandbox.request_log if r.method == "POST"]) == 1


def test_unreadable_submit_messages_are_dropped_not_retried(aws, handlers):
    records = [{"messageId": "a", "body": "not json"}, {"messageId": "b", "body": json.dumps({"nope": 1})}]
    assert handlers["submit"]({"Records": records}, Context()) == {"batchItemFailures": []}


def test_ambiguous_submit_failure_is_never_resent(aws, sandbox, handlers):
    sandbox.config.faults.fail_next_submit_with = 500
    status, job = create(handlers, VEO)
    assert status == 202 and job["status"] == "queued"
    [item] = job_items(aws)
    assert item["submit_outcome"] == "unknown"
    creates = [r for r in sandbox.request_log if r.method == "POST"]
    assert len(creates) == 1


def submitted_task(handlers, sandbox, body=VEO):
    _, job = create(handlers, body)
    [task] = [t for t in [sandbox.tasks[t] for t in sandbox.tasks] if t.task_id == job["provider_task_id"]]
    return job, task


def test_webhooks_move_the_job_forward_only(aws, sandbox, handlers):
    secret = sandbox.config.freepik_webhook_secret
    job, task = submitted_task(handlers, sandbox)
    running = webhook_event(task, freepik_body(task, "IN_PROGRESS"), secret=secret)
    assert call(handlers["callback"], running) == (200, {"job_id": job["id"], "applied": True, "status": "running"})
    assert call(handlers["callback"], running)[1] == {  # the same delivery again: acknowledged, ignored
        "job_id": job["id"], "applied": False, "status": "running", "duplicate": True}
    done = webhook_event(task, freepik_body(task, "COMPLETED", ["https://cdn.example/v.mp4"]), secret=secret)
    assert call(handlers["callback"], done)[1] == {"job_id": job["id"], "applied": True, "status": "storing"}
    late = webhook_event(task, freepik_body(task, "IN_PROGRESS"), secret=secret)
    assert call(handlers["callback"], late)[1] == {"job_id": job["id"], "applied": False, "status": "storing"}
    [item] = job_items(aws)
    assert item["status"] == "storing" and item["result_urls"] == ["https://cdn.example/v.mp4"]
    assert [e["status"] for e in item["events"]] == ["queued", "submitted", "running", "storing"]
    [message] = queue_messages(aws)
    assert json.loads(message["Body"]) == {"job_id": job["id"]}


def test_a_webhook_id_that_changed_nothing_is_never_applied_later(aws, sandbox, handlers):
    """A webhook-id is the delivery's idempotency key whether or not the delivery moved the
    job: a later message reusing it, even validly signed over another body, changes nothing."""
    secret = sandbox.config.freepik_webhook_secret
    job, task = submitted_task(handlers, sandbox)
    assert call(handlers["callback"], webhook_event(task, freepik_body(task, "IN_PROGRESS"), secret=secret))[1][
        "applied"]
    again = webhook_event(task, freepik_body(task, "IN_PROGRESS"), secret=secret, msg_id="msg_no_change")
    assert call(handlers["callback"], again)[1] == {"job_id": job["id"], "applied": False, "status": "running"}
    reused = webhook_event(task, freepik_body(task, "COMPLETED", ["https://cdn.example/v.mp4"]), secret=secret,
                           msg_id="msg_no_change")
    assert call(handlers["callback"], reused)[1] == {
        "job_id": job["id"], "applied": False, "status": "running", "duplicate": True}
    [item] = job_items(aws)
    assert item["status"] == "running" and "result_urls" not in item and not queue_messages(aws)


def _before_the_create_answer(aws, job_id: str) -> None:
    """The job as it is while the provider's create answer is still on its way: no task yet."""
    from reelhook.adapters.jobs_table import job_key

    boto3.client("dynamodb").update_item(
        TableName=aws.table_name, Key=job_key(job_id), UpdateExpression="SET #s = :q REMOVE provider_task_id",
        ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":q": {"S": "queued"}})


def test_a_signed_webhook_never_gives_a_job_its_task_unless_the_provider_confirms_it(aws, sandbox, handlers):
    """Signed is not enough to name the job's task: a body about a task the job has not
    recorded is checked with the provider's own GET before the task is adopted."""
    secret = sandbox.config.freepik_webhook_secret
    job, task = submitted_task(handlers, sandbox)
    _before_the_create_answer(aws, job["id"])
    made_up = {"task_id": str(uuid.uuid4()), "status": "COMPLETED", "generated": ["https://cdn.example/f.mp4"]}
    gets_before = status_gets(sandbox)
    status, body = call(handlers["callback"], webhook_event(task, made_up, secret=secret))
    assert status == 400 and "does not confirm" in body["error"]["message"]
    assert status_gets(sandbox) == gets_before + 1
    [item] = job_items(aws)
    assert item["status"] == "queued" and "provider_task_id" not in item and "result_urls" not in item
    assert queue_messages(aws) == []
    # The real task's webhook, arriving ahead of the create answer: confirmed, then adopted
    # with what the provider's GET says (the task has not started yet).
    status, body = call(handlers["callback"], webhook_event(task, freepik_body(task, "IN_PROGRESS"), secret=secret))
    assert (status, body["applied"], body["status"]) == (200, True, "submitted")
    [item] = job_items(aws)
    assert item["provider_task_id"] == task.task_id


def test_forged_or_malformed_webhooks_change_nothing(aws, sandbox, handlers):
    secret = sandbox.config.freepik_webhook_secret
    _, task = submitted_task(handlers, sandbox)
    before = job_items(aws)
    done = freepik_body(task, "COMPLETED", ["https://cdn.example/v.mp4"])
    cases = {
        "bad token": (webhook_event(task, done, secret=secret, token="x" * 43), 401),
        "no token": (webhook_event(task, done, secret=secret, token=""), 401),
        "bad signature": (webhook_event(task, done, secret=secret, sign_with="guess"), 401),
        "stale": (webhook_event(task, done, secret=secret, ts=int(time.time()) - 301), 401),
        "not json": (webhook_event(task, done, secret=secret, raw=b"{oops"), 400),
        "bad shape": (webhook_event(task, {"task_id": task.task_id, "status": "DONE"}, secret=secret), 400),
        "too big": (webhook_event(task, done, secret=secret, raw=b" " * 300_000), 413),
        "nested 50,000 deep": (webhook_event(task, done, secret=secret, raw=b"[" * 50_000 + b"]" * 50_000), 400),
        "nested in a field": (webhook_event(task, done, secret=secret,
                                            raw=b'{"task_id": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"), 400),
    }
    for name, (event, expected) in cases.items():
        assert call(handlers["callback"], event)[0] == expected, name
    unknown = webhook_event(task, done, secret=secret)
    unknown["pathParameters"]["provider"] = "acme"
    assert call(handlers["callback"], unknown)[0] == 404
    assert job_items(aws) == before
    assert queue_messages(aws) == []


def _without_freepik_secret(aws) -> None:
    from reelhook.adapters import secrets
    from reelhook.config import settings

    sm = boto3.client("secretsmanager")
    values = json.loads(sm.get_secret_value(SecretId=settings().secret_id)["SecretString"])
    sm.put_secret_value(SecretId=settings().secret_id, SecretString=json.dumps(values | {"freepik_webhook_secret": ""}))
    secrets._cache = None  # the function would see it within its cache's lifetime


def test_without_a_secret_a_freepik_webhook_is_only_a_hint_the_providers_get_decides(aws, sandbox, handlers):
    _without_freepik_secret(aws)
    _, task = submitted_task(handlers, sandbox)
    # Anyone holding the callback URL: "completed, here is my video". Freepik says it is not done.
    forged = webhook_event(task, freepik_body(task, "COMPLETED", ["https://cdn.example/forged.mp4"]), secret="guess")
    gets_before = status_gets(sandbox)
    status, body = call(handlers["callback"], forged)
    assert status == 200 and body["status"] != "storing", body
    assert status_gets(sandbox) == gets_before + 1  # confirmed by a GET
    [item] = job_items(aws)
    assert item["status"] in {"submitted", "running"} and "forged" not in json.dumps(item.get("result_urls", []))
    assert queue_messages(aws) == []
    # When Freepik's own answer says completed, the job moves on with Freepik's links, not the body's.
    sandbox.force_status(task.task_id, "completed")
    status, body = call(handlers["callback"], forged)
    assert status == 200 and body["status"] == "storing", body
    [item] = job_items(aws)
    assert item["result_urls"] == [sandbox.result_url(sandbox.tasks[task.task_id])]


def published_metrics(printed: str) -> set[str]:
    """The metric names in the Embedded Metric Format lines a handler printed."""
    names: set[str] = set()
    for line in printed.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "_aws" in doc:
            names |= {m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    return names


def test_a_freepik_webhook_with_no_secret_configured_is_counted_for_its_alarm(aws, sandbox, handlers, capfd):
    _, task = submitted_task(handlers, sandbox)
    signed = webhook_event(task, freepik_body(task, "IN_PROGRESS"), secret=sandbox.config.freepik_webhook_secret)
    capfd.readouterr()
    assert call(handlers["callback"], signed)[0] == 200
    published = published_metrics(capfd.readouterr().out)
    assert "WebhooksApplied" in published and "WebhookSecretMissing" not in published  # the capture sees metrics
    _without_freepik_secret(aws)
    # Believed only after Freepik's own GET, but the deployment is still wrong: said every time.
    status, _ = call(handlers["callback"], webhook_event(task, freepik_body(task, "IN_PROGRESS"), secret="any"))
    assert status == 200
    assert "WebhookSecretMissing" in published_metrics(capfd.readouterr().out)
    # A request without the job's URL token is no Freepik delivery: refused, and not counted.
    assert call(handlers["callback"], webhook_event(task, freepik_body(task, "IN_PROGRESS"), secret="any",
                                                    token="x" * 43))[0] == 401
    published = published_metrics(capfd.readouterr().out)
    assert "WebhooksRejected" in published and "WebhookSecretMissing" not in published


def test_a_webhook_body_that_names_no_task_changes_nothing(aws, sandbox, handlers):
    secret = sandbox.config.freepik_webhook_secret
    _, task = submitted_task(handlers, sandbox)
    before = job_items(aws)
    for body in ({"status": "COMPLETED", "generated": ["https://cdn.example/v.mp4"]},
                 {"task_id": "", "status": "COMPLETED", "generated": ["https://cdn.example/v.mp4"]}):
        status, answer = call(handlers["callback"], webhook_event(task, body, secret=secret))
        assert status == 400 and "task_id" in answer["error"]["message"], answer
    assert job_items(aws) == before
    assert queue_messages(aws) == []


def test_a_valid_token_for_a_job_that_does_not_exist_is_404(aws, sandbox, handlers):
    from reelhook.adapters.secrets import callback_token_key
    from reelhook.webhook_auth import job_token

    secret = sandbox.config.freepik_webhook_secret
    _, task = submitted_task(handlers, sandbox)
    ghost = "job_" + "f" * 32
    event = webhook_event(task, freepik_body(task, "IN_PROGRESS"), secret=secret,
                          token=job_token(callback_token_key(), "freepik", ghost))
    event["pathParameters"]["job_id"] = ghost
    before = table_items(aws)
    assert call(handlers["callback"], event)[0] == 404
    assert table_items(aws) == before


def sqs_event(job_id: str, receives: int = 1) -> dict[str, Any]:
    return {"Records": [{"messageId": "m1", "receiptHandle": "r", "body": json.dumps({"job_id": job_id}),
                         "attributes": {"ApproximateReceiveCount": str(receives)}, "eventSource": "aws:sqs"}]}


def complete(handlers, sandbox, body=VEO):
    job, task = submitted_task(handlers, sandbox, body)
    sandbox.force_status(task.task_id, "completed")
    task = sandbox.tasks[task.task_id]
    done = webhook_event(task, freepik_body(task, "COMPLETED", [sandbox.result_url(task)]),
                         secret=sandbox.config.freepik_webhook_secret)
    assert call(handlers["callback"], done)[1]["status"] == "storing"
    return job, task


def test_transfer_streams_the_video_into_s3_and_succeeds(aws, sandbox, handlers):
    job, _ = complete(handlers, sandbox)
    assert handlers["transfer"](sqs_event(job["id"]), Context()) == {"batchItemFailures": []}
    [item] = job_items(aws)
    assert item["status"] == "succeeded"
    [output] = item["outputs"]
    stored = boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=output["key"])
    data = stored["Body"].read()
    assert data == sandbox.config.video_bytes
    assert output["sha256"] == hashlib.sha256(data).hexdigest() == sandbox.served_sha256
    assert output["bytes"] == len(data) and output["content_type"] == "video/mp4"
    _, read = call(handlers["api"], api_event("GET", f"/v1/jobs/{job['id']}", route="GET /v1/jobs/{id}",
                                              path_parameters={"id": job["id"]}))
    assert read["status"] == "succeeded" and read["outputs"][0]["download_url"].startswith("https://")
    # A redelivered message finds the job already stored and does nothing.
    assert handlers["transfer"](sqs_event(job["id"]), Context()) == {"batchItemFailures": []}
    # The video and its poster, once.
    assert len(boto3.client("s3").list_objects_v2(Bucket=aws.bucket_name).get("Contents", [])) == 2


def test_expired_link_fails_the_job_as_output_expired(aws, sandbox, handlers):
    sandbox.config.link_ttl_seconds = 0
    job, _ = complete(handlers, sandbox)
    time.sleep(0.01)
    assert handlers["transfer"](sqs_event(job["id"]), Context()) == {"batchItemFailures": []}
    [item] = job_items(aws)
    assert item["status"] == "failed" and item["error"]["code"] == "output_expired"
    assert boto3.client("s3").list_objects_v2(Bucket=aws.bucket_name).get("KeyCount") == 0


def test_failed_copy_is_retried_then_recorded_on_the_last_attempt(aws, sandbox, handlers, monkeypatch):
    from reelhook.services import transfer

    job, _ = complete(handlers, sandbox)

    def broken(*args, **kwargs):
        raise ConnectionError("network down")

    monkeypatch.setattr(transfer, "copy_output", broken)
    monkeypatch.setattr(transfer, "RETRY_DELAYS", (0.0, 0.0))
    retry = {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert handlers["transfer"](sqs_event(job["id"], receives=1), Context()) == retry
    assert job_items(aws)[0]["status"] == "storing"
    assert handlers["transfer"](sqs_event(job["id"], receives=5), Context()) == retry
    [item] = job_items(aws)
    assert item["status"] == "failed" and item["error"]["code"] == "transfer_failed"
    assert "network down" in item["error"]["message"]


def test_provider_failure_fails_the_job(aws, sandbox, handlers):
    _, task = submitted_task(handlers, sandbox)
    event = webhook_event(task, freepik_body(task, "FAILED"), secret=sandbox.config.freepik_webhook_secret)
    assert call(handlers["callback"], event)[1]["status"] == "failed"
    [item] = job_items(aws)
    assert item["error"]["code"] == "provider_failed"
    # It stays in the active index only until the notifier (not run here) records its event.
    assert "event_published_at" not in item and item["next_check_at"] > time.time() + 200


def test_models_and_openapi_are_served(aws, handlers):
    status, catalog = call(handlers["api"], api_event("GET", "/v1/models"))
    assert status == 200 and len(catalog["models"]) >= 12
    status, doc = call(handlers["api"], api_event("GET", "/v1/openapi.json"))
    assert status == 200 and "/v1/jobs" in doc["paths"]


def _refused_without_a_trace(aws, sandbox, answer, status):
    assert answer["statusCode"] == status, answer["body"][:500]
    assert len(answer["body"]) < 20_000  # a short answer, whatever the request
    assert job_items(aws) == [] and list(sandbox.tasks) == []
    return json.loads(answer["body"])["error"]


def test_hostile_bodies_get_a_4xx_that_says_why_and_change_nothing(aws, sandbox, handlers):
    def post(raw, headers=None):
        return handlers["api"](api_event("POST", "/v1/jobs", raw, headers), Context())

    nested = _refused_without_a_trace(aws, sandbox, post("[" * 100_000 + "]" * 100_000), 400)
    assert "nests 100000 levels" in nested["message"]
    deep_field = _refused_without_a_trace(aws, sandbox, post(json.dumps(VEO | {"options": {}})[:-1].replace(
        '"options": {}', '"options": ' + '{"a": ' * 2_000 + "1" + "}" * 2_000) + "}"), 400)
    assert "levels deep" in deep_field["message"]
    unstorable = _refused_without_a_trace(aws, sandbox, post(json.dumps(VEO | {"seed": 1e-300})), 422)
    assert unstorable["fields"] == [{"field": "seed", "message": "is out of range: DynamoDB stores magnitudes "
                                                                 "from 1E-130 to below 1E126"}]
    huge_int = _refused_without_a_trace(aws, sandbox, post(json.dumps(VEO)[:-1] + ', "seed": ' + "9" * 5000 + "}"),
                                        422)
    assert huge_int["fields"][0]["field"] == "seed"
    where = _refused_without_a_trace(aws, sandbox, post('{"model": "x",, }'), 400)
    assert "line 1, column 15" in where["message"] and "NaN" not in where["message"]
    as_text = _refused_without_a_trace(aws, sandbox, post(json.dumps(VEO), {"content-type": "text/plain"}), 415)
    assert "application/json" in as_text["message"]
    big = _refused_without_a_trace(aws, sandbox, post(json.dumps(VEO | {"prompt": "x" * 1_400_000})), 413)
    assert "at most" in big["message"]
    many = _refused_without_a_trace(aws, sandbox, post(json.dumps(VEO | {f"f{i:05d}" + "y" * 300: 1
                                                                         for i in range(600)})), 422)
    assert len(many["fields"]) == 50 and many["fields_omitted"] == 550  # 600 unknown fields
    assert all(len(f["field"]) <= 201 for f in many["fields"])


def test_json_with_a_charset_or_a_json_suffix_is_json(aws, sandbox, handlers):
    for content_type in ("application/json; charset=utf-8", "application/merge+json", "Application/JSON"):
        answer = handlers["api"](api_event("POST", "/v1/jobs", VEO, {"content-type": content_type}), Context())
        assert answer["statusCode"] == 202, content_type
