"""End to end through the local stack: a manifest put in the S3 inbox becomes a job whose
status document follows it in the outbox; when it succeeds the job's notify_url receives a
signed POST (verified with ``standardwebhooks``) and a rule on the job event bus delivers
"Video Job Succeeded" to an SQS queue.

Locally the front's S3InboxDriver stands in for S3 -> EventBridge and its StreamDriver for
the DynamoDB stream mapping (see reelhook_local/front.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from reelhook.adapters.jobs_table import from_dynamo
from reelhook.adapters.notify_secret import whsec
from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LocalStack, StackOptions
from tests.integration.notify_support import Receiver

pytestmark = pytest.mark.e2e
IMG = "https://example.com/ref.png"


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(sandbox=SandboxConfig(step_seconds=0.1), schedule_seconds=0.3)
    with LocalStack(options) as running:
        yield running


def read_json(stack: LocalStack, key: str) -> dict[str, Any] | None:
    assert stack.resources is not None
    s3 = stack.client("s3")
    try:
        return json.loads(s3.get_object(Bucket=stack.resources.bucket_name, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def wait_for(check: Any, timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"waited {timeout} s for {what}")


def test_inbox_manifest_to_outbox_notify_url_and_eventbridge(stack):
    assert stack.resources is not None
    resources = stack.resources
    sqs, events = stack.client("sqs"), stack.client("events")
    # What a team would deploy next to reelhook: a rule on the job bus feeding its own queue.
    queue_url = sqs.create_queue(QueueName="video-jobs-done")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="video-jobs-done", EventBusName=resources.event_bus_name,
                    EventPattern=json.dumps({"source": ["reelhook"], "detail-type": ["Video Job Succeeded"]}))
    events.put_targets(Rule="video-jobs-done", EventBusName=resources.event_bus_name,
                       Targets=[{"Id": "queue", "Arn": queue_arn}])

    with Receiver() as receiver:
        manifest = {"model": "freepik/veo-3-1-reference-to-video", "prompt": "A kite over the dunes",
                    "reference_images": [IMG], "notify_url": receiver.url, "client_reference": "kite-1"}
        s3 = stack.client("s3")
        s3.put_object(Bucket=resources.bucket_name, Key="inbox/campaign/kite.json", Body=json.dumps(manifest).encode())
        s3.put_object(Bucket=resources.bucket_name, Key="inbox/campaign/broken.json",
                      Body=json.dumps({"model": "freepik/veo-3-1-reference-to-video"}).encode())

        status_key = "outbox/campaign/kite.json.status.json"
        done = wait_for(lambda: (doc := read_json(stack, status_key)) and doc["status"] in {"succeeded", "failed"}
                        and doc, what="the status document to reach a final status")
        assert done["status"] == "succeeded", done
        assert done["client_reference"] == "kite-1"
        assert done["events"][-1]["status"] == "succeeded" and done["events"][0]["status"] == "queued"
        assert done["events"][0]["source"] == "inbox"
        [output] = done["outputs"]
        assert output["sha256"] == stack.sandbox.served_sha256 and "download_url" not in output

        refused = wait_for(lambda: read_json(stack, "outbox/campaign/broken.json.error.json"), what="the error document")
        assert refused["status_code"] == 422 and refused["error"]["code"] == "validation_error"
        # Every missing field is named: the prompt (Veo requires one) and the reference images.
        assert {f["field"] for f in refused["error"]["fields"]} == {"prompt", "reference_images"}

        [request] = wait_for(lambda: receiver.requests, what="the notify_url POST")
    secret = json.loads(stack.client("secretsmanager").get_secret_value(
        SecretId=resources.notify_secret_id)["SecretString"])
    payload = Webhook(whsec(secret["signing_key"].encode())).verify(request.body, request.headers)
    assert payload["type"] == "video.job.succeeded" and payload["data"]["id"] == done["id"]
    assert request.headers["webhook-id"] == f"{done['id']}.succeeded"

    def received() -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue_url).get("Messages", [])]

    [event] = wait_for(received, what="the EventBridge event in the rule's queue")
    assert event["detail-type"] == "Video Job Succeeded" and event["source"] == "reelhook"
    assert event["detail"]["id"] == done["id"] and event["detail"]["status"] == "succeeded"

    item = from_dynamo(stack.client("dynamodb").get_item(
        TableName=resources.table_name, Key={"pk": {"S": f"job#{done['id']}"}})["Item"])
    assert item["origin"] == {"kind": "s3_inbox", "bucket": resources.bucket_name, "key": "inbox/campaign/kite.json"}
    assert [(a["outcome"], a["status_code"]) for a in item["notifications"]] == [("delivered", 200)]
    # Nothing failed along the way.
    for url in (resources.inbox_dlq_url, resources.notifier_failure_queue_url, resources.notify_dlq_url):
        assert not sqs.receive_message(QueueUrl=url).get("Messages"), url
