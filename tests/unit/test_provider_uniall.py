"""UniAll: the document's five request examples, the per-mode rules, and the status shapes."""

import pytest

from reelhook.providers import get_model, get_provider
from reelhook.providers.base import MalformedPayload, Phase

UNIALL = get_provider("uniall")


def body(model_id, job):
    spec = get_model(model_id)
    assert spec.validate(job) == []
    call = UNIALL.submit_call(spec, job, None, {})
    assert (call.method, call.path) == ("POST", "/v1/video/generations")
    return call.json


def test_text_to_video_example():
    assert body("uniall/veo3.1-video-1080p", {
        "prompt": " camera, camera. ", "aspect_ratio": "16:9", "duration": 8,
        "audio": True, "negative_prompt": ", blur", "seed": 7,
    }) == {"model": "veo3.1-video-1080p", "prompt": " camera, camera. ", "size": "1080p", "aspect_ratio": "16:9",
           "duration": 8, "extra_body": {"generate_audio": True, "negative_prompt": ", blur", "seed": 7}}


def test_image_to_video_example():
    # The document's single-image-to-video example, body for body, aspect_ratio included:
    #   "image": "https://example.com/keyframe.png", "size": "720p", "aspect_ratio": "16:9", "duration": 6,
    # (its field table's row, "image-to-video, video extension use, pass", is garbled; the example is clear).
    assert body("uniall/veo3.1-video-720p", {
        "prompt": ", and. ", "first_frame": "https://example.com/keyframe.png", "aspect_ratio": "16:9",
        "duration": 6, "audio": False, "negative_prompt": "artifacts, ",
    }) == {"model": "veo3.1-video-720p", "prompt": ", and. ", "image": "https://example.com/keyframe.png",
           "size": "720p", "aspect_ratio": "16:9", "duration": 6,
           "extra_body": {"generate_audio": False, "negative_prompt": "artifacts, "}}


def test_first_and_last_frame_example():
    assert body("uniall/veo3.1-fast-video-1080p", {
        "prompt": ", subject, cameralanguage. ", "first_frame": "https://example.com/start-frame.png",
        "last_frame": "https://example.com/end-frame.png", "aspect_ratio": "16:9", "duration": 6, "audio": True,
    }) == {"model": "veo3.1-fast-video-1080p", "prompt": ", subject, cameralanguage. ",
           "image": "https://example.com/start-frame.png", "last_image": "https://example.com/end-frame.png",
           "size": "1080p", "aspect_ratio": "16:9", "duration": 6, "extra_body": {"generate_audio": True}}


def test_reference_example():
    assert body("uniall/veo3.1-video-1080p", {
        "prompt": ", and. ", "aspect_ratio": "9:16", "duration": 6, "audio": True, "seed": 11,
        "reference_images": [{"url": "https://example.com/ref-1.png"}, {"url": "https://example.com/ref-2.png"}],
    }) == {"model": "veo3.1-video-1080p", "prompt": ", and. ",
           "images": ["https://example.com/ref-1.png", "https://example.com/ref-2.png"], "size": "1080p",
           "aspect_ratio": "9:16", "duration": 6, "extra_body": {"generate_audio": True, "seed": 11}}


def test_video_extension_example():
    assert body("uniall/veo3.1-video-720p", {
        "prompt": " video action, scenariostyle. ", "source_video": "https://example.com/source.mp4",
        "duration": 6, "negative_prompt": ", ", "seed": 9,
    }) == {"model": "veo3.1-video-720p", "prompt": " video action, scenariostyle. ",
           "video": "https://example.com/source.mp4", "size": "720p", "duration": 6,
           "extra_body": {"negative_prompt": ", ", "seed": 9}}


def test_six_models_exist():
    for tier in ("", "fast-"):
        for res in ("720p", "1080p", "4k"):
            spec = get_model(f"uniall/veo3.1-{tier}video-{res}")
            assert spec.resolutions == (res,) and spec.status_via == "poll"


REF = [{"url": "https://example.com/1.png"}, {"url": "https://example.com/2.png"}]


@pytest.mark.parametrize(("model", "job", "field", "reason"), [
    ("uniall/veo3.1-fast-video-720p", {"reference_images": REF}, "reference_images", "not accepted"),
    ("uniall/veo3.1-video-720p", {"reference_images": REF[:1]}, "reference_images", "2 to 3"),
    ("uniall/veo3.1-video-720p", {"reference_images": REF * 2}, "reference_images", "2 to 3"),
    ("uniall/veo3.1-video-720p", {"last_frame": "https://e.com/l.png"}, "last_frame", "no mode"),
    ("uniall/veo3.1-video-720p", {"source_video": "https://e.com/s.mp4", "first_frame": "https://e.com/f.png"},
     "first_frame", "no mode"),
    ("uniall/veo3.1-video-720p", {"reference_images": REF, "first_frame": "https://e.com/f.png"}, "first_frame",
     "no mode"),
    ("uniall/veo3.1-video-720p", {"duration": 5}, "duration", "4, 6, 8"),
    ("uniall/veo3.1-video-720p", {"resolution": "1080p"}, "resolution", "720p"),
    ("uniall/veo3.1-video-720p", {"first_frame": "https://e.com/f.png", "aspect_ratio": "1:1"}, "aspect_ratio",
     "16:9, 9:16"),
    ("uniall/veo3.1-video-720p", {"source_video": "https://e.com/s.mp4", "aspect_ratio": "9:16"}, "aspect_ratio",
     "video-extension"),
    ("uniall/veo3.1-video-720p", {"aspect_ratio": "1:1"}, "aspect_ratio", "16:9"),
    ("uniall/veo3.1-video-720p", {"options": {"cfg_scale": 1}}, "options.cfg_scale", "not an option"),
])
def test_combinations_the_document_does_not_allow_are_refused_with_the_reason(model, job, field, reason):
    errors = {e.field: e for e in get_model(model).validate({"prompt": "p"} | job)}
    assert field in errors, errors
    assert reason in errors[field].message


def test_mode_follows_from_the_inputs():
    spec = get_model("uniall/veo3.1-video-4k")
    cases = [({}, "text-to-video"), ({"first_frame": "u"}, "image-to-video"),
             ({"first_frame": "u", "last_frame": "u"}, "first-and-last-frame"),
             ({"reference_images": REF}, "multi-image-reference"), ({"source_video": "u"}, "video-extension")]
    for inputs, mode in cases:
        assert spec.select_mode({"prompt": "p"} | inputs)[0].name == mode


@pytest.mark.parametrize(("answer", "phase", "urls"), [
    ({"id": "v1", "status": "queued"}, Phase.SUBMITTED, ()),
    ({"id": "v1", "status": "in_progress", "progress": 40}, Phase.RUNNING, ()),
    ({"id": "v1", "status": "completed", "video_url": "https://c/v.mp4"}, Phase.COMPLETED, ("https://c/v.mp4",)),
    ({"id": "v1", "status": "completed", "result": {"video_url": "https://c/v.mp4"}}, Phase.COMPLETED,
     ("https://c/v.mp4",)),
    ({"id": "v1", "status": "completed", "result": {"outputs": ["https://c/v.mp4", "https://c/w.mp4"]}},
     Phase.COMPLETED, ("https://c/v.mp4", "https://c/w.mp4")),
    ({"id": "v1", "status": "completed"}, Phase.RUNNING, ()),
    ({"id": "v1", "status": "failed", "error": {"message": "unsafe"}}, Phase.FAILED, ()),
])
def test_status_shapes(answer, phase, urls):
    status = UNIALL.parse_status(answer, from_webhook=False)
    assert (status.task_id, status.phase, status.result_urls) == ("v1", phase, urls)
    if phase is Phase.FAILED:
        assert status.error_message == "unsafe"


def test_create_answer_id_or_task_id_and_errors():
    assert UNIALL.parse_submit({"id": "a"}) == "a"
    assert UNIALL.parse_submit({"task_id": "b"}) == "b"
    with pytest.raises(MalformedPayload):
        UNIALL.parse_submit({})
    assert UNIALL.error_message(400, {"error": {"message": "bad size", "param": "size"}}) == "bad size (param: size)"
    assert UNIALL.status_call(get_model("uniall/veo3.1-video-720p"), "v1", {}).path == "/v1/videos/v1"
