"""Issue 12 through the handlers, moto and the provider sandbox built from the documents."""

from __future__ import annotations

import json
from typing import Any

import boto3

from reelhook.adapters.jobs_table import JobStore
from reelhook.services import polling
from tests.conftest import Context, api_event, reset_caches
from tests.integration.test_handlers import call, create, job_items, sqs_event
from tests.integration.test_reconciler import make_due
from tests.provider_documents import AIHUBMAX, SPEC, UNIALL, says

VID = "https://example.com/ref.mp4"
IMG = "https://example.com/a.png"
UNIALL_TEXT = {"model": "uniall/veo3.1-video-720p", "prompt": "a lighthouse at dusk"}
AIHUBMAX_JOB = {"model": "aihubmax/veo-3.1-reference-to-video", "prompt": "p", "reference_images": [IMG],
                "options": {"safety_level": 3}}


def read(handlers, job_id: str) -> dict[str, Any]:
    status, body = call(handlers["api"], api_event("GET", f"/v1/jobs/{job_id}", route="GET /v1/jobs/{id}",
                                                   path_parameters={"id": job_id}))
    assert status == 200
    return body


def posts(sandbox) -> list[Any]:
    return [r for r in sandbox.request_log if r.method == "POST"]


def test_kling_std_job_is_created_on_the_path_the_spec_lists_and_needs_no_prompt(aws, sandbox, handlers):
    says(SPEC, "/v1/ai/reference-to-video/kling-v3-omni-std: post:")
    status, job = create(handlers, {"model": "freepik/kling-v3-omni-std-video-reference", "reference_videos": [VID]})
    assert status == 202 and job["status"] == "submitted", job
    task = sandbox.tasks[job["provider_task_id"]]
    assert task.path == "/v1/ai/reference-to-video/kling-v3-omni-std"
    assert "prompt" not in task.body
    assert job["effective"]["negative_prompt"] == "blur, distort, and low quality"


def test_every_uniall_output_is_copied_and_listed(aws, sandbox, handlers):
    sandbox.config.uniall_result_shape = "result.outputs"
    sandbox.config.uniall_output_count = 3
    status, job = create(handlers, UNIALL_TEXT)
    assert status == 202 and job["status"] == "submitted"
    sandbox.force_status(job["provider_task_id"], "completed")
    assert polling.check_job(JobStore().get(job["id"]), store=JobStore()) == "moved_to_storing"
    assert len(JobStore().get(job["id"])["result_urls"]) == 3
    assert handlers["transfer"](sqs_event(job["id"]), Context()) == {"batchItemFailures": []}
    [item] = job_items(aws)
    assert item["status"] == "succeeded" and len(item["outputs"]) == 3
    stored = boto3.client("s3").list_objects_v2(Bucket=aws.bucket_name)["Contents"]
    keys = sorted(o["Key"] for o in stored if not o["Key"].endswith(".poster.jpg"))  # each video has a poster
    assert keys == sorted(o["key"] for o in item["outputs"]) and len(set(keys)) == 3
    assert len(read(handlers, job["id"])["outputs"]) == 3


def test_uniall_image_to_video_with_aspect_ratio_reaches_the_provider(aws, sandbox, handlers):
    says(UNIALL, '"image": "https://example.com/keyframe.png", "size": "720p", "aspect_ratio": "16:9"')
    status, job = create(handlers, UNIALL_TEXT | {"first_frame": IMG, "aspect_ratio": "16:9"})
    assert status == 202 and job["status"] == "submitted", job
    assert sandbox.tasks[job["provider_task_id"]].body["aspect_ratio"] == "16:9"


def test_the_job_records_the_effective_values_it_asked_for(aws, sandbox, handlers):
    _, veo = create(handlers, {"model": "freepik/veo-3-1-reference-to-video", "prompt": "p",
                               "reference_images": [IMG]})
    assert read(handlers, veo["id"])["effective"] == {
        "negative_prompt": None, "aspect_ratio": "16:9", "resolution": "720p", "audio": True, "seed": None}
    _, hub = create(handlers, AIHUBMAX_JOB)
    seen = read(handlers, hub["id"])
    assert seen["effective"]["audio"] is False and seen["effective"]["resolution"] == "1080p"
    assert seen["effective"]["options"]["safety_level"] == 3
    assert any(note.startswith("options.enhance_prompt: not sent") for note in seen["effective_notes"])
    # What reelhook says it did not send, it did not send.
    body = sandbox.tasks[hub["provider_task_id"]].body
    assert "generate_audio" not in body and "enhance_prompt" not in body


def test_an_id_less_create_answer_is_an_unknown_outcome_never_resent(aws, sandbox, handlers):
    says(UNIALL, "Response Examples Example 1 {}")
    sandbox.config.uniall_create_answer = "empty"
    status, job = create(handlers, UNIALL_TEXT)
    assert status == 202 and job["status"] == "queued" and job["submit_outcome"] == "unknown"
    assert "may have created, and may bill, a task" in job["submit_error"]
    make_due(aws, job["id"])
    assert polling.run_pass()["waiting_for_submit"] == 1
    make_due(aws, job["id"], submit_started_at="2020-01-01T00:00:00.000Z")
    assert polling.run_pass()["failed_unknown_submit"] == 1
    failed = read(handlers, job["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "submit_outcome_unknown"
    assert "may have created, and may bill, a task" in failed["error"]["message"]
    assert len(posts(sandbox)) == 1  # and the sandbox does hold the task it never named
    assert len(sandbox.tasks) == 1


def test_a_create_answer_naming_the_task_in_task_id_is_followed(aws, sandbox, handlers):
    sandbox.config.uniall_create_answer = "task_id"
    _, job = create(handlers, UNIALL_TEXT)
    assert job["status"] == "submitted" and job["provider_task_id"] in sandbox.tasks
    sandbox.config.aihubmax_id_field = "task_id"
    _, hub = create(handlers, AIHUBMAX_JOB)
    assert hub["status"] == "submitted" and hub["provider_task_id"] in sandbox.tasks


def test_aihubmax_field_names_follow_configuration_against_a_provider_with_other_names(
        aws, sandbox, handlers, monkeypatch):
    # The document describes the option and never names it: a provider may call it something else.
    says(AIHUBMAX, "Content safety level, 1 is the strictest, 6 is the most permissive.")
    sandbox.config.aihubmax_field_names = {"safety_level": "content_safety_level"}
    sandbox.config.aihubmax_strict_fields = True
    _, refused = create(handlers, AIHUBMAX_JOB)
    assert refused["status"] == "failed" and refused["error"]["code"] == "provider_rejected"
    assert "safety_level" in refused["error"]["message"]
    monkeypatch.setenv("AIHUBMAX_FIELD_NAMES", "safety_level=content_safety_level")
    reset_caches()
    assert call(handlers["api"], api_event("GET", "/v1/models"))[0] == 200
    _, models = call(handlers["api"], api_event("GET", "/v1/models"))
    [entry] = [m for m in models["models"] if m["id"] == AIHUBMAX_JOB["model"]]
    assert entry["options"]["safety_level"]["provider_field"] == "content_safety_level"
    _, job = create(handlers, AIHUBMAX_JOB)
    assert job["status"] == "submitted", job
    assert sandbox.tasks[job["provider_task_id"]].body["content_safety_level"] == 3


def test_aihubmax_paths_follow_configuration(aws, sandbox, handlers, monkeypatch):
    sandbox.config.aihubmax_create_path = "/v2/videos"
    sandbox.config.aihubmax_status_prefix = "/v2/videos/"
    monkeypatch.setenv("AIHUBMAX_CREATE_PATH", "/v2/videos")
    monkeypatch.setenv("AIHUBMAX_STATUS_PATH", "/v2/videos/{task_id}")
    reset_caches()
    _, job = create(handlers, AIHUBMAX_JOB)
    assert job["status"] == "submitted", job
    sandbox.force_status(job["provider_task_id"], "completed")
    assert polling.check_job(JobStore().get(job["id"]), store=JobStore()) == "moved_to_storing"


def test_wan_with_a_start_frame_sends_no_aspect_ratio(aws, sandbox, handlers):
    _, job = create(handlers, {"model": "freepik/wan-2-7-reference-to-video", "prompt": "Image 1 waves",
                               "reference_images": [IMG], "first_frame": IMG, "aspect_ratio": "9:16"})
    assert job["status"] == "submitted"
    assert "aspect_ratio" not in sandbox.tasks[job["provider_task_id"]].body
    assert job["effective"]["aspect_ratio"] is None
    assert json.dumps(job["effective_notes"]).count("first_frame decides it") == 1
