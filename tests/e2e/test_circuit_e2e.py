"""Through the local stack: a provider's circuit opens and closes, and an unknown-outcome
submit is never sent anywhere else (a paid task may exist)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LocalStack, StackOptions
from tests.e2e.test_local_stack import wait

pytestmark = pytest.mark.e2e
JOB = {"model": "veo-3.1/reference-to-video", "prompt": "a heron at dawn",
       "reference_images": ["https://example.com/heron.png"]}
COOLDOWN_SECONDS = 3


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(sandbox=SandboxConfig(step_seconds=0.1), schedule_seconds=0.3, reconcile_after_seconds=2,
                           poll_base_seconds=1, poll_max_seconds=1,
                           extra_env={"ROUTING_PROVIDER_ORDER": "freepik,aihubmax,uniall",
                                      "CIRCUIT_FAILURE_THRESHOLD": "2",
                                      "CIRCUIT_COOLDOWN_SECONDS": str(COOLDOWN_SECONDS)})
    with LocalStack(options) as running:
        yield running


def creates(stack: LocalStack, provider: str) -> int:
    return sum(1 for r in stack.sandbox.request_log if r.method == "POST" and r.path.startswith(f"/{provider}/"))


def freepik_circuit(api: httpx.Client) -> dict[str, Any]:
    providers = {p["name"]: p for p in api.get("/v1/providers").json()["providers"]}
    return dict(providers["freepik"]["circuit"])


def test_the_circuit_opens_after_refusals_skips_the_provider_then_a_probe_closes_it(stack):
    stack.sandbox.config.faults.fail_submits_for["freepik"] = [402, 402]
    with httpx.Client(base_url=stack.api_url, timeout=10) as api:
        for _ in range(2):  # two refusals in a row: the threshold
            job = wait(api, api.post("/v1/jobs", json=JOB).json()["id"])
            assert job["status"] == "succeeded" and job["route"]["provider"] == "aihubmax", job.get("error")
        assert freepik_circuit(api)["state"] == "open"
        asked = creates(stack, "freepik")
        # Open: the next job skips Freepik without asking it, and says so.
        job = wait(api, api.post("/v1/jobs", json=JOB).json()["id"])
        assert job["attempts"][0]["provider"] == "freepik" and job["attempts"][0]["outcome"] == "skipped"
        assert job["route"]["provider"] == "aihubmax" and creates(stack, "freepik") == asked
        # After the cool-down a job probes Freepik again; it answers, so the circuit closes.
        deadline = time.monotonic() + 60
        while True:
            time.sleep(1)
            job = wait(api, api.post("/v1/jobs", json=JOB).json()["id"])
            if job["route"]["provider"] == "freepik" or time.monotonic() > deadline:
                break
        assert job["status"] == "succeeded" and job["route"]["provider"] == "freepik", job["attempts"]
        assert freepik_circuit(api)["state"] == "closed"


def test_an_unknown_outcome_submit_is_never_sent_to_another_provider(stack):
    # A 500 answer to a create: the provider may have made (and may bill) the task.
    stack.sandbox.config.faults.fail_submits_for["freepik"] = [500]
    before = {p: creates(stack, p) for p in ("freepik", "aihubmax", "uniall")}
    with httpx.Client(base_url=stack.api_url, timeout=10) as api:
        answer = api.post("/v1/jobs", json=JOB | {"routing": {"failover": "any"}})
        assert answer.status_code == 202, answer.text
        job = wait(api, answer.json()["id"], timeout=120)  # the reconciler gives up on it after its window
    assert job["status"] == "failed" and job["error"]["code"] == "submit_outcome_unknown", job
    assert [a["provider"] for a in job["attempts"]] == ["freepik"]
    after = {p: creates(stack, p) for p in before}
    assert after == before | {"freepik": before["freepik"] + 1}  # one create, and only at Freepik
