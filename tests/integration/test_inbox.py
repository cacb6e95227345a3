"""The S3 inbox: manifests under inbox/ become jobs (once), refusals and status land in outbox/.

moto in-process plays S3 and DynamoDB; each test puts a manifest and hands the inbox
function the EventBridge "Object Created" event S3 would send for it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
import pytest

from tests.conftest import Context, api_event, table_items
from tests.integration.notify_support import StreamReader, bus_events, bus_target, enable_integrations, run_notifier
from tests.integration.test_handlers import VEO, call, create, freepik_body, sqs_event, webhook_event

KEY = "inbox/orders/order-1234.json"


@pytest.fixture
def stack(aws, monkeypatch):
    enable_integrations(monkeypatch, aws)
    return aws


def s3() -> Any:
    return boto3.client("s3")


def put(resources, key: str, body: Any) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    etag = s3().put_object(Bucket=resources.bucket_name, Key=key, Body=raw)["ETag"].strip('"')
    return {"key": key, "size": len(raw), "etag": etag}


def object_created(bucket: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3",
            "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {"version": "0", "bucket": {"name": bucket}, "object": obj, "reason": "PutObject"}}


def drop(handlers, resources, key: str, body: Any) -> dict[str, Any]:
    obj = put(resources, key, body)
    return handlers["inbox"](object_created(resources.bucket_name, obj), Context())


def document(resources, key: str) -> dict[str, Any] | None:
    try:
        return json.loads(s3().get_object(Bucket=resources.bucket_name, Key=key)["Body"].read())
    except s3().exceptions.NoSuchKey:
        return None


def outbox(resources) -> list[str]:
    listed = s3().list_objects_v2(Bucket=resources.bucket_name, Prefix="outbox/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def jobs(resources) -> list[dict[str, Any]]:
    return [i for i in table_items(resources) if i["pk"].startswith("job#")]


def test_a_manifest_becomes_one_job_however_often_its_event_comes(stack, sandbox, handlers):
    manifest = VEO | {"client_reference": "order-1234"}
    obj = put(stack, KEY, manifest)
    event = object_created(stack.bucket_name, obj)
    first = handlers["inbox"](event, Context())
    assert first["outcome"] == "accepted" and first["status_code"] == 202
    # At-least-once: the same event again, and the same manifest uploaded again.
    assert handlers["inbox"](event, Context())["job_id"] == first["job_id"]
    assert drop(handlers, stack, KEY, manifest)["job_id"] == first["job_id"]

    [item] = jobs(stack)
    assert item["id"] == first["job_id"] and item["status"] == "submitted"
    assert item["origin"] == {"kind": "s3_inbox", "bucket": stack.bucket_name, "key": KEY}
    assert item["client_reference"] == "order-1234"
    assert item["events"][0] == item["events"][0] | {"status": "queued", "source": "inbox"}
    [task] = sandbox.tasks.values()
    assert task.body["image_urls"] == VEO["reference_images"] and task.body["prompt"] == VEO["prompt"]
    assert outbox(stack) == []  # the status document is the notifier's


def test_the_status_document_follows_every_change(stack, sandbox, handlers):
    target = bus_target(stack)
    reader = StreamReader(stack)
    status_key = "outbox/orders/order-1234.json.status.json"
    job_id = drop(handlers, stack, KEY, VEO)["job_id"]
    assert run_notifier(handlers, reader) == {"batchItemFailures": []}
    assert document(stack, status_key)["status"] == "submitted"

    # Inbox jobs are in a namespace of their own: no API caller reads (or cancels) them.
    assert call(handlers["api"], _get(job_id))[0] == 404
    assert call(handlers["api"], api_event("POST", f"/v1/jobs/{job_id}/cancel", route="POST /v1/jobs/{id}/cancel",
                                           path_parameters={"id": job_id}))[0] == 404
    task = sandbox.tasks[stored_job(job_id)["provider_task_id"]]
    secret = sandbox.config.freepik_webhook_secret
    call(handlers["callback"], webhook_event(task, freepik_body(task, "IN_PROGRESS"), secret=secret))
    assert run_notifier(handlers, reader) == {"batchItemFailures": []}
    assert document(stack, status_key)["status"] == "running"

    task = sandbox.force_status(task.task_id, "completed")
    call(handlers["callback"], webhook_event(task, freepik_body(task, "COMPLETED", [sandbox.result_url(task)]),
                                             secret=secret))
    assert handlers["transfer"](sqs_event(job_id), Context()) == {"batchItemFailures": []}
    assert run_notifier(handlers, reader) == {"batchItemFailures": []}
    final = document(stack, status_key)
    # The stored document is the public job without presigned URLs (they would expire in it).
    assert final == stored_job(job_id)
    assert final["status"] == "succeeded" and "download_url" not in final["outputs"][0]
    assert [e["status"] for e in final["events"]] == ["queued", "submitted", "running", "storing", "succeeded"]
    assert outbox(stack) == [status_key]
    assert [(e["detail-type"], e["detail"]["id"]) for e in bus_events(target)] == [("Video Job Succeeded", job_id)]


def stored_job(job_id: str) -> dict[str, Any]:
    """The job as the API would show it to its owner, without the (expiring) presigned URLs."""
    from reelhook.adapters.jobs_table import JobStore
    from reelhook.views import public_job

    job = JobStore().get(job_id, consistent=True)
    assert job is not None and job["owner"] == "inbox"
    return public_job(job, presign=False)


def _get(job_id):
    return api_event("GET", f"/v1/jobs/{job_id}", route="GET /v1/jobs/{id}", path_parameters={"id": job_id})


def test_a_refused_manifest_leaves_the_api_error_body_until_it_is_fixed(stack, sandbox, handlers):
    wrong = VEO | {"resolution": "8k"}
    answer = drop(handlers, stack, KEY, wrong)
    assert answer == {"outcome": "rejected", "key": KEY, "status_code": 422}
    error_key = "outbox/orders/order-1234.json.error.json"
    refused = document(stack, error_key)
    api_status, api_body = create(handlers, wrong)  # what the API answers for the same body
    assert api_status == 422
    assert refused == api_body | {"status_code": 422, "manifest": f"s3://{stack.bucket_name}/{KEY}"}
    assert jobs(stack) == [] and sandbox.tasks == {}

    # Fixed and put again under the same key: accepted, and the refusal is gone.
    fixed = drop(handlers, stack, KEY, VEO)
    assert fixed["outcome"] == "accepted"
    assert document(stack, error_key) is None
    assert [j["id"] for j in jobs(stack)] == [fixed["job_id"]]


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"{not json", 400, "invalid_json"),
    (b"[1, 2]", 400, "invalid_json"),
    (b"", 400, "invalid_json"),
    (json.dumps({"model": "acme/none", "prompt": "x"}).encode(), 422, "validation_error"),
])
def test_manifests_that_are_not_jobs_are_refused(stack, sandbox, handlers, body, status, code):
    assert drop(handlers, stack, "inbox/x.json", body)["status_code"] == status
    assert document(stack, "outbox/x.json.error.json")["error"]["code"] == code
    assert jobs(stack) == [] and sandbox.tasks == {}


def test_oversized_manifests_are_refused_unread(stack, sandbox, handlers):
    from reelhook.services.inbox import MAX_MANIFEST_BYTES

    big = VEO | {"prompt": "x" * 40_000, "negative_prompt": "y" * 40_000,
                 "options": {f"o{i}": "z" * 8000 for i in range(30)}}
    obj = put(stack, "inbox/big.json", big)
    assert obj["size"] > MAX_MANIFEST_BYTES
    assert handlers["inbox"](object_created(stack.bucket_name, obj), Context())["status_code"] == 413
    # An event that understates the size does not get past the cap either.
    assert handlers["inbox"](object_created(stack.bucket_name, obj | {"size": 10}), Context())["status_code"] == 413
    assert document(stack, "outbox/big.json.error.json")["error"]["code"] == "manifest_too_large"
    assert jobs(stack) == []


def test_the_same_key_with_another_body_is_a_conflict_not_a_second_job(stack, sandbox, handlers):
    first = drop(handlers, stack, KEY, VEO)
    again = drop(handlers, stack, KEY, VEO | {"prompt": "something else"})
    assert again == {"outcome": "rejected", "key": KEY, "status_code": 409}
    refused = document(stack, "outbox/orders/order-1234.json.error.json")
    assert refused["error"]["code"] == "idempotency_key_reused" and first["job_id"] not in json.dumps(refused)
    assert len(jobs(stack)) == 1 and len(sandbox.tasks) == 1


def test_keys_with_spaces_whether_or_not_the_event_encodes_them(stack, sandbox, handlers):
    from reelhook.services.inbox import idempotency_key

    key = "inbox/client uploads/order (7).json"
    obj = put(stack, key, VEO)
    encoded = handlers["inbox"](object_created(stack.bucket_name, obj | {"key": "inbox/client+uploads/order+%287%29.json"}),
                                Context())
    raw = handlers["inbox"](object_created(stack.bucket_name, obj), Context())
    assert encoded["outcome"] == raw["outcome"] == "accepted" and encoded["job_id"] == raw["job_id"]
    assert encoded["key"] == key
    assert idempotency_key(key) == "s3:sha256:" + hashlib.sha256(key.encode()).hexdigest()
    assert idempotency_key("inbox/a.json") == "s3:inbox/a.json"
    [item] = jobs(stack)
    assert item["origin"]["key"] == key


def test_events_outside_the_inbox_are_ignored(stack, sandbox, handlers):
    obj = put(stack, "videos/job_x/0.json", VEO)
    folder = {"key": "inbox/folder/", "size": 0, "etag": "d41d8cd98f00b204e9800998ecf8427e"}
    for bucket, described in ((stack.bucket_name, obj), ("someone-elses-bucket", obj | {"key": KEY}),
                              (stack.bucket_name, folder), (stack.bucket_name, obj | {"key": "inbox/gone.json"})):
        assert handlers["inbox"](object_created(bucket, described), Context())["outcome"] == "ignored"
    assert jobs(stack) == [] and outbox(stack) == []
