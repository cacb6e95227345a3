"""Logical models through the local stack: real HTTP, moto's server, the provider sandbox."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LocalStack, StackOptions
from tests.e2e.test_local_stack import wait

pytestmark = pytest.mark.e2e
JOB = {"model": "veo-3.1/reference-to-video", "prompt": "a fox in the snow",
       "reference_images": ["https://example.com/fox.png"]}


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(sandbox=SandboxConfig(step_seconds=0.1), schedule_seconds=0.3, reconcile_after_seconds=2,
                           poll_base_seconds=1, poll_max_seconds=1,
                           extra_env={"ROUTING_PROVIDER_ORDER": "freepik,aihubmax,uniall"})
    with LocalStack(options) as running:
        yield running


def stored_sha(stack, job) -> str:
    [output] = job["outputs"]
    bucket, key = output["s3_uri"].removeprefix("s3://").split("/", 1)
    return hashlib.sha256(stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()


def test_a_provider_out_of_credit_is_skipped_and_the_video_still_lands(stack):
    stack.sandbox.config.faults.fail_submits_for["freepik"] = [402]
    with httpx.Client(base_url=stack.api_url, timeout=10) as api:
        answer = api.post("/v1/jobs", json=JOB)
        assert answer.status_code == 202, answer.text
        job = wait(api, answer.json()["id"])
    assert job["status"] == "succeeded", job.get("error")
    assert job["model"] == JOB["model"] and job["route"]["provider"] == "aihubmax"
    assert [(a["provider"], a["outcome"]) for a in job["attempts"]] == [("freepik", "rejected"),
                                                                        ("aihubmax", "succeeded")]
    assert stored_sha(stack, job) == job["outputs"][0]["sha256"]


def test_with_any_a_failed_task_is_made_again_elsewhere(stack):
    body = JOB | {"prompt": "a fox FAIL_ON_FREEPIK", "routing": {"failover": "any"}}
    with httpx.Client(base_url=stack.api_url, timeout=10) as api:
        answer = api.post("/v1/jobs", json=body)
        assert answer.status_code == 202, answer.text
        job = wait(api, answer.json()["id"])
    assert job["status"] == "succeeded", job.get("error")
    first, last = job["attempts"]
    assert (first["provider"], first["outcome"]) == ("freepik", "failed") and first["task_id"]
    assert (last["provider"], last["outcome"]) == ("aihubmax", "succeeded")
    assert [e["status"] for e in job["events"]][-1] == "succeeded"


def test_the_providers_route_shows_circuit_budget_and_tasks_in_flight(stack):
    stack.sandbox.config.faults.fail_submits_for["freepik"] = [402]
    concrete = JOB | {"model": "freepik/veo-3-1-reference-to-video"}
    with httpx.Client(base_url=stack.api_url, timeout=10) as api:
        assert api.post("/v1/jobs", json=concrete).json()["status"] == "failed"
        answer = api.get("/v1/providers")
    assert answer.status_code == 200
    providers = {p["name"]: p for p in answer.json()["providers"]}
    assert set(providers) == {"freepik", "uniall", "aihubmax"}
    freepik = providers["freepik"]
    # A 402 counts against Freepik's circuit (one failure in a row: still closed).
    assert freepik["circuit"]["state"] == "closed" and freepik["circuit"]["consecutive_failures"] >= 1
    assert freepik["rate"]["requests_per_second"] > 0 and freepik["in_flight"]["cap"] is None


def test_the_python_clients_run_serves_a_logical_model_and_downloads_the_checked_video(stack, tmp_path):
    from reelhook_client import Client

    stack.sandbox.config.faults.fail_submits_for["freepik"] = [402]
    with Client(stack.api_url, auth=None) as api:
        catalogue = {model.id: model for model in api.models()}
        assert catalogue[JOB["model"]].logical and catalogue[JOB["model"]].provider is None
        job = api.run(JOB["model"], prompt=JOB["prompt"], reference_images=JOB["reference_images"], timeout=90)
        assert job.succeeded and job.route is not None and job.route.provider == "aihubmax"
        assert [a.outcome for a in job.attempts or []] == ["rejected", "succeeded"]
        path = api.download(job, tmp_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == job.outputs[0].sha256
