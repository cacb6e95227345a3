"""Freepik: the documents' own examples, every constraint, and the status shapes."""

import json

import pytest

from reelhook.providers import get_model, get_provider
from reelhook.providers.base import MalformedPayload, Phase

FREEPIK = get_provider("freepik")
LEGACY = {"kling_endpoint": "video-reference"}
CURRENT = {"kling_endpoint": "reference-to-video"}


def body_for(model_id, job, webhook="https://hooks.example/cb", extras=LEGACY):
    spec = get_model(model_id)
    assert spec.validate(job) == []
    return FREEPIK.submit_call(spec, job, webhook, extras)


def test_veo_document_example():
    call = body_for("freepik/veo-3-1-reference-to-video", {
        "prompt": "The character walks through a futuristic city at night",
        "reference_images": [{"url": "https://example.com/character1.jpg"}, {"url": "https://example.com/character2.jpg"}],
        "negative_prompt": "blurry, low quality, distorted",
        "resolution": "720p", "aspect_ratio": "16:9", "audio": True, "seed": 1,
    }, webhook="<string>")
    assert (call.method, call.path) == ("POST", "/v1/ai/reference-to-video/veo-3-1")
    assert call.json == {
        "image_urls": ["https://example.com/character1.jpg", "https://example.com/character2.jpg"],
        "prompt": "The character walks through a futuristic city at night",
        "webhook_url": "<string>",
        "negative_prompt": "blurry, low quality, distorted",
        "resolution": "720p", "aspect_ratio": "16:9", "generate_audio": True, "seed": 1,
    }


def test_wan_document_example():
    # The example sends "start_image_url" and "aspect_ratio": "16:9" together, but the field's own text says
    # "If provided, the output aspect ratio is determined by this image instead of the aspect_ratio parameter",
    # so with a start frame reelhook leaves aspect_ratio out (test_wan_start_frame_drops_aspect_ratio).
    call = body_for("freepik/wan-2-7-reference-to-video", {
        "prompt": "Image 1 is dancing in a garden while Video 1 plays guitar in the background",
        "negative_prompt": "watermark, text, distortion, blurry, extra limbs",
        "reference_images": [{"url": "https://example.com/character1.jpg", "voice_url": "https://example.com/voice1.wav"}],
        "reference_videos": [{"url": "https://example.com/character1.mp4", "voice_url": "https://example.com/voice1.wav"}],
        "first_frame": "https://example.com/start-frame.jpg",
        "aspect_ratio": "16:9", "resolution": "1080p", "duration": 5, "seed": 12345,
        "options": {"prompt_extend": True},
    }, webhook="https://www.example.com/webhook")
    assert call.path == "/v1/ai/reference-to-video/wan-2-7"
    assert call.json == {
        "prompt": "Image 1 is dancing in a garden while Video 1 plays guitar in the background",
        "webhook_url": "https://www.example.com/webhook",
        "negative_prompt": "watermark, text, distortion, blurry, extra limbs",
        "image_urls": [{"url": "https://example.com/character1.jpg", "reference_voice": "https://example.com/voice1.wav"}],
        "video_urls": [{"url": "https://example.com/character1.mp4", "reference_voice": "https://example.com/voice1.wav"}],
        "start_image_url": "https://example.com/start-frame.jpg",
        "resolution": "1080P", "duration": 5, "seed": 12345,
        "additional_settings": {"prompt_extend": True},
    }


def kling_job(**extra):
    return {"prompt": "a dancer, like @Video1", "reference_videos": [{"url": "https://example.com/ref.mp4"}],
            "first_frame": "https://example.com/start.png", "duration": 5, "aspect_ratio": "16:9",
            "options": {"cfg_scale": 0.5}, "negative_prompt": "blur, distort, and low quality"} | extra


@pytest.mark.parametrize(("extras", "path"), [
    (LEGACY, "/v1/ai/video/kling-v3-omni-pro/video-reference"),
    (CURRENT, "/v1/ai/reference-to-video/kling-v3-omni-pro"),
])
def test_kling_document_example_on_both_paths(extras, path):
    call = body_for("freepik/kling-v3-omni-pro-video-reference", kling_job(), webhook="<string>", extras=extras)
    assert call.path == path
    assert call.json == {
        "webhook_url": "<string>", "prompt": "a dancer, like @Video1", "image_url": "https://example.com/start.png",
        "video_url": "https://example.com/ref.mp4", "duration": "5", "aspect_ratio": "16:9", "cfg_scale": 0.5,
        "negative_prompt": "blur, distort, and low quality",
    }
    assert isinstance(call.json["duration"], str)
    assert FREEPIK.status_call(get_model("freepik/kling-v3-omni-std-video-reference"), "t1", extras).path == \
        "/v1/ai/reference-to-video/kling-v3-omni/t1"


def fields(model_id, job):
    return {e.field: e for e in get_model(model_id).validate(job)}


VEO = "freepik/veo-3-1-reference-to-video"
IMG = {"url": "https://example.com/a.png"}


@pytest.mark.parametrize(("job", "field", "allowed"), [
    ({"prompt": "x"}, "reference_images", {"min": 1, "max": 3}),
    ({"prompt": "x", "reference_images": [IMG] * 4}, "reference_images", {"min": 1, "max": 3}),
    ({"prompt": "x" * 20001, "reference_images": [IMG]}, "prompt", {"max_length": 20000}),
    ({"prompt": "x", "negative_prompt": "n" * 20001, "reference_images": [IMG]}, "negative_prompt", {"max_length": 20000}),
    ({"prompt": "x", "reference_images": [IMG], "resolution": "8k"}, "resolution", ["720p", "1080p", "4k"]),
    ({"prompt": "x", "reference_images": [IMG], "aspect_ratio": "1:1"}, "aspect_ratio", ["16:9", "9:16"]),
    ({"prompt": "x", "reference_images": [IMG], "seed": -1}, "seed", {"minimum": 0, "maximum": 4294967295}),
    ({"prompt": "x", "reference_images": [IMG], "duration": 8}, "duration", None),
    ({"prompt": "x", "reference_images": [IMG], "first_frame": "https://e.com/f.png"}, "first_frame", ["reference_images"]),
    ({"prompt": "x", "reference_images": [IMG], "options": {"cfg_scale": 1}}, "options.cfg_scale", []),
])
def test_veo_constraints_name_the_field_and_what_is_allowed(job, field, allowed):
    errors = fields(VEO, job)
    assert field in errors, errors
    assert errors[field].allowed == allowed


WAN = "freepik/wan-2-7-reference-to-video"


@pytest.mark.parametrize(("job", "field"), [
    ({"prompt": "x"}, "reference_images"),  # at least one image or video
    ({"prompt": "x", "reference_images": [IMG] * 3, "reference_videos": [IMG] * 3}, "reference_images"),
    ({"prompt": "x" * 5001, "reference_images": [IMG]}, "prompt"),
    ({"prompt": "x", "negative_prompt": "n" * 501, "reference_images": [IMG]}, "negative_prompt"),
    ({"prompt": "x", "reference_images": [IMG], "duration": 1}, "duration"),
    ({"prompt": "x", "reference_images": [IMG], "duration": 11}, "duration"),
    ({"prompt": "x", "reference_images": [IMG], "seed": 2147483648}, "seed"),
    ({"prompt": "x", "reference_images": [IMG], "aspect_ratio": "21:9"}, "aspect_ratio"),
    ({"prompt": "x", "reference_images": [IMG], "resolution": "4k"}, "resolution"),
    ({"prompt": "x", "reference_images": [IMG], "options": {"prompt_extend": "yes"}}, "options.prompt_extend"),
    ({"prompt": "x", "reference_images": [IMG], "audio": True}, "audio"),
])
def test_wan_constraints(job, field):
    assert field in fields(WAN, job)


def test_wan_accepts_five_combined_and_voices():
    job = {"prompt": "x", "reference_images": [IMG | {"voice_url": "https://e.com/v.wav"}] * 2,
           "reference_videos": [IMG] * 3}
    assert fields(WAN, job) == {}


KLING = "freepik/kling-v3-omni-pro-video-reference"


@pytest.mark.parametrize(("job", "field"), [
    (kling_job(reference_videos=None), "reference_videos"),
    (kling_job(prompt="x" * 2501), "prompt"),
    (kling_job(duration=2), "duration"),
    (kling_job(duration=16), "duration"),
    (kling_job(aspect_ratio="4:3"), "aspect_ratio"),
    (kling_job(options={"cfg_scale": 2.5}), "options.cfg_scale"),
    (kling_job(reference_images=[IMG]), "reference_images"),
    (kling_job(seed=1), "seed"),
])
def test_kling_constraints(job, field):
    job = {k: v for k, v in job.items() if v is not None}
    assert field in fields(KLING, job)


def test_kling_cfg_scale_range_follows_the_endpoint(monkeypatch):
    from reelhook import config
    from reelhook.providers import freepik

    legacy = {m.id: m for m in freepik._models()}[KLING]
    assert legacy.options["cfg_scale"].maximum == 2.0
    assert legacy.validate(kling_job(options={"cfg_scale": 1.5})) == []
    monkeypatch.setenv("FREEPIK_KLING_ENDPOINT", "reference-to-video")
    config._provider_settings.cache_clear()
    try:
        current = {m.id: m for m in freepik._models()}[KLING]
        assert current.options["cfg_scale"].maximum == 1.0
        assert [e.field for e in current.validate(kling_job(options={"cfg_scale": 1.5}))] == ["options.cfg_scale"]
    finally:
        monkeypatch.undo()
        config._provider_settings.cache_clear()


@pytest.mark.parametrize(("body", "phase", "urls"), [
    ({"task_id": "t", "status": "CREATED", "generated": []}, Phase.SUBMITTED, ()),
    ({"task_id": "t", "status": "IN_PROGRESS", "generated": []}, Phase.RUNNING, ()),
    ({"task_id": "t", "status": "COMPLETED", "generated": ["https://cdn.example/v.mp4"]}, Phase.COMPLETED,
     ("https://cdn.example/v.mp4",)),
    ({"task_id": "t", "status": "COMPLETED", "generated": [{"url": "https://cdn.example/v.mp4"}]}, Phase.COMPLETED,
     ("https://cdn.example/v.mp4",)),
    ({"data": {"task_id": "t", "status": "COMPLETED", "generated": ["https://cdn.example/v.mp4"]}}, Phase.COMPLETED,
     ("https://cdn.example/v.mp4",)),
    ({"task_id": "t", "status": "COMPLETED", "generated": []}, Phase.RUNNING, ()),
    ({"task_id": "t", "status": "FAILED", "generated": []}, Phase.FAILED, ()),
])
def test_status_shapes(body, phase, urls):
    status = FREEPIK.parse_status(body, from_webhook="data" not in body)
    assert (status.task_id, status.phase, status.result_urls) == ("t", phase, urls)


@pytest.mark.parametrize("body", [[], "x", {"status": "DONE"}, {"status": "COMPLETED", "generated": 5},
                                  {"status": "COMPLETED", "generated": [{"href": 1}]}, {"task_id": 5, "status": "CREATED"}])
def test_malformed_status_bodies(body):
    with pytest.raises(MalformedPayload):
        FREEPIK.parse_status(body, from_webhook=True)


def test_error_messages():
    assert FREEPIK.error_message(401, {"message": "Invalid API key"}) == "Invalid API key"
    problem = {"problem": {"message": "Your request parameters didn't validate.",
                           "invalid_params": [{"name": "image_urls", "reason": "too many"}]}}
    assert FREEPIK.error_message(400, problem) == "Your request parameters didn't validate. (image_urls: too many)"
    assert FREEPIK.error_message(500, "<html>") == "HTTP 500"
    json.dumps(FREEPIK.models[0].catalog_entry())
