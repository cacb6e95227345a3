"""A CI-sized burst through the local stack: every job accepted at once, none failed for
being busy, the provider never asked faster than its configured rate, every job finished."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from bench.burst import peak_in_window
from reelhook.services.submit import LATE_SLOT_SECONDS
from reelhook_local.sandbox import RateLimit, SandboxConfig
from reelhook_local.stack import LocalStack, StackOptions

pytestmark = pytest.mark.e2e
RATE = 5  # Freepik requests per second for this test
BURST = 1
JOBS = 80
# The bound governance promises: slots 1/RATE apart, a send never before its slot and at most
# LATE_SLOT_SECONDS after it, so any 5-s window holds at most RATE * (5 + late) + BURST.
WINDOW_LIMIT = RateLimit(5.0, int(RATE * (5 + LATE_SLOT_SECONDS) + BURST))
VEO = {"model": "freepik/veo-3-1-reference-to-video", "prompt": "walk", "reference_images": ["https://example.com/r.png"]}


def test_peak_in_window_is_exact():
    assert peak_in_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert peak_in_window([], 1.0) == 0


def test_a_burst_is_accepted_at_once_and_sent_at_the_providers_rate():
    options = StackOptions(
        sandbox=SandboxConfig(step_seconds=0.05, rate_limits={"freepik": (WINDOW_LIMIT,)}), schedule_seconds=0.5, reconcile_after_seconds=30,
        transfer_workers=4,
        extra_env={"FREEPIK_REQUESTS_PER_SECOND": str(RATE), "FREEPIK_BURST": str(BURST)},
    )
    with LocalStack(options) as stack, httpx.Client(base_url=stack.api_url, timeout=30) as api:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: api.post("/v1/jobs", json=VEO), range(JOBS)))
        assert [a.status_code for a in answers] == [202] * JOBS
        jobs = [a.json() for a in answers]
        assert not [j for j in jobs if j["status"] == "failed"]
        # Nobody waited for the budget: the jobs beyond it were answered queued, saying why.
        waiting = [j for j in jobs if j["status"] == "queued"]
        assert waiting and {j.get("waiting_for") for j in waiting} == {"rate_limit"}

        deadline = time.time() + 180
        final: dict[str, dict] = {}
        while time.time() < deadline and len(final) < JOBS:
            for job in jobs:
                if job["id"] not in final:
                    now = api.get(f"/v1/jobs/{job['id']}").json()
                    if now["status"] in ("succeeded", "failed"):
                        final[job["id"]] = now
            time.sleep(1)
        stuck = [api.get(f"/v1/jobs/{j['id']}").json() for j in jobs if j["id"] not in final]
        assert not stuck, [(j["status"], j.get("waiting_for"), j.get("submit_outcome"), j["events"][-1]) for j in stuck]
        failed = {j["id"]: j["error"] for j in final.values() if j["status"] == "failed"}
        assert failed == {}
        creates = [r.at for r in stack.sandbox.request_log if r.method == "POST" and "/v1/ai/" in r.path]
        assert len(creates) == JOBS  # each job's create request sent once
        # The rate held: the provider refused nothing, and its own log agrees.
        assert stack.sandbox.rate_limited("freepik") == 0
        assert peak_in_window(creates, 5.0) <= WINDOW_LIMIT.max_requests
        # Never faster on average: over any longer window too, no more than the bound allows. A
        # send may be up to LATE_SLOT_SECONDS after its slot (the first, inline one included,
        # on a loaded machine), so the span is the slots' span less that much at most.
        assert peak_in_window(creates, 10.0) <= RATE * (10 + LATE_SLOT_SECONDS) + BURST
        assert max(creates) - min(creates) >= (JOBS - BURST) / RATE - LATE_SLOT_SECONDS
