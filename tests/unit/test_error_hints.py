"""A client's mistake is answered with what would have been right: the closest model or field
name, and the values the named model takes, even when the value had the wrong type."""

from __future__ import annotations

import json
from typing import Any

from reelhook import http_api

REF = "https://example.com/a.png"


def _fields(body: dict[str, Any], key: str | None = None) -> dict[str, dict[str, Any]]:
    status, answer = http_api.create_job(json.dumps(body).encode(), key, "https://callbacks.example.com",
                                         owner="anonymous")
    assert 400 <= status < 500, answer
    return {field["field"]: field for field in answer["error"].get("fields", [])}


def test_a_mistyped_model_is_offered_the_closest_one():
    fields = _fields({"model": "uniall/veo3.1-vdeo-720p", "prompt": "x"})
    assert fields["model"]["message"].endswith("did you mean 'uniall/veo3.1-video-720p'?")
    assert "uniall/veo3.1-video-720p" in fields["model"]["allowed"]


def test_a_model_nothing_like_any_is_not_guessed_at():
    fields = _fields({"model": "zzzz", "prompt": "x"})
    assert "did you mean" not in fields["model"]["message"]


def test_a_mistyped_field_is_offered_the_closest_one_and_the_fields_there_are():
    fields = _fields({"model": "uniall/veo3.1-video-720p", "Promt": "x"})
    assert fields["Promt"]["message"] == "is not a known field; did you mean 'prompt'?"
    assert "prompt" in fields["Promt"]["allowed"] and "notify_url" in fields["Promt"]["allowed"]


def test_a_duration_of_the_wrong_type_still_lists_the_models_durations():
    fields = _fields({"model": "uniall/veo3.1-video-720p", "prompt": "x", "duration": "eight"})
    assert fields["duration"]["allowed"] == [4, 6, 8]
    assert "4, 6, 8" in fields["duration"]["message"]


def test_a_mistyped_option_is_offered_the_closest_one():
    fields = _fields({"model": "freepik/wan-2-7-reference-to-video", "prompt": "x", "reference_images": [REF],
                      "options": {"prompt_extnd": True}})
    [field] = [f for name, f in fields.items() if name.startswith("options.")]
    assert "did you mean 'prompt_extend'?" in field["message"], field


def test_the_idempotency_key_message_says_what_is_enforced():
    status, answer = http_api.create_job(b"{}", "has space", "https://callbacks.example.com", owner="anonymous")
    assert status == 400
    assert "no spaces" in answer["error"]["message"]
