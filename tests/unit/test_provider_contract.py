"""Each model against its provider document: paths, defaults, limits, field names (issue 12).

Every expectation quotes the document line it rests on (``says`` checks the quote against the
document when the documents are on this machine). What reelhook infers is stated as such.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from reelhook import config
from reelhook.openapi import document
from reelhook.providers import aihubmax, all_models, freepik, get_model, get_provider
from reelhook.providers.base import MalformedPayload
from tests.provider_documents import AIHUBMAX, KLING, SPEC, UNIALL, VEO, WAN, does_not_say, says

ROOT = Path(__file__).resolve().parents[2]
FREEPIK = get_provider("freepik")
UNIALL_P = get_provider("uniall")
AIHUBMAX_P = get_provider("aihubmax")
KLING_PRO = "freepik/kling-v3-omni-pro-video-reference"
KLING_STD = "freepik/kling-v3-omni-std-video-reference"
VID = [{"url": "https://example.com/ref.mp4"}]
IMG = [{"url": "https://example.com/a.png"}]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    """Set provider environment variables for one test; the cached settings follow them."""
    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        config._provider_settings.cache_clear()

    yield set_env
    monkeypatch.undo()
    config._provider_settings.cache_clear()


# -- 1. Kling 3 Omni Std posts to a path a document lists --------------------------------------


def test_kling_std_posts_to_the_current_spec_path_whatever_the_pro_endpoint():
    says(SPEC, "/v1/ai/reference-to-video/kling-v3-omni-std: post:")
    says(SPEC, "operationId: postAiReferenceToVideoKlingV3OmniStd")
    # The seed document is Pro's only; no document has a Std video-reference path.
    says(KLING, "--url https://api.freepik.com/v1/ai/video/kling-v3-omni-pro/video-reference")
    does_not_say(KLING, "kling-v3-omni-std")
    does_not_say(SPEC, "/v1/ai/video/kling-v3-omni-std/video-reference")
    spec = get_model(KLING_STD)
    job = {"reference_videos": VID}
    for extras in ({"kling_endpoint": "video-reference"}, {"kling_endpoint": "reference-to-video"}, {}):
        call = FREEPIK.submit_call(spec, job, None, extras)
        assert call.path == "/v1/ai/reference-to-video/kling-v3-omni-std"
        # The spec's request schema: "required: - video_url", nothing else.
        assert call.json == {"video_url": "https://example.com/ref.mp4"}
        assert FREEPIK.status_call(spec, "t", extras).path == "/v1/ai/reference-to-video/kling-v3-omni/t"
    # Pro keeps the seed document's path by default and takes the spec's by configuration.
    pro = get_model(KLING_PRO)
    assert FREEPIK.submit_call(pro, job, None, {"kling_endpoint": "video-reference"}).path == \
        "/v1/ai/video/kling-v3-omni-pro/video-reference"
    assert FREEPIK.submit_call(pro, job, None, {"kling_endpoint": "reference-to-video"}).path == \
        "/v1/ai/reference-to-video/kling-v3-omni-pro"


def test_kling_std_validates_cfg_scale_by_the_spec_it_posts_to(env):
    says(SPEC, "Range: 0 to 1. Values above 1 are not supported for Kling 3")
    says(KLING, "Required range: 0 <= x <= 2")
    models = {m.id: m for m in freepik._models()}
    assert models[KLING_STD].options["cfg_scale"].maximum == 1.0  # always the spec's path
    assert models[KLING_PRO].options["cfg_scale"].maximum == 2.0  # the seed document's path by default
    errors = models[KLING_STD].validate({"reference_videos": VID, "options": {"cfg_scale": 1.5}})
    assert [(e.field, e.allowed) for e in errors] == [("options.cfg_scale", {"minimum": 0, "maximum": 1.0})]
    env(FREEPIK_KLING_ENDPOINT="reference-to-video")
    assert {m.id: m for m in freepik._models()}[KLING_PRO].options["cfg_scale"].maximum == 1.0


# -- 2. UniAll keeps every output -----------------------------------------------------------------


def test_uniall_keeps_every_output_of_a_finished_task():
    outputs = ["https://c/1.mp4", "https://c/2.mp4", "https://c/3.mp4"]
    status = UNIALL_P.parse_status({"id": "v", "status": "completed", "result": {"outputs": outputs}},
                                   from_webhook=False)
    assert status.result_urls == tuple(outputs)
    # Links named in several places are each kept once; none is dropped.
    both = {"id": "v", "status": "completed", "video_url": outputs[0], "result": {"outputs": outputs[:2]}}
    assert UNIALL_P.parse_status(both, from_webhook=False).result_urls == tuple(outputs[:2])


# -- 3. UniAll's single-image-to-video example ----------------------------------------------------


def test_uniall_image_to_video_takes_aspect_ratio_as_the_document_example_does():
    says(UNIALL, '"image": "https://example.com/keyframe.png", "size": "720p", "aspect_ratio": "16:9", "duration": 6,')
    spec = get_model("uniall/veo3.1-video-720p")
    job = {"prompt": ", and. ", "first_frame": "https://example.com/keyframe.png", "aspect_ratio": "16:9"}
    assert spec.validate(job) == []
    assert UNIALL_P.submit_call(spec, job, None, {}).json["aspect_ratio"] == "16:9"
    # Still only the documented values, and the error says which.
    [error] = spec.validate(job | {"aspect_ratio": "1:1"})
    assert (error.field, error.allowed) == ("aspect_ratio", ["16:9", "9:16"])


# -- 4. Defaults are part of the contract -----------------------------------------------------------

UNIALL_DEFAULTS = {"negative_prompt": None, "duration": None, "aspect_ratio": None, "audio": None, "seed": None}
AIHUBMAX_DEFAULTS = {"duration": 8, "aspect_ratio": "16:9", "resolution": "1080p", "audio": False,
                     "options.auto_fix_prompt": None, "options.safety_level": None}
KLING_DEFAULTS = {"negative_prompt": "blur, distort, and low quality", "duration": 5, "aspect_ratio": "16:9",
                  "options.cfg_scale": 0.5}
# Every field's default for all 12 models, with the words each documented one rests on.
EXPECTED_DEFAULTS: dict[str, dict[str, Any]] = {
    "freepik/veo-3-1-reference-to-video": {
        "negative_prompt": None, "seed": None,
        "aspect_ratio": says(VEO, "aspect_ratio enum<string> default:16:9") and "16:9",
        "resolution": says(VEO, "resolution enum<string> default:720p") and "720p",
        "audio": says(VEO, "generate_audio boolean default:true") and True,
    },
    "freepik/wan-2-7-reference-to-video": {
        "negative_prompt": None,
        "duration": says(WAN, "duration integer default:5") and 5,
        "aspect_ratio": says(WAN, "aspect_ratio enum<string> default:16:9") and "16:9",
        "resolution": says(WAN, "resolution enum<string> default:1080P") and "1080p",
        "seed": says(WAN, "Leave unset for random seed.") and None,
        "options.prompt_extend": says(SPEC, "prompt_extend: default: true") and True,
    },
    KLING_PRO: KLING_DEFAULTS,
    KLING_STD: KLING_DEFAULTS,
    **{f"uniall/veo3.1-{tier}video-{res}": UNIALL_DEFAULTS | {"resolution": res}
       for tier in ("", "fast-") for res in ("720p", "1080p", "4k")},
    "aihubmax/veo-3.1-reference-to-video": AIHUBMAX_DEFAULTS | {
        "options.enhance_prompt": None, "options.person_generation": None, "options.reference_image_type": None},
    "aihubmax/veo-3.1-fast-reference-to-video": AIHUBMAX_DEFAULTS,
}
says(KLING, "negative_prompt string default:blur, distort, and low quality")
says(KLING, "duration enum<string> default:5")
says(KLING, "aspect_ratio enum<string> default:16:9")
says(KLING, "cfg_scale number<float> default:0.5")
says(AIHUBMAX, "16:9— Landscape (default)")
says(AIHUBMAX, "1080p— High definition (default)")
says(AIHUBMAX, "Whether to generate accompanying audio Notes: - Disabled by default")
says(AIHUBMAX, "Reference-to-video is fixed at 8seconds")


def test_the_catalogue_gives_every_fields_default_for_all_12_models():
    catalogue = {entry["id"]: entry for entry in (m.catalog_entry() for m in all_models().values())}
    assert set(catalogue) == set(EXPECTED_DEFAULTS) and len(catalogue) == 12
    for model_id, expected in EXPECTED_DEFAULTS.items():
        spec, entry = get_model(model_id), catalogue[model_id]
        assert set(spec.defaults) == set(spec.optional_fields()), f"{model_id} declares a default for each field"
        assert {name: d["value"] for name, d in entry["defaults"].items()} == expected, model_id
        for name, default in entry["defaults"].items():
            assert default["source"] in {"document", "spec", "reelhook", "undocumented"}
            if default["value"] is None:
                assert default.get("note"), f"{model_id} {name}: a null default says why"
        # "audio": accepted and default apart, never one flag meaning "accepted".
        assert entry["audio"] == {"accepted": "audio" in expected, "default": expected.get("audio")}
        for name, option in entry["options"].items():
            assert option["default"] == expected[f"options.{name}"]


def test_the_same_omitted_field_means_what_each_document_says():
    veo = get_model("freepik/veo-3-1-reference-to-video")
    hub = get_model("aihubmax/veo-3.1-reference-to-video")
    wan = get_model("freepik/wan-2-7-reference-to-video")
    assert veo.effective({"prompt": "p", "reference_images": IMG})[0] == {
        "negative_prompt": None, "aspect_ratio": "16:9", "resolution": "720p", "audio": True, "seed": None}
    values, notes = hub.effective({"prompt": "p", "reference_images": IMG, "options": {"safety_level": 2}})
    assert values == {"duration": 8, "aspect_ratio": "16:9", "resolution": "1080p", "audio": False,
                      "options": {"auto_fix_prompt": None, "safety_level": 2, "enhance_prompt": None,
                                  "person_generation": None, "reference_image_type": None}}
    assert any(note.startswith("options.auto_fix_prompt: not sent") for note in notes)
    assert wan.effective({"prompt": "p", "reference_images": IMG, "resolution": "720p"})[0] == {
        "negative_prompt": None, "duration": 5, "aspect_ratio": "16:9", "resolution": "720p", "seed": None,
        "options": {"prompt_extend": True}}


def test_the_openapi_description_lists_every_models_defaults():
    text = document()["info"]["description"]
    for model_id, expected in EXPECTED_DEFAULTS.items():
        for name, value in expected.items():
            shown = json.dumps(value) if value is not None else "none documented"
            assert f"| `{model_id}` | `{name}` | {shown} |" in text, (model_id, name)
    schema = document()["components"]["schemas"]
    entry = schema["ModelCatalog"]["properties"]["models"]["items"]
    assert entry["if"] == {"properties": {"logical": {"const": False}}}  # concrete models...
    assert "defaults" in entry["then"]["required"]  # ...always publish their defaults
    assert {"effective", "effective_notes"} <= set(schema["JobOut"]["properties"])
    assert "default" in schema["JobRequest"]["properties"]["audio"]["description"]


def readme_defaults_row(model_id: str) -> str:
    """The README model table's row for one model: its options and every default."""
    spec = get_model(model_id)
    shown = []
    for name in spec.optional_fields():
        value = spec.default(name).value
        shown.append(f"`{name.removeprefix('options.')}` {json.dumps(value) if value is not None else '—'}")
    options = ", ".join(f"`{name}`" for name in spec.options) or "—"
    return f"| `{model_id}` | {options} | {', '.join(shown)} |"


def test_the_readme_model_table_names_each_models_options_and_defaults():
    readme = (ROOT / "README.md").read_text()
    missing = [model_id for model_id in EXPECTED_DEFAULTS if readme_defaults_row(model_id) not in readme]
    assert not missing, "README rows to update:\n" + "\n".join(readme_defaults_row(m) for m in missing)


# -- 5. Only documented limits as fact --------------------------------------------------------------


def own(model_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    entry = get_model(model_id).catalog_entry()
    return {(limit["field"], limit["limit"]): limit for limit in entry["reelhook_limits"]}


def test_seed_maximum_is_marked_as_reelhooks_own_where_no_document_gives_one():
    says(VEO, "seed integer Random seed for reproducibility Required range: x >= 0")
    veo = own("freepik/veo-3-1-reference-to-video")
    assert set(veo) == {("seed", "maximum")}
    assert veo["seed", "maximum"]["value"] == 4294967295 and "no maximum" in veo["seed", "maximum"]["reason"]
    # WAN's range is documented: nothing of reelhook's own.
    says(WAN, "Required range: 0 <= x <= 2147483647")
    assert own("freepik/wan-2-7-reference-to-video") == {}
    for model_id in (m for m in EXPECTED_DEFAULTS if m.startswith("uniall/")):
        limits = own(model_id)
        assert {("seed", "minimum"), ("seed", "maximum"), ("prompt", "max_length"),
                ("negative_prompt", "max_length"), ("aspect_ratio", "not in video-extension mode")} == set(limits)
        assert all(limit["reason"] for limit in limits.values())
    for model_id in (m for m in EXPECTED_DEFAULTS if m.startswith("aihubmax/")):
        assert set(own(model_id)) == {("prompt", "max_length"), ("prompt", "required")}


def test_every_published_limit_is_documented_or_marked_as_reelhooks():
    documented = {  # model prefix -> (limit, value, the words)
        "freepik/veo": [("prompt", 20000, says(VEO, "prompt string required"))],
        "freepik/wan": [("prompt", 5000, says(WAN, "Maximum string length: 5000")),
                        ("seed", (0, 2147483647), says(WAN, "Required range: 0 <= x <= 2147483647"))],
        "freepik/kling": [("prompt", 2500, says(KLING, "Maximum string length: 2500"))],
        "uniall/": [], "aihubmax/": [],
    }
    says(VEO, "Maximum string length: 20000")
    for model_id in EXPECTED_DEFAULTS:
        spec = get_model(model_id)
        facts = next(v for k, v in documented.items() if model_id.startswith(k))
        marked = own(model_id)
        if not any(name == "prompt" for name, _, _ in facts):
            assert ("prompt", "max_length") in marked, model_id
        else:
            assert next(v for n, v, _ in facts if n == "prompt") == spec.prompt_max
        if spec.seed_range is not None and not any(name == "seed" for name, _, _ in facts):
            assert ("seed", "maximum") in marked, model_id


def test_kling_prompt_is_not_required_as_neither_document_nor_spec_requires_it():
    # The spec's request schema: "required: - video_url" and nothing else; the document marks no field required.
    says(SPEC, "required: - video_url title: Kling 3 Omni Video Reference Request")
    for model_id in (KLING_PRO, KLING_STD):
        spec = get_model(model_id)
        assert spec.catalog_entry()["prompt"] == {"required": False, "max_length": 2500}
        assert spec.validate({"reference_videos": VID}) == []
        assert "prompt" not in FREEPIK.submit_call(spec, {"reference_videos": VID}, None, {}).json
    # Where a document requires it, it stays required and the error names it.
    [error] = get_model("freepik/veo-3-1-reference-to-video").validate({"reference_images": IMG})
    assert (error.field, error.message) == ("prompt", "is required")


# -- 6. AIHubMax's unnamed fields ------------------------------------------------------------------


def test_aihubmax_option_names_are_marked_unconfirmed_in_the_catalogue():
    says(AIHUBMAX, "Auto-fix prompt; both model variants support this field. Do not pass this parameter unless "
                   "necessary.")
    says(AIHUBMAX, "Content safety level, 1 is the strictest, 6 is the most permissive.")
    does_not_say(AIHUBMAX, "auto_fix_prompt")
    does_not_say(AIHUBMAX, "safety_level")
    for model_id in ("aihubmax/veo-3.1-reference-to-video", "aihubmax/veo-3.1-fast-reference-to-video"):
        entry = get_model(model_id).catalog_entry()
        for name, option in entry["options"].items():
            assert option["provider_field_confirmed"] is False and option["provider_field"] == name
        assert any("unconfirmed" in note and "AIHUBMAX_FIELD_NAMES" in note for note in entry["notes"])
    # Documented names stay confirmed.
    assert get_model(KLING_PRO).catalog_entry()["options"]["cfg_scale"]["provider_field_confirmed"] is True


def test_aihubmax_field_names_are_configuration(env, caplog):
    # A Powertools "reelhook" logger made earlier in this worker (the chaos stack makes it at
    # CRITICAL) would silence the module's warnings: give the module its own level.
    caplog.set_level(logging.WARNING, logger=aihubmax.__name__)
    env(AIHUBMAX_FIELD_NAMES="safety_level=contentSafetyLevel, audio=generateAudio,nonsense=x,broken")
    extras = config.settings().provider("aihubmax").extras
    spec = {m.id: m for m in aihubmax._models()}["aihubmax/veo-3.1-reference-to-video"]
    job = {"prompt": "p", "reference_images": IMG, "audio": True, "options": {"safety_level": 3}}
    body = AIHUBMAX_P.submit_call(spec, job, None, extras).json
    assert body == {"model": "veo-3.1-reference-to-video", "prompt": "p",
                    "reference_image_urls": ["https://example.com/a.png"], "generateAudio": True,
                    "contentSafetyLevel": 3}
    assert spec.catalog_entry()["options"]["safety_level"]["provider_field"] == "contentSafetyLevel"
    assert {"'nonsense=x'", "'broken'"} <= {m.split(" ")[2] for m in caplog.messages if "ignoring" in m}


def test_aihubmax_paths_are_configuration(env):
    spec = get_model("aihubmax/veo-3.1-reference-to-video")
    job = {"prompt": "p", "reference_images": IMG}
    default = config.settings().provider("aihubmax").extras
    assert AIHUBMAX_P.submit_call(spec, job, None, default).path == "/v1/videos/generations"
    assert AIHUBMAX_P.status_call(spec, "task-unified-1-a", default).path == "/v1/tasks/task-unified-1-a"
    env(AIHUBMAX_CREATE_PATH="/v2/video/tasks", AIHUBMAX_STATUS_PATH="/v2/video/tasks/{task_id}/status")
    extras = config.settings().provider("aihubmax").extras
    assert AIHUBMAX_P.submit_call(spec, job, None, extras).path == "/v2/video/tasks"
    assert AIHUBMAX_P.status_call(spec, "t1", extras).path == "/v2/video/tasks/t1/status"


# -- 7. An id-less create answer ----------------------------------------------------------------------


def test_uniall_documented_create_answer_has_no_task_id():
    says(UNIALL, "Response Examples Example 1 {}")
    with pytest.raises(MalformedPayload):
        UNIALL_P.parse_submit({})
    assert UNIALL_P.parse_submit({"id": "vid_1"}) == UNIALL_P.parse_submit({"task_id": "vid_1"}) == "vid_1"


# -- 8. WAN with a start frame -----------------------------------------------------------------------------


def test_wan_start_frame_drops_aspect_ratio():
    says(WAN, "Optional first-frame image. If provided, the output aspect ratio is determined by this image instead "
              "of the aspect_ratio parameter.")
    spec = get_model("freepik/wan-2-7-reference-to-video")
    job = {"prompt": "p", "reference_images": IMG, "aspect_ratio": "9:16"}
    assert FREEPIK.submit_call(spec, job, None, {}).json["aspect_ratio"] == "9:16"
    framed = job | {"first_frame": "https://example.com/start.png"}
    assert spec.validate(framed) == []
    body = FREEPIK.submit_call(spec, framed, None, {}).json
    assert "aspect_ratio" not in body and body["start_image_url"] == "https://example.com/start.png"
    values, notes = spec.effective(framed)
    assert values["aspect_ratio"] is None
    assert "aspect_ratio: the first_frame decides it, so it is not sent (the job's '9:16' was not sent)" in notes
    assert spec.catalog_entry()["decided_by"] == {"aspect_ratio": "first_frame"}


# -- What reelhook infers, each with the words it rests on ---------------------------------------------------

INFERENCES = [
    ("UniAll's create answer names the task in id or task_id", UNIALL, "Response Examples Example 1 {}"),
    ("UniAll's duration is sent as an integer, as in every example (the table's type column says string)",
     UNIALL, '"duration": 8,'),
    ("UniAll refuses aspect_ratio in video-extension mode", UNIALL, "image-to-video, video extension use, pass"),
    ("AIHubMax's field names besides model and reference_image_urls", AIHUBMAX,
     "Provide 1-3 reference images via reference_image_urls"),
    ("AIHubMax's create and status paths", AIHUBMAX, "use the returned task ID to query task status"),
    ("AIHubMax's task id is in id or task_id", AIHUBMAX, 'Task ID "task-unified-1757165031-uyujaw3d"'),
    ("AIHubMax's prompt is required", AIHUBMAX, "Text prompt describing the desired video content"),
]


@pytest.mark.parametrize(("inference", "document_name", "words"), INFERENCES, ids=[i[0] for i in INFERENCES])
def test_each_inference_rests_on_a_document_line_and_is_in_the_readme(inference, document_name, words):
    says(document_name, words)
    readme = (ROOT / "README.md").read_text()
    assert inference in readme, f"the README's list of inferences should say: {inference}"


def test_aihubmax_submit_body_uses_no_name_the_document_gives_for_something_else():
    # Only these two names appear in the document; everything else reelhook sends is inferred.
    for name in ("reference_image_urls", "veo-3.1-reference-to-video"):
        says(AIHUBMAX, name)
    spec = get_model("aihubmax/veo-3.1-fast-reference-to-video")
    body = AIHUBMAX_P.submit_call(spec, {"prompt": "p", "reference_images": IMG}, None, {}).json
    assert set(body) == {"model", "prompt", "reference_image_urls"}
    assert re.fullmatch(r"veo-3\.1-(fast-)?reference-to-video", body["model"])
