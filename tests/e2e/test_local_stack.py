"""End to end through the local stack: real HTTP into the API front, moto's server as AWS,
the provider sandbox sending signed webhooks (or being polled), and the video landing in S3."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from reelhook.providers import all_models
from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LocalStack, StackOptions

pytestmark = pytest.mark.e2e
IMG = "https://example.com/ref.png"
IMG2 = "https://example.com/ref2.png"
VID = "https://example.com/motion.mp4"


def uniall_jobs(model: str) -> list[dict[str, Any]]:
    jobs = [
        {"prompt": "text only", "aspect_ratio": "9:16", "duration": 4},
        {"prompt": "animate", "first_frame": IMG, "duration": 6},
        {"prompt": "morph", "first_frame": IMG, "last_frame": IMG2, "aspect_ratio": "16:9"},
        {"prompt": "extend", "source_video": VID, "duration": 8, "seed": 9},
    ]
    if "fast" not in model:
        jobs.append({"prompt": "two refs", "reference_images": [IMG, IMG2], "audio": True})
    return [{"model": model} | job for job in jobs]


def every_model_job() -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = [
        {"model": "freepik/veo-3-1-reference-to-video", "prompt": "walk", "reference_images": [IMG, IMG2],
         "resolution": "4k", "aspect_ratio": "9:16", "audio": False, "seed": 5, "negative_prompt": "blur"},
        {"model": "freepik/wan-2-7-reference-to-video", "prompt": "Image 1 and Video 1", "duration": 10,
         "reference_images": [{"url": IMG, "voice_url": "https://example.com/v.wav"}], "reference_videos": [VID],
         "first_frame": IMG2, "resolution": "720p", "options": {"prompt_extend": False}},
        {"model": "freepik/kling-v3-omni-pro-video-reference", "prompt": "like @Video1", "reference_videos": [VID],
         "first_frame": IMG, "duration": 15, "aspect_ratio": "auto", "options": {"cfg_scale": 1.5}},
        {"model": "freepik/kling-v3-omni-std-video-reference", "prompt": "like @Video1", "reference_videos": [VID],
         "duration": 3},
        {"model": "aihubmax/veo-3.1-reference-to-video", "prompt": "wave", "reference_images": [IMG],
         "options": {"person_generation": "allow_adult", "safety_level": 2, "reference_image_type": "ASSET"}},
        {"model": "aihubmax/veo-3.1-fast-reference-to-video", "prompt": "wave", "reference_images": [IMG, IMG2, IMG],
         "duration": 8, "resolution": "4k", "options": {"auto_fix_prompt": True}},
    ]
    for model in sorted(m for m in all_models() if m.startswith("uniall/")):
        jobs += uniall_jobs(model)
    return jobs


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(sandbox=SandboxConfig(step_seconds=0.1, aihubmax_early_completed=True),
                           schedule_seconds=0.3, reconcile_after_seconds=2, transfer_workers=4)
    with LocalStack(options) as running:
        yield running


def wait(api: httpx.Client, job_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed"}:
            return job
        time.sleep(0.1)
    raise TimeoutError(f"{job_id} still {job['status']}")


def test_every_model_and_mode_ends_stored_and_verified(stack):
    jobs = every_model_job()
    covered = {job["model"] for job in jobs}
    assert covered == set(all_models())
    with httpx.Client(base_url=stack.api_url, timeout=10) as api:
        answers = [api.post("/v1/jobs", json=job) for job in jobs]
        assert [a.status_code for a in answers] == [202] * len(jobs), [a.text for a in answers if a.status_code != 202]
        with ThreadPoolExecutor(8) as pool:
            finished = list(pool.map(lambda a: wait(api, a.json()["id"]), answers))
    for job, request in zip(finished, jobs, strict=True):
        assert job["status"] == "succeeded", (request, job)
        [output] = job["outputs"]
        data = httpx.get(output["download_url"]).content
        assert hashlib.sha256(data).hexdigest() == output["sha256"] == stack.sandbox.served_sha256
        assert output["bytes"] == len(data)
    sources = {e["source"] for job in finished for e in job["events"]}
    assert {"webhook", "poll", "transfer"} <= sources


def test_failed_generation_is_reported_with_the_reason(stack):
    with httpx.Client(base_url=stack.api_url, timeout=10) as api:
        jobs = [
            {"model": "freepik/veo-3-1-reference-to-video", "prompt": "FAIL_ME", "reference_images": [IMG]},
            {"model": "uniall/veo3.1-video-720p", "prompt": "FAIL_ME"},
            {"model": "aihubmax/veo-3.1-reference-to-video", "prompt": "FAIL_ME", "reference_images": [IMG]},
        ]
        for body in jobs:
            job = wait(api, api.post("/v1/jobs", json=body).json()["id"])
            assert job["status"] == "failed" and job["error"]["code"] == "provider_failed", job


def test_a_missed_webhook_is_caught_by_the_reconciler(stack):
    with httpx.Client(base_url=stack.api_url, timeout=10) as api:
        # The sandbox never sends webhooks for a prompt holding NO_WEBHOOK: only the
        # reconciler's GET can find out that the task finished.
        body = {"model": "freepik/veo-3-1-reference-to-video", "prompt": "quiet NO_WEBHOOK", "reference_images": [IMG]}
        job = api.post("/v1/jobs", json=body).json()
        done = wait(api, job["id"], timeout=30)
        assert done["status"] == "succeeded"
        assert [e["source"] for e in done["events"] if e["status"] == "storing"] == ["poll"]
        task = stack.sandbox.tasks[job["provider_task_id"]]
        assert task.deliveries == []


def test_openapi_served_by_the_stack_describes_the_answers(stack):
    import jsonschema

    with httpx.Client(base_url=stack.api_url, timeout=10) as api:
        doc = api.get("/v1/openapi.json").json()
        schemas = doc["components"]["schemas"]

        def check(instance: Any, name: str) -> None:
            jsonschema.validate(instance, {"$ref": f"#/components/schemas/{name}", "components": doc["components"]},
                                cls=jsonschema.Draft202012Validator)

        created = api.post("/v1/jobs", json={"model": "uniall/veo3.1-video-720p", "prompt": "p"})
        check(created.json(), "JobOut")
        check(wait(api, created.json()["id"]), "JobOut")
        refused = api.post("/v1/jobs", json={"model": "uniall/veo3.1-video-720p", "prompt": "p", "duration": 5})
        assert refused.status_code == 422
        check(refused.json(), "Error")
        check(api.get("/v1/models").json(), "ModelCatalog")
        assert set(schemas["JobRequest"]["properties"]) >= {"model", "prompt", "reference_images", "options"}
