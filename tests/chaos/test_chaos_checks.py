"""The chaos run's own checks, shown to catch what they look for: a wrong final state, a
stored object that is no video (or a poster that is no JPEG), and a job left in flight."""

from __future__ import annotations

import io
from typing import Any

import boto3
import pytest
from moto import mock_aws

from reelhook.services import media_check
from reelhook_local.chaos import check_stored_objects, expected_outcome, non_terminal_jobs
from reelhook_local.sandbox import SandboxConfig
from reelhook_local.sandbox.tasks import Phase, Task, new_task

SAMPLE = SandboxConfig().video_bytes


def task(prompt: str) -> Task:
    return new_task(task_id="t1", provider="uniall", model="veo3.1-video-720p", path="/v1/video/generations",
                    body={}, statuses={phase: phase.value for phase in Phase}, prompt=prompt, now=0.0)


JOB: dict[str, Any] = {"id": "j1", "provider_task_id": "t1"}


@pytest.mark.parametrize(("prompt", "downloads", "expected"), [
    ("a heron", ["ok"], ("succeeded", None)),
    # One-off faults before a whole download: the job must succeed.
    ("a heron", ["expire", "html", "empty", "truncate", "not_video", "ok"], ("succeeded", None)),
    ("a heron", ["stall"], ("succeeded", None)),
    ("a heron NOT_VIDEO_ALWAYS", ["not_video"] * 6, ("failed", "output_invalid")),
    ("a heron TASK_VANISHES", [], ("failed", "provider_task_missing")),
    ("a heron NEVER_FINISH", [], ("failed", "deadline_exceeded")),
    ("a heron FAIL_ME", [], ("failed", "provider_failed")),
    # Never a whole download: the last fault met names the code.
    ("a heron", ["truncate", "expire"], ("failed", "output_expired")),
    ("a heron", ["expire", "html"], ("failed", "output_not_video")),
    ("a heron", ["html", "empty"], ("failed", "output_invalid")),
])
def test_the_expected_outcome_follows_the_injected_faults(prompt: str, downloads: list[str],
                                                          expected: tuple[str, str | None]) -> None:
    assert expected_outcome(JOB, task(prompt), downloads) == expected


def test_a_job_without_a_task_must_have_failed_to_submit() -> None:
    assert expected_outcome({"id": "j1"}, None, []) == ("failed", "provider_unavailable")


def test_non_terminal_jobs_are_found() -> None:
    items = [{"pk": {"S": "job#a"}, "status": {"S": "succeeded"}},
             {"pk": {"S": "job#b"}, "status": {"S": "running"}},
             {"pk": {"S": "job#c"}, "status": {"S": "storing"}},
             {"pk": {"S": "job#d"}, "status": {"S": "cancelled"}},
             {"pk": {"S": "idem#x"}, "job_id": {"S": "b"}}]
    assert non_terminal_jobs(items) == ["b: running", "c: storing"]


@mock_aws
def test_every_stored_object_is_opened() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="out")
    poster = media_check.inspect(io.BytesIO(SAMPLE)).poster_jpeg
    assert poster
    s3.put_object(Bucket="out", Key="jobs/a/0.mp4", Body=SAMPLE)
    s3.put_object(Bucket="out", Key="jobs/a/0.poster.jpg", Body=poster)
    assert check_stored_objects(s3, "out") == (1, 1, [])
    s3.put_object(Bucket="out", Key="jobs/b/0.mp4", Body=b"\x00\x01" * 4096)  # no container
    s3.put_object(Bucket="out", Key="jobs/c/0.mp4", Body=SAMPLE[: len(SAMPLE) // 3])  # cut short
    s3.put_object(Bucket="out", Key="jobs/b/0.poster.jpg", Body=SAMPLE)  # a video, not a JPEG
    assert check_stored_objects(s3, "out") == (3, 2, ["jobs/b/0.mp4", "jobs/b/0.poster.jpg", "jobs/c/0.mp4"])
