"""The sample events in events/ stay valid: each one runs through the real handler.

The files hold placeholder job ids, task ids, tokens and signatures; each test creates a
real job (moto + the provider sandbox), puts its ids and token into the event, re-signs
Freepik's webhook with the sandbox's secret, invokes the handler and checks what the
system did: the HTTP answer, the job in DynamoDB, the message in SQS, the object in S3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest

from tests.conftest import Context, queue_messages, reset_caches, table_items

EVENTS = Path(__file__).resolve().parents[2] / "events"
JOB_ID = re.compile(r"job_[0-9a-f]{32}")


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def all_events() -> dict[str, dict[str, Any]]:
    return {path.name: load(path.name) for path in sorted(EVENTS.glob("*.json"))}


def retarget(event: dict[str, Any], replacements: dict[str, str]) -> dict[str, Any]:
    """The event with placeholder values (ids, tokens) replaced everywhere, body included."""
    text = json.dumps(event)
    for old, new in replacements.items():
        assert old in text, f"{old!r} is not in the event"
        text = text.replace(old, new)
    return json.loads(text)


def with_body(event: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(body, separators=(",", ":"))
    return event | {"body": raw, "headers": event["headers"] | {"content-length": str(len(raw.encode()))}}


def body_of(event: dict[str, Any]) -> dict[str, Any]:
    return json.loads(event["body"])


def resign(event: dict[str, Any], secret: str) -> dict[str, Any]:
    """Sign the body as Freepik does (Standard Webhooks): HMAC-SHA256 of "id.timestamp.body"."""
    headers = event["headers"]
    timestamp = str(int(time.time()))
    signed = f"{headers['webhook-id']}.{timestamp}.{event['body']}".encode()
    mac = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    return event | {"headers": headers | {"webhook-timestamp": timestamp, "webhook-signature": f"v1,{mac}"}}


def invoke(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = handler(event, Context())
    return answer["statusCode"], json.loads(answer["body"])


def job_item(aws: Any, job_id: str) -> dict[str, Any]:
    [item] = [i for i in table_items(aws) if i["pk"] == f"job#{job_id}"]
    return item


def create_job(handlers: dict[str, Any], sandbox: Any, body: dict[str, Any] | None = None):
    """A job made through api-create-job.json (optionally with another body); the job and its task."""
    event = load("api-create-job.json")
    if body is not None:
        event = with_body(event, body)
    status, job = invoke(handlers["api"], event)
    assert status == 202, job
    assert job["status"] == "submitted", job
    return job, sandbox.tasks[job["provider_task_id"]]


def callback_event(name: str, job_id: str, task: Any) -> dict[str, Any]:
    """A callback event aimed at a real job, with the token the provider was given."""
    event = load(name)
    token = parse_qs(urlsplit(task.webhook_url).query)["token"][0]
    placeholder_task = body_of(event).get("task_id") or body_of(event)["id"]
    return retarget(event, {event["pathParameters"]["job_id"]: job_id,
                            event["queryStringParameters"]["token"]: token,
                            placeholder_task: task.task_id})


# ---------------------------------------------------------------------------- the files


def _route_pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


def test_every_function_and_route_has_a_well_formed_event():
    from reelhook_local.aws_resources import load_template
    from reelhook_local.front import event_matches, function_events
    from reelhook_local.template import functions

    template = load_template()
    stream_functions = {fid: [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
                        for fid, props in function_events(template, "DynamoDB")}
    rule_functions = {fid: props["Pattern"] for fid, props in function_events(template, "EventBridgeRule")}
    events = all_events()
    assert events, "events/ holds no sample events"
    assert {p.name for p in EVENTS.iterdir()} == set(events) | {"README.md"}
    fns = functions()
    routes = {f"{r.method} {r.path}": r for fn in fns.values() for r in fn.routes}
    covered: dict[str, set[str]] = {fid: set() for fid in fns}

    for name, event in events.items():
        for job_id in re.findall(r"\bjob_(?!id\b)\w+", json.dumps(event)):
            assert JOB_ID.fullmatch(job_id), f"{name}: {job_id} is not job_ + 32 lowercase hex"
        if "routeKey" in event:  # API Gateway HTTP API, payload 2.0
            assert event["version"] == "2.0", name
            route = routes.get(event["routeKey"])
            assert route is not None, f"{name}: no route {event['routeKey']!r} in template.yaml"
            context = event["requestContext"]
            method, path = event["routeKey"].split(" ", 1)
            assert context["routeKey"] == event["routeKey"] and context["http"]["method"] == method, name
            assert context["http"]["path"] == event["rawPath"], name
            match = _route_pattern(path).match(event["rawPath"])
            assert match, f"{name}: {event['rawPath']} does not fit {path}"
            assert (event.get("pathParameters") or {}) == match.groupdict(), name
            assert event["rawQueryString"] == urlencode(event.get("queryStringParameters") or {}), name
            assert all(h == h.lower() for h in event["headers"]), f"{name}: HTTP API lower-cases header names"
            if event.get("body") is not None:
                assert not event["isBase64Encoded"]
                body_of(event)  # the body is JSON
                assert event["headers"]["content-length"] == str(len(event["body"].encode())), name
            covered[route.function].add(name)
        elif event.get("Records") and event["Records"][0]["eventSource"] == "aws:sqs":
            [record] = event["Records"]
            assert record["eventSourceARN"].startswith("arn:aws:sqs:"), name
            assert int(record["attributes"]["ApproximateReceiveCount"]) >= 1, name
            assert JOB_ID.fullmatch(json.loads(record["body"])["job_id"]), name
            # The queue's logical id is in its name (CloudFormation names it <stack>-<id>-<suffix>).
            queue_name = record["eventSourceARN"].rsplit(":", 1)[1]
            feeds = [fid for fid, fn in fns.items() if any(f"-{q}-" in queue_name for q, _ in fn.queues)]
            assert feeds, f"{name}: no function consumes {queue_name}"
            for fid in feeds:
                covered[fid].add(name)
        elif event.get("Records") and event["Records"][0]["eventSource"] == "aws:dynamodb":
            [record] = event["Records"]
            assert re.fullmatch(r"arn:aws:dynamodb:[\w-]+:\d{12}:table/[\w.-]+/stream/[\w:.-]+",
                                record["eventSourceARN"]), name
            data = record["dynamodb"]
            assert data["StreamViewType"] == "NEW_AND_OLD_IMAGES" and data["SequenceNumber"].isdigit(), name
            assert data["Keys"]["pk"] == data["NewImage"]["pk"], name
            # Only records the mapping's filter criteria let through ever reach the function.
            for fid, filters in stream_functions.items():
                assert any(event_matches(f, record) for f in filters), f"{name}: {fid}'s filters drop it"
                covered[fid].add(name)
        elif event.get("detail-type") == "Object Created":
            assert event["source"] == "aws.s3", name
            for fid, pattern in rule_functions.items():
                bucket = event["detail"]["bucket"]["name"]
                concrete = pattern | {"detail": pattern["detail"] | {"bucket": {"name": [bucket]}}}
                assert event_matches(concrete, event), f"{name}: {fid}'s rule does not match it"
                covered[fid].add(name)
        elif event.get("detail-type") == "Scheduled Event":
            assert event["source"] in {"aws.events", "aws.scheduler"}, name
            for fid in (fid for fid, fn in fns.items() if fn.scheduled):
                covered[fid].add(name)
        else:
            pytest.fail(f"{name}: not an HTTP API, SQS, DynamoDB stream, S3 or scheduled event")
        # File names start with the function they feed: api-, callback-, transfer-, poller-, inbox-, ...
        prefix = name.split("-", 1)[0]
        assert any(name in covered[fid] and fid.removesuffix("Function").lower() == prefix for fid in fns), name

    assert not [fid for fid, names in covered.items() if not names], covered
    with_event = {event["routeKey"] for event in events.values() if "routeKey" in event}
    assert set(routes) <= with_event, f"routes without a sample event: {set(routes) - with_event}"
    assert (EVENTS / "README.md").is_file()
    readme = (EVENTS / "README.md").read_text()
    assert all(name in readme for name in events), "events/README.md does not list every event"


# ---------------------------------------------------------------------------- the API


def test_api_events_create_read_and_describe(aws, sandbox, handlers, monkeypatch):
    from reelhook_local.template import functions

    # As deployed with CallbackBaseUrl left empty: the callback URL comes from the request's domain.
    monkeypatch.setenv("CALLBACK_BASE_URL", "")
    reset_caches()
    event = load("api-create-job.json")
    job, task = create_job(handlers, sandbox)
    assert job_item(aws, job["id"])["status"] == "submitted"
    domain = event["requestContext"]["domainName"]
    assert task.webhook_url.startswith(f"https://{domain}/v1/callbacks/freepik/{job['id']}?token=")
    assert task.body["image_urls"] == body_of(event)["reference_images"]
    assert task.body["prompt"] == body_of(event)["prompt"]
    # The event's idempotency-key works: sending it again answers with the same job.
    status, again = invoke(handlers["api"], event)
    assert status == 202 and again["id"] == job["id"]
    assert len(sandbox.tasks) == 1

    read = load("api-get-job.json")
    status, body = invoke(handlers["api"], retarget(read, {read["pathParameters"]["id"]: job["id"]}))
    assert status == 200 and body["id"] == job["id"] and body["status"] == "submitted"
    # As shipped it names a job this stack does not have.
    assert invoke(handlers["api"], read)[0] == 404

    status, catalog = invoke(handlers["api"], load("api-list-models.json"))
    assert status == 200
    assert body_of(event)["model"] in {m["id"] for m in catalog["models"]}

    status, document = invoke(handlers["api"], load("api-openapi.json"))
    assert status == 200
    client_paths = {r.path for r in functions()["ApiFunction"].routes}
    assert client_paths <= set(document["paths"])


# ---------------------------------------------------------------------------- Freepik → S3


def test_freepik_callbacks_then_transfer_store_the_video(aws, sandbox, handlers):
    secret = sandbox.config.freepik_webhook_secret
    job, task = create_job(handlers, sandbox)

    running = callback_event("callback-freepik-in-progress.json", job["id"], task)
    # The shipped signature is a placeholder: without re-signing the webhook is refused.
    assert invoke(handlers["callback"], running)[0] == 401
    assert job_item(aws, job["id"])["status"] == "submitted"
    answer = invoke(handlers["callback"], resign(running, secret))
    assert answer == (200, {"job_id": job["id"], "applied": True, "status": "running"})
    assert job_item(aws, job["id"])["status"] == "running"

    task = sandbox.force_status(task.task_id, "completed")
    url = sandbox.result_url(task)
    done = callback_event("callback-freepik-completed.json", job["id"], task)
    done = resign(with_body(done, body_of(done) | {"generated": [url]}), secret)
    assert invoke(handlers["callback"], done) == (200, {"job_id": job["id"], "applied": True, "status": "storing"})
    item = job_item(aws, job["id"])
    assert item["status"] == "storing" and item["result_urls"] == [url]
    [message] = queue_messages(aws)
    assert json.loads(message["Body"]) == {"job_id": job["id"]}

    transfer = load("transfer-sqs.json")
    placeholder = json.loads(transfer["Records"][0]["body"])["job_id"]
    assert handlers["transfer"](retarget(transfer, {placeholder: job["id"]}), Context()) == {"batchItemFailures": []}
    item = job_item(aws, job["id"])
    assert item["status"] == "succeeded"
    [output] = item["outputs"]
    stored = boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=output["key"])["Body"].read()
    assert stored == sandbox.config.video_bytes


# ---------------------------------------------------------------------------- AIHubMax


def test_aihubmax_callback_is_believed_only_once_the_provider_confirms_it(aws, sandbox, handlers, monkeypatch):
    monkeypatch.setenv("AIHUBMAX_CALLBACKS", "true")  # otherwise AIHubMax is never given a callback URL
    reset_caches()
    job, task = create_job(handlers, sandbox, {
        "model": "aihubmax/veo-3.1-reference-to-video",
        "prompt": "A paper boat drifts down a rain-filled gutter, close-up, soft morning light",
        "reference_images": ["https://images.example.org/boats/paper-boat.jpg"],
    })
    assert task.webhook_url and f"/v1/callbacks/aihubmax/{job['id']}?token=" in task.webhook_url
    event = callback_event("callback-aihubmax-completed.json", job["id"], task)
    claimed = body_of(event)["results"]

    # The body says "completed", but the provider's own status (GET) says it is still running.
    sandbox.force_status(task.task_id, "running")
    assert invoke(handlers["callback"], event) == (200, {"job_id": job["id"], "applied": True, "status": "running"})
    item = job_item(aws, job["id"])
    assert item["status"] == "running" and not item.get("result_urls")
    assert queue_messages(aws) == []

    # Now the provider confirms it; the links stored are the provider's, not the body's.
    task = sandbox.force_status(task.task_id, "completed")
    assert invoke(handlers["callback"], event) == (200, {"job_id": job["id"], "applied": True, "status": "storing"})
    item = job_item(aws, job["id"])
    assert item["status"] == "storing"
    assert item["result_urls"] == [sandbox.result_url(task)] != claimed
    [message] = queue_messages(aws)
    assert json.loads(message["Body"]) == {"job_id": job["id"]}


# ---------------------------------------------------------------------------- the poller


def test_poller_schedule_event_moves_a_finished_uniall_job_on(aws, sandbox, handlers):
    job, task = create_job(handlers, sandbox, {"model": "uniall/veo3.1-video-720p", "prompt": "x"})
    assert task.webhook_url is None  # UniAll has no webhooks: only the poller learns of the result
    task = sandbox.force_status(task.task_id, "completed")
    boto3.client("dynamodb").update_item(  # due now, rather than after the first backoff
        TableName=aws.table_name, Key={"pk": {"S": f"job#{job['id']}"}},
        UpdateExpression="SET next_check_at = :zero", ExpressionAttributeValues={":zero": {"N": "0"}})

    answer = handlers["poller"](load("poller-schedule.json"), Context())
    assert answer == {"dispatched": 1, "outcomes": {"dispatched": 1, "dispatch_refused": 0}}
    [check] = queue_messages(aws, aws.poll_queue_url)
    assert json.loads(check["Body"])["job_id"] == job["id"]
    record = {"messageId": check["MessageId"], "body": check["Body"]}
    assert handlers["pollworker"]({"Records": [record, record]}, Context()) == {"batchItemFailures": []}
    item = job_item(aws, job["id"])
    assert item["status"] == "storing" and item["result_urls"] == [sandbox.result_url(task)]
    [message] = queue_messages(aws)
    assert json.loads(message["Body"]) == {"job_id": job["id"]}


# ---------------------------------------------------------------------------- S3 inbox, notifications


def test_inbox_event_submits_the_manifest_it_names(aws, sandbox, handlers, monkeypatch):
    from tests.integration.notify_support import enable_integrations

    enable_integrations(monkeypatch, aws)
    event = load("inbox-object-created.json")
    placeholder = event["detail"]["bucket"]["name"]
    key = event["detail"]["object"]["key"]
    manifest = body_of(load("api-create-job.json"))  # a manifest is what POST /v1/jobs takes
    boto3.client("s3").put_object(Bucket=aws.bucket_name, Key=key, Body=json.dumps(manifest).encode())
    event = retarget(event, {placeholder: aws.bucket_name})

    answer = handlers["inbox"](event, Context())
    assert answer["outcome"] == "accepted" and JOB_ID.fullmatch(answer["job_id"])
    item = job_item(aws, answer["job_id"])
    assert item["status"] == "submitted" and item["origin"]["key"] == key
    assert item["request"]["prompt"] == manifest["prompt"]
    # S3 and EventBridge deliver at least once: the same event again is the same job.
    assert handlers["inbox"](event, Context())["job_id"] == answer["job_id"]
    assert len(sandbox.tasks) == 1
    # As shipped, it names a bucket this stack does not have: nothing happens.
    assert handlers["inbox"](load("inbox-object-created.json"), Context())["outcome"] == "ignored"


def test_notifier_stream_event_writes_the_outbox_publishes_and_queues(aws, handlers, monkeypatch):
    from tests.integration.notify_support import bus_events, bus_target, enable_integrations, notify_messages

    enable_integrations(monkeypatch, aws)
    target = bus_target(aws)
    event = load("notifier-dynamodb-stream.json")
    [record] = event["Records"]
    new_image = record["dynamodb"]["NewImage"]
    placeholder = new_image["origin"]["M"]["bucket"]["S"]
    job_id = new_image["id"]["S"]
    event = retarget(event, {placeholder: aws.bucket_name})

    assert handlers["notifier"](event, Context()) == {"batchItemFailures": []}
    origin_key = new_image["origin"]["M"]["key"]["S"]
    status_key = "outbox/" + origin_key.removeprefix("inbox/") + ".status.json"
    stored = json.loads(boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=status_key)["Body"].read())
    assert stored["id"] == job_id and stored["status"] == "succeeded"
    assert stored["outputs"][0]["s3_uri"].startswith(f"s3://{aws.bucket_name}/videos/{job_id}/")
    [published] = bus_events(target)
    assert published["detail-type"] == "Video Job Succeeded" and published["detail"] == stored
    [message] = notify_messages(aws)
    assert json.loads(message["Body"]) == {"job_id": job_id, "status": "succeeded", "attempt": 1}


def test_notify_event_posts_a_verifiable_notification(aws, sandbox, handlers, monkeypatch):
    from standardwebhooks.webhooks import Webhook

    from tests.integration.notify_support import Receiver, enable_integrations, whsec

    enable_integrations(monkeypatch, aws)
    with Receiver() as receiver:
        body = body_of(load("api-create-job.json")) | {"notify_url": receiver.url}
        job, task = create_job(handlers, sandbox, body)
        task = sandbox.force_status(task.task_id, "completed")
        done = callback_event("callback-freepik-completed.json", job["id"], task)
        done = resign(with_body(done, body_of(done) | {"generated": [sandbox.result_url(task)]}),
                      sandbox.config.freepik_webhook_secret)
        assert invoke(handlers["callback"], done)[1]["status"] == "storing"
        transfer = load("transfer-sqs.json")
        placeholder = json.loads(transfer["Records"][0]["body"])["job_id"]
        handlers["transfer"](retarget(transfer, {placeholder: job["id"]}), Context())

        notify = load("notify-sqs.json")
        placeholder = json.loads(notify["Records"][0]["body"])["job_id"]
        assert handlers["notify"](retarget(notify, {placeholder: job["id"]}), Context()) == {"batchItemFailures": []}
        [request] = receiver.requests
    payload = Webhook(whsec(aws)).verify(request.body, request.headers)
    assert payload["type"] == "video.job.succeeded" and payload["data"]["id"] == job["id"]
    [attempt] = job_item(aws, job["id"])["notifications"]
    assert attempt["outcome"] == "delivered" and attempt["status_code"] == 200
    # As shipped, it names a job this stack does not have: nothing is sent.
    assert handlers["notify"](load("notify-sqs.json"), Context()) == {"batchItemFailures": []}
