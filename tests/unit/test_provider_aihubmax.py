"""AIHubMax: the document's request, per-model options, and the status shapes."""

import pytest

from reelhook.providers import get_model, get_provider
from reelhook.providers.base import Phase

AIHUBMAX = get_provider("aihubmax")
STD = "aihubmax/veo-3.1-reference-to-video"
FAST = "aihubmax/veo-3.1-fast-reference-to-video"


def test_document_example_values_map_onto_its_body():
    spec = get_model(STD)
    job = {"prompt": "A woman walking through a garden", "reference_images": [{"url": "https://example.com/ref1.jpg"}],
           "aspect_ratio": "16:9", "duration": 8, "resolution": "720p", "audio": True,
           "options": {"auto_fix_prompt": True, "safety_level": 3, "enhance_prompt": True,
                       "person_generation": "allow_adult", "reference_image_type": "STYLE"}}
    assert spec.validate(job) == []
    call = AIHUBMAX.submit_call(spec, job, None, {"callbacks": "false"})
    assert (call.method, call.path) == ("POST", "/v1/videos/generations")
    assert call.json == {"model": "veo-3.1-reference-to-video", "prompt": "A woman walking through a garden",
                         "reference_image_urls": ["https://example.com/ref1.jpg"], "aspect_ratio": "16:9",
                         "duration": 8, "resolution": "720p", "generate_audio": True, "auto_fix_prompt": True,
                         "safety_level": 3, "enhance_prompt": True, "person_generation": "allow_adult",
                         "reference_image_type": "STYLE"}


def test_optional_fields_are_sent_only_when_asked_and_callback_by_configuration():
    spec = get_model(FAST)
    job = {"prompt": "p", "reference_images": [{"url": "https://e.com/a.png"}]}
    assert AIHUBMAX.submit_call(spec, job, None, {}).json == {
        "model": "veo-3.1-fast-reference-to-video", "prompt": "p", "reference_image_urls": ["https://e.com/a.png"]}
    assert AIHUBMAX.sends_webhooks({"callbacks": "true"}) and not AIHUBMAX.sends_webhooks({})
    assert AIHUBMAX.submit_call(spec, job, "https://h/cb", {"callbacks": "true"}).json["callback_url"] == "https://h/cb"


IMG = [{"url": "https://e.com/a.png"}]


@pytest.mark.parametrize(("model", "job", "field"), [
    (STD, {}, "reference_images"),
    (STD, {"reference_images": IMG * 4}, "reference_images"),
    (STD, {"reference_images": IMG, "duration": 6}, "duration"),
    (STD, {"reference_images": IMG, "resolution": "2k"}, "resolution"),
    (STD, {"reference_images": IMG, "aspect_ratio": "1:1"}, "aspect_ratio"),
    (STD, {"reference_images": IMG, "options": {"safety_level": 0}}, "options.safety_level"),
    (STD, {"reference_images": IMG, "options": {"safety_level": 7}}, "options.safety_level"),
    (STD, {"reference_images": IMG, "options": {"person_generation": "allow_all"}}, "options.person_generation"),
    (STD, {"reference_images": IMG, "options": {"reference_image_type": "STYLISH"}}, "options.reference_image_type"),
    (FAST, {"reference_images": IMG, "options": {"enhance_prompt": True}}, "options.enhance_prompt"),
    (FAST, {"reference_images": IMG, "options": {"person_generation": "dont_allow"}}, "options.person_generation"),
    (FAST, {"reference_images": IMG, "options": {"reference_image_type": "ASSET"}}, "options.reference_image_type"),
    (STD, {"reference_images": IMG, "seed": 1}, "seed"),
    (STD, {"reference_images": IMG, "negative_prompt": "x"}, "negative_prompt"),
])
def test_constraints(model, job, field):
    assert field in {e.field for e in get_model(model).validate({"prompt": "p"} | job)}


def test_fast_model_takes_the_shared_options():
    job = {"prompt": "p", "reference_images": IMG, "options": {"auto_fix_prompt": False, "safety_level": 6}}
    assert get_model(FAST).validate(job) == []


@pytest.mark.parametrize(("answer", "phase", "urls"), [
    ({"id": "t", "status": "pending", "progress": 0}, Phase.SUBMITTED, ()),
    ({"id": "t", "status": "processing", "progress": 50}, Phase.RUNNING, ()),
    ({"id": "t", "status": "completed", "results": []}, Phase.RUNNING, ()),
    ({"id": "t", "status": "completed"}, Phase.RUNNING, ()),
    ({"id": "t", "status": "completed", "results": ["https://c/v.mp4"]}, Phase.COMPLETED, ("https://c/v.mp4",)),
    ({"id": "t", "status": "completed", "results": [{"url": "https://c/v.mp4"}]}, Phase.COMPLETED, ("https://c/v.mp4",)),
    ({"id": "t", "status": "failed", "error": {"code": "x", "message": "blocked"}}, Phase.FAILED, ()),
    ({"id": "t", "status": "cancelled"}, Phase.FAILED, ()),
])
def test_status_shapes(answer, phase, urls):
    status = AIHUBMAX.parse_status(answer, from_webhook=False)
    assert (status.task_id, status.phase, status.result_urls) == ("t", phase, urls)


def test_status_path_and_error_envelope():
    assert AIHUBMAX.status_call(get_model(STD), "task-unified-1-abc", {}).path == "/v1/tasks/task-unified-1-abc"
    body = {"error": {"code": "insufficient_quota", "message": "Insufficient quota", "type": "x", "param": None}}
    assert AIHUBMAX.error_message(402, body) == "Insufficient quota"
