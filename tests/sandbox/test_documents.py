"""The sandbox follows the provider documents, not reelhook's inferences (issue 12)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from reelhook_local.sandbox import ProviderSandbox
from tests.provider_documents import AIHUBMAX, KLING, SPEC, UNIALL, does_not_say, says
from tests.sandbox.support import (
    AIHUBMAX_BODY,
    AIHUBMAX_CREATE,
    AUTH,
    IMG,
    KLING_BODY,
    UNIALL_CREATE,
    UNIALL_MINIMAL,
    VID,
    poll,
    submit,
)


@pytest.mark.parametrize(("path", "status"), [
    (says(KLING, "/v1/ai/video/kling-v3-omni-pro/video-reference"), 200),
    (says(SPEC, "/v1/ai/reference-to-video/kling-v3-omni-pro"), 200),
    (says(SPEC, "/v1/ai/reference-to-video/kling-v3-omni-std"), 200),
    # Listed by no document: a provider built from the documents does not have it.
    ("/v1/ai/video/kling-v3-omni-std/video-reference", 404),
])
def test_kling_paths_are_the_documented_ones_only(sandbox: ProviderSandbox, client: httpx.Client,
                                                  path: str, status: int) -> None:
    does_not_say(KLING, "kling-v3-omni-std/video-reference")
    response = submit(client, sandbox, "freepik", path, KLING_BODY | {"cfg_scale": 0.5})
    assert response.status_code == status, response.text


def test_uniall_can_answer_exactly_the_documents_create_example(make_sandbox: Callable[..., ProviderSandbox],
                                                                 client: httpx.Client) -> None:
    says(UNIALL, "Response Examples Example 1 {}")
    sandbox = make_sandbox(uniall_create_answer="empty")
    response = submit(client, sandbox, "uniall", UNIALL_CREATE, UNIALL_MINIMAL)
    assert response.status_code == 200 and response.json() == {}
    assert len(sandbox.tasks) == 1  # a task exists (and would be billed) though the answer names none


def test_uniall_takes_aspect_ratio_in_image_to_video_and_extension(sandbox: ProviderSandbox,
                                                                    client: httpx.Client) -> None:
    says(UNIALL, '"image": "https://example.com/keyframe.png", "size": "720p", "aspect_ratio": "16:9"')
    for inputs in ({"image": IMG}, {"video": VID}):
        body = UNIALL_MINIMAL | inputs | {"aspect_ratio": "16:9"}
        assert submit(client, sandbox, "uniall", UNIALL_CREATE, body).status_code == 200


def test_uniall_can_finish_with_several_outputs(make_sandbox: Callable[..., ProviderSandbox],
                                                client: httpx.Client) -> None:
    sandbox = make_sandbox(uniall_result_shape="result.outputs", uniall_output_count=2)
    task_id = submit(client, sandbox, "uniall", UNIALL_CREATE, UNIALL_MINIMAL).json()["id"]
    seen = poll(client, f"{sandbox.base_url('uniall')}/v1/videos/{task_id}", "uniall",
                lambda b: b["status"] == "completed")
    outputs = seen[-1]["result"]["outputs"]
    assert len(outputs) == len(set(outputs)) == 2
    for url in outputs:
        assert client.get(url).status_code == 200


def test_aihubmax_field_names_are_not_only_reelhooks_guess(make_sandbox: Callable[..., ProviderSandbox],
                                                           client: httpx.Client) -> None:
    says(AIHUBMAX, "Content safety level, 1 is the strictest, 6 is the most permissive.")
    does_not_say(AIHUBMAX, "safety_level")
    sandbox = make_sandbox(aihubmax_field_names={"safety_level": "content_safety_level"},
                           aihubmax_strict_fields=True)
    guessed = submit(client, sandbox, "aihubmax", AIHUBMAX_CREATE, AIHUBMAX_BODY)
    assert guessed.status_code == 400 and guessed.json()["error"]["param"] == "safety_level"
    renamed = {k: v for k, v in AIHUBMAX_BODY.items() if k != "safety_level"} | {"content_safety_level": 7}
    out_of_range = submit(client, sandbox, "aihubmax", AIHUBMAX_CREATE, renamed)
    assert out_of_range.status_code == 400 and out_of_range.json()["error"]["param"] == "content_safety_level"
    assert submit(client, sandbox, "aihubmax", AIHUBMAX_CREATE, renamed | {"content_safety_level": 3}).status_code == 200


def test_aihubmax_paths_and_id_field_can_differ_from_the_inference(make_sandbox: Callable[..., ProviderSandbox],
                                                                   client: httpx.Client) -> None:
    says(AIHUBMAX, "use the returned task ID to query task status")
    sandbox = make_sandbox(aihubmax_create_path="/v2/videos", aihubmax_status_prefix="/v2/videos/",
                           aihubmax_id_field="task_id")
    assert submit(client, sandbox, "aihubmax", AIHUBMAX_CREATE, AIHUBMAX_BODY).status_code == 404
    created = submit(client, sandbox, "aihubmax", "/v2/videos", AIHUBMAX_BODY).json()
    assert "id" not in created
    status = client.get(f"{sandbox.base_url('aihubmax')}/v2/videos/{created['task_id']}", headers=AUTH["aihubmax"])
    assert status.status_code == 200
