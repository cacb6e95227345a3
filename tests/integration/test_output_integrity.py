"""Issue #11 items 1-2: a job succeeds only with real videos; one-off link faults are retried.

Each test drives the transfer handler against the provider sandbox (real HTTP) and moto,
with the sandbox's download faults: the first K GETs of a task's link misbehave, later
ones serve the real MP4 (video + audio).
"""

from __future__ import annotations

import io

import av
import boto3
import pytest

from tests.conftest import Context, api_event
from tests.integration.test_handlers import VEO, call, complete, job_items, sqs_event

RETRY = {"batchItemFailures": [{"itemIdentifier": "m1"}]}
OK = {"batchItemFailures": []}


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    from reelhook.services import transfer

    monkeypatch.setattr(transfer, "RETRY_DELAYS", (0.0, 0.0), raising=False)


def stored(aws, key: str) -> bytes:
    return boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=key)["Body"].read()


def keys(aws) -> list[str]:
    return sorted(o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=aws.bucket_name).get("Contents", []))


def fail_first(sandbox, kind: str, times: int = 1) -> None:
    sandbox.config.faults.download_failures_before_success = times
    sandbox.config.faults.download_failure_kind = kind


@pytest.mark.parametrize("kind", ["empty", "truncate", "expire", "html"],
                         ids=["empty-body", "short-body", "one-off-403", "one-off-text-html"])
def test_a_one_off_link_fault_is_retried_and_the_job_gets_the_real_video(aws, sandbox, handlers, kind):
    job, _ = complete(handlers, sandbox)
    fail_first(sandbox, kind)
    assert handlers["transfer"](sqs_event(job["id"]), Context()) == OK
    [item] = job_items(aws)
    assert item["status"] == "succeeded", item.get("error")
    [output] = item["outputs"]
    data = stored(aws, output["key"])
    assert output["bytes"] == len(data) == len(sandbox.config.video_bytes) > 0
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.video and container.streams.audio


@pytest.mark.parametrize("kind", ["empty", "expire", "html", "truncate"])
def test_a_fault_that_persists_is_retried_by_sqs_while_the_link_lives(aws, sandbox, handlers, kind):
    job, _ = complete(handlers, sandbox)
    fail_first(sandbox, kind, times=100)
    assert handlers["transfer"](sqs_event(job["id"], receives=1), Context()) == RETRY
    [item] = job_items(aws)
    assert item["status"] == "storing" and keys(aws) == []


@pytest.mark.parametrize(("kind", "code"), [("not_video", "output_invalid"), ("empty", "output_invalid"),
                                            ("truncate", "output_invalid"), ("expire", "output_expired"),
                                            ("html", "output_not_video")])
def test_after_the_last_attempt_the_job_fails_with_the_faults_code(aws, sandbox, handlers, kind, code):
    job, _ = complete(handlers, sandbox)
    fail_first(sandbox, kind, times=100)
    assert handlers["transfer"](sqs_event(job["id"], receives=5), Context()) == OK
    [item] = job_items(aws)
    assert item["status"] == "failed" and item["error"]["code"] == code
    assert keys(aws) == []  # nothing false stays stored


def test_non_video_bytes_are_never_a_success(aws, sandbox, handlers):
    job, _ = complete(handlers, sandbox)
    fail_first(sandbox, "not_video", times=1)
    assert handlers["transfer"](sqs_event(job["id"]), Context()) == OK
    [item] = job_items(aws)
    assert item["status"] == "succeeded"
    assert stored(aws, item["outputs"][0]["key"]) == sandbox.config.video_bytes


def test_media_metadata_poster_and_warnings_are_recorded(aws, sandbox, handlers):
    body = VEO | {"aspect_ratio": "16:9", "audio": False}
    job, _ = complete(handlers, sandbox, body)
    assert handlers["transfer"](sqs_event(job["id"]), Context()) == OK
    [item] = job_items(aws)
    [output] = item["outputs"]
    assert output["media"] == {"container": "mp4", "duration_s": 2.0, "width": 320, "height": 180, "fps": 24.0,
                               "video_codec": "h264",
                               "audio": {"codec": "aac", "channels": 1, "sample_rate": 48000}}
    # Asked for 720p without audio; the sandbox's file is 320x180 with sound. 16:9 matches.
    assert item["warnings"] == ["resolution: asked for 720p, delivered 320x180",
                                "audio: asked for no audio, the video has an audio track"]
    [succeeded] = [e for e in item["events"] if e["status"] == "succeeded"]
    assert succeeded["warnings"] == item["warnings"]
    poster = stored(aws, output["poster_key"])
    assert poster[:3] == b"\xff\xd8\xff" and output["poster_key"].endswith(".poster.jpg")
    with av.open(io.BytesIO(poster)) as image:
        assert image.streams.video[0].codec_context.width == 320
    _, view = call(handlers["api"], api_event("GET", f"/v1/jobs/{job['id']}", route="GET /v1/jobs/{id}",
                                              path_parameters={"id": job["id"]}))
    shown = view["outputs"][0]
    assert shown["media"] == output["media"] and view["warnings"] == item["warnings"]
    assert shown["poster_url"].startswith("https://") and ".poster.jpg" in shown["poster_url"]
    assert "X-Amz-Signature" in shown["poster_url"] or "Signature" in shown["poster_url"]


def test_compare_names_each_difference_and_only_those():
    from reelhook.services.media_check import compare

    media = {"width": 1280, "height": 720, "duration_s": 5.0, "audio": None}
    assert compare(media, {"resolution": "720p", "aspect_ratio": "16:9", "duration": 5, "audio": False}) == []
    assert compare(media | {"height": 1088, "width": 1920},
                   {"resolution": "1080p", "aspect_ratio": "16:9"}) == []  # macroblock rounding is no warning
    assert compare(media, {"resolution": "1080p", "aspect_ratio": "9:16", "duration": 8, "audio": True}) == [
        "resolution: asked for 1080p, delivered 1280x720",
        "aspect_ratio: asked for 9:16, delivered 1280x720",
        "duration: asked for 8 s, delivered 5.0 s",
        "audio: asked for audio, the video has no audio track",
    ]


def test_a_late_attempt_that_gets_bad_bytes_never_replaces_the_stored_video(aws, sandbox, handlers):
    """Two attempts of one copy (a redelivered message): the first stores and checks the video, the
    job succeeds; the second then gets bytes that are no video and writes them to the same key.
    The key must still hold the video the job names, and its download link must give those bytes."""
    from urllib.parse import parse_qs, urlsplit

    from reelhook.services import transfer

    job, task = complete(handlers, sandbox)
    assert handlers["transfer"](sqs_event(job["id"]), Context()) == OK
    [item] = job_items(aws)
    [output] = item["outputs"]
    assert output["version_id"]
    fail_first(sandbox, "not_video", times=100)
    with pytest.raises(transfer.FaultyOutput):
        transfer.store_output(sandbox.result_url(task), provider="freepik", job_id=job["id"], index=0, asked={})
    data = stored(aws, output["key"])
    assert len(data) == output["bytes"] and data == sandbox.config.video_bytes
    _, view = call(handlers["api"], api_event("GET", f"/v1/jobs/{job['id']}", route="GET /v1/jobs/{id}",
                                              path_parameters={"id": job["id"]}))
    [shown] = view["outputs"]
    query = parse_qs(urlsplit(shown["download_url"]).query)
    assert query["versionId"] == [output["version_id"]] and shown["version_id"] == output["version_id"]


def test_a_retrying_attempt_stops_once_another_attempt_finished_the_job(aws, sandbox, handlers, monkeypatch):
    from reelhook.services import transfer

    job, _ = complete(handlers, sandbox)
    fail_first(sandbox, "html", times=100)
    finished_meanwhile = iter([False])
    monkeypatch.setattr(transfer, "_still_storing", lambda job_id: next(finished_meanwhile))
    assert handlers["transfer"](sqs_event(job["id"]), Context()) == OK
    [item] = job_items(aws)
    assert item["status"] == "storing"  # left to the attempt that finished it, not failed here
    assert keys(aws) == []
