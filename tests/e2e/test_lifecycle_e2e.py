"""Failover after 429s and a webhook after cancel, through the local stack: real HTTP between
the front, moto's server and the provider sandbox, the sandbox's own logs as the witness."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LocalStack, StackOptions
from tests.e2e.test_integrations import wait_for
from tests.e2e.test_local_stack import wait

pytestmark = pytest.mark.e2e
VEO = "veo-3.1/reference-to-video"
REFUSALS_BEFORE_FAILOVER = 3
# Longer than the stack's reconcile delay: a reconciler that re-queued a refused job early
# would send it again before the provider's Retry-After.
RETRY_AFTER_SECONDS = 3


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(sandbox=SandboxConfig(step_seconds=0.1), schedule_seconds=0.3, reconcile_after_seconds=2,
                           poll_base_seconds=1, poll_max_seconds=1,
                           extra_env={"ROUTING_PROVIDER_ORDER": "freepik,aihubmax,uniall",
                                      "REFUSALS_BEFORE_FAILOVER": str(REFUSALS_BEFORE_FAILOVER),
                                      # Refusals must reach the job's own count, not open Freepik's
                                      # circuit first (a skip is another test's subject).
                                      "CIRCUIT_FAILURE_THRESHOLD": "100"})
    with LocalStack(options) as running:
        yield running


def logical_job(**extra: Any) -> dict[str, Any]:
    # A prompt of its own picks this job's tasks out of the sandbox's task store.
    return {"model": VEO, "prompt": f"a fox in the snow {uuid.uuid4().hex[:8]}",
            "reference_images": ["https://example.com/fox.png"]} | extra


def answered_since(stack: LocalStack, provider: str, since: float) -> list[tuple[int, float]]:
    """Each create request ``provider``'s sandbox answered since then: (HTTP status, when)."""
    return [(r.status, r.at) for r in stack.sandbox.request_log
            if r.method == "POST" and r.path.startswith(f"/{provider}/") and r.at >= since]


def creates_since(stack: LocalStack, provider: str, since: float) -> list[int]:
    return [status for status, _ in answered_since(stack, provider, since)]


def assert_retry_after_honoured(answers: list[tuple[int, float]]) -> None:
    """Each create after a 429 came no sooner than the Retry-After that 429 carried (a lower
    bound only: a slow machine makes the gaps longer, never shorter)."""
    for (status, at), (_, next_at) in itertools.pairwise(answers):
        assert status == 429
        assert next_at - at >= RETRY_AFTER_SECONDS, [round(b - a, 2) for (_, a), (_, b) in
                                                     itertools.pairwise(answers)]


@pytest.fixture
def refusing_freepik(stack):
    """Freepik answers the creates queued in ``fail_submits_for`` with 429 and this Retry-After."""
    faults = stack.sandbox.config.faults
    faults.retry_after_seconds = RETRY_AFTER_SECONDS
    yield faults
    faults.retry_after_seconds = 1
    faults.fail_submits_for.pop("freepik", None)


def tasks_for(stack: LocalStack, prompt: str) -> list[Any]:
    return [task for task in stack.sandbox.tasks.values() if task.body.get("prompt") == prompt]


def test_429s_that_outlast_the_retries_move_the_job_on_and_no_task_is_made_twice(stack, refusing_freepik):
    faults = refusing_freepik
    body = logical_job(routing={"failover": "submit"})
    started = time.time()
    faults.fail_submits_for["freepik"] = [429] * 10  # more than the job will ever be given
    try:
        with httpx.Client(base_url=stack.api_url, timeout=10) as api:
            answer = api.post("/v1/jobs", json=body)
            assert answer.status_code == 202, answer.text
            job = wait(api, answer.json()["id"])
    finally:
        unused = faults.fail_submits_for.pop("freepik")
    assert job["status"] == "succeeded", job.get("error")
    assert job["model"] == VEO and job["route"]["provider"] == "aihubmax"
    refused, served = job["attempts"]
    assert (refused["provider"], refused["outcome"], refused["task_id"]) == ("freepik", "refused", None)
    assert refused["reason"].startswith(f"{REFUSALS_BEFORE_FAILOVER} refusals in a row") and "429" in refused["reason"]
    assert refused["ended_at"] and served["provider"] == "aihubmax" and served["outcome"] == "succeeded"
    [failover] = [e for e in job["events"] if e.get("source") == "failover"]
    assert failover["reason"] == "refused" and failover["to"] == served["model"]
    # The sandbox's own record: Freepik refused exactly the configured number of creates and made
    # no task; AIHubMax was asked once and made the one task that served the job.
    assert creates_since(stack, "freepik", started) == [429] * REFUSALS_BEFORE_FAILOVER
    assert_retry_after_honoured(answered_since(stack, "freepik", started))
    assert len(unused) == 10 - REFUSALS_BEFORE_FAILOVER
    assert creates_since(stack, "aihubmax", started) == [200]
    [task] = tasks_for(stack, body["prompt"])
    assert task.provider == "aihubmax" and task.task_id == served["task_id"] == job["provider_task_id"]
    assert job["outputs"][0]["sha256"] == stack.sandbox.served_sha256


def test_without_failover_the_same_429s_keep_the_job_queued_on_its_provider(stack, refusing_freepik):
    faults = refusing_freepik
    refusals = REFUSALS_BEFORE_FAILOVER + 2  # more than would move a job that may fail over
    body = logical_job(routing={"failover": "none"})
    started = time.time()
    faults.fail_submits_for["freepik"] = [429] * refusals
    seen: list[tuple[str, str, int]] = []
    with httpx.Client(base_url=stack.api_url, timeout=10) as api:
        answer = api.post("/v1/jobs", json=body)
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]

        def refused_often_enough() -> bool:
            job = api.get(f"/v1/jobs/{job_id}").json()
            seen.append((job["status"], job["provider"], len(job["attempts"])))
            return len(creates_since(stack, "freepik", started)) >= refusals

        wait_for(refused_often_enough, timeout=60, what=f"{refusals} refused creates")
        job = wait(api, job_id)
    # While refused it stayed queued on Freepik with no attempt closed; then Freepik took it.
    assert {entry for entry in seen} == {("queued", "freepik", 1)}, seen
    assert job["status"] == "succeeded", job.get("error")
    assert [(a["provider"], a["outcome"]) for a in job["attempts"]] == [("freepik", "succeeded")]
    assert not [e for e in job["events"] if e.get("source") == "failover"]
    assert creates_since(stack, "freepik", started) == [429] * refusals + [200]
    assert_retry_after_honoured(answered_since(stack, "freepik", started))
    assert creates_since(stack, "aihubmax", started) == [] and creates_since(stack, "uniall", started) == []
    [task] = tasks_for(stack, body["prompt"])
    assert task.provider == "freepik" and task.task_id == job["provider_task_id"]


def test_a_webhook_after_cancel_is_acknowledged_and_nothing_is_copied_or_announced(stack):
    resources = stack.resources
    assert resources is not None
    sqs, events = stack.client("sqs"), stack.client("events")
    # Every job event the bus carries, into a queue this test reads.
    queue_url = sqs.create_queue(QueueName="lifecycle-job-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="lifecycle-job-events", EventBusName=resources.event_bus_name,
                    EventPattern=json.dumps({"source": ["reelhook"]}))
    events.put_targets(Rule="lifecycle-job-events", EventBusName=resources.event_bus_name,
                       Targets=[{"Id": "queue", "Arn": queue_arn}])
    body = {"model": "freepik/veo-3-1-reference-to-video", "prompt": "a heron NEVER_FINISH",
            "reference_images": ["https://example.com/heron.png"]}
    with httpx.Client(base_url=stack.api_url, timeout=10) as api:
        answer = api.post("/v1/jobs", json=body)
        assert answer.status_code == 202, answer.text
        job_id, task_id = answer.json()["id"], answer.json()["provider_task_id"]
        cancelled = api.post(f"/v1/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["cancellation"]["provider_task_may_continue"] is True

        # The provider's task runs on and completes: Freepik sends its signed webhook.
        stack.sandbox.force_status(task_id, "completed")
        delivery = wait_for(lambda: next((d for d in stack.sandbox.tasks[task_id].deliveries
                                          if d.status == "COMPLETED"), None), what="the completion webhook")
        assert delivery.headers.get("webhook-signature")  # signed, as Freepik signs them
        assert delivery.response_status is not None and 200 <= delivery.response_status < 300, delivery
        assert delivery.attempts == 1 and delivery.error is None

        def announced() -> list[dict[str, Any]]:
            found = []
            while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
                found += [json.loads(m["Body"]) for m in messages]
            return [e for e in found if e["detail"].get("id") == job_id]

        [event] = wait_for(announced, what="the job's cancelled event")
        # The poller's reconciler and the copy queue have had their chance to act on the webhook.
        time.sleep(3 * stack.options.schedule_seconds + stack.options.reconcile_after_seconds)
        job = api.get(f"/v1/jobs/{job_id}").json()
        later = announced()
    assert event["detail-type"] == "Video Job Cancelled" and not later  # no "Video Job Succeeded" ever
    assert job["status"] == "cancelled" and job["outputs"] == []
    assert [e["status"] for e in job["events"]][-1] == "cancelled"
    item = stack.client("dynamodb").get_item(TableName=resources.table_name,
                                             Key={"pk": {"S": f"job#{job_id}"}})["Item"]
    assert item["status"]["S"] == "cancelled" and "result_urls" not in item
    # No copy: the result was never downloaded, and nothing under the job's id is in the bucket.
    assert stack.sandbox.clean_downloads(task_id) == 0
    assert not [r for r in stack.sandbox.request_log if r.path.startswith("/files/")
                and task_id in r.path], "the result was fetched"
    versions = stack.client("s3").list_object_versions(Bucket=resources.bucket_name)
    stored = [v["Key"] for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])]
    assert not [key for key in stored if job_id in key], stored
