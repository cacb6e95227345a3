"""Soak: 300 jobs through the local stack, half POSTed to the API and half put in the S3 inbox,
every one with a notify_url. Everything that hangs off the table's stream must arrive for
every job: the outbox status document (inbox jobs), the notify_url POST and the EventBridge
event. A stream driver that goes quiet after the first records fails this at once."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LocalStack, StackOptions
from tests.integration.notify_support import Receiver

pytestmark = pytest.mark.e2e
JOBS = 300
IMG = "https://example.com/ref.png"
MODELS = (
    {"model": "freepik/veo-3-1-reference-to-video", "prompt": "walk", "reference_images": [IMG]},  # webhooks
    {"model": "uniall/veo3.1-video-720p", "prompt": "a lighthouse at dusk"},  # polled
    {"model": "aihubmax/veo-3.1-reference-to-video", "prompt": "wave", "reference_images": [IMG]},
)


def test_every_job_gets_its_status_document_notification_and_event():
    options = StackOptions(sandbox=SandboxConfig(step_seconds=0.2), schedule_seconds=0.5)
    with LocalStack(options) as stack, Receiver() as receiver:
        assert stack.resources is not None
        resources = stack.resources
        sqs, events, s3 = stack.client("sqs"), stack.client("events"), stack.client("s3", connections=16)
        queue_url = sqs.create_queue(QueueName="soak-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="soak", EventBusName=resources.event_bus_name,
                        EventPattern=json.dumps({"source": ["reelhook"]}))
        events.put_targets(Rule="soak", EventBusName=resources.event_bus_name, Targets=[{"Id": "q", "Arn": queue_arn}])

        def submit(index: int) -> tuple[str, str]:
            body = {**MODELS[index % len(MODELS)], "notify_url": receiver.url, "client_reference": f"soak-{index}"}
            if index % 2:
                key = f"inbox/soak/{index}.json"
                s3.put_object(Bucket=resources.bucket_name, Key=key, Body=json.dumps(body).encode())
                return "inbox", key
            answer = httpx.post(f"{stack.api_url}/v1/jobs", json=body, timeout=60)
            assert answer.status_code == 202, answer.text
            return "api", answer.json()["id"]

        with ThreadPoolExecutor(16) as pool:
            submitted = list(pool.map(submit, range(JOBS)))
        inbox_keys = [ref for kind, ref in submitted if kind == "inbox"]

        events_seen: dict[str, str] = {}
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", []):
                detail = json.loads(message["Body"])["detail"]
                events_seen[detail["client_reference"]] = detail["status"]
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            notified = {json.loads(r.body)["data"]["client_reference"] for r in receiver.requests}
            if len(events_seen) == JOBS and len(notified) == JOBS:
                break
        statuses = _status_documents(s3, resources.bucket_name, inbox_keys)

    expected = {f"soak-{index}" for index in range(JOBS)}
    assert set(events_seen) == expected, f"{len(expected - set(events_seen))} jobs had no EventBridge event"
    assert set(events_seen.values()) == {"succeeded"}, events_seen
    notified = [json.loads(r.body)["data"]["client_reference"] for r in receiver.requests]
    assert set(notified) == expected, f"{len(expected - set(notified))} jobs had no notify_url POST"
    # At least once: a repeat (a retried delivery) carries the same webhook-id, for the receiver to drop.
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == JOBS
    assert statuses == dict.fromkeys(inbox_keys, "succeeded"), "an inbox job has no final status document"


def _status_documents(s3: Any, bucket: str, keys: list[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for key in keys:
        try:
            document = s3.get_object(Bucket=bucket, Key=f"outbox/{key.removeprefix('inbox/')}.status.json")
            found[key] = json.loads(document["Body"].read())["status"]
        except s3.exceptions.NoSuchKey:
            found[key] = None
    return found
