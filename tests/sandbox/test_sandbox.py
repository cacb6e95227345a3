"""The provider sandbox over real HTTP: auth, validation, progression, webhooks, result links."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reelhook_local.sandbox import Phase, ProviderSandbox
from reelhook_local.sandbox.__main__ import parse_args
from tests.sandbox.support import (
    AIHUBMAX_BODY,
    AIHUBMAX_CREATE,
    AUTH,
    FREEPIK_CASES,
    FREEPIK_KEY,
    IMG,
    IMG2,
    KLING_BODY,
    KLING_STATUS,
    SECRET,
    STEP,
    UNIALL_CREATE,
    UNIALL_KEY,
    UNIALL_MINIMAL,
    VEO_BODY,
    VEO_PATH,
    VID,
    WAN_BODY,
    WAN_PATH,
    Receiver,
    download,
    freepik_done,
    poll,
    submit,
    verify_signature,
)

# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, "Missing API key"), ({"x-freepik-api-key": "wrong"}, "Invalid API key"),
     ({"x-magnific-api-key": "wrong"}, "Invalid API key")],
)
def test_freepik_refuses_missing_or_wrong_key(sandbox: ProviderSandbox, client: httpx.Client,
                                              headers: dict[str, str], message: str) -> None:
    response = client.post(sandbox.base_url("freepik") + VEO_PATH, json=VEO_BODY, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": message}
    assert len(sandbox.tasks) == 0


def test_freepik_accepts_the_magnific_header(sandbox: ProviderSandbox, client: httpx.Client) -> None:
    response = client.post(sandbox.base_url("freepik") + VEO_PATH, json=VEO_BODY,
                           headers={"x-magnific-api-key": FREEPIK_KEY})
    assert response.status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {UNIALL_KEY}"])
def test_uniall_refuses_bad_tokens(sandbox: ProviderSandbox, client: httpx.Client,
                                   authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.post(sandbox.base_url("uniall") + UNIALL_CREATE, headers=headers,
                           json={"model": "veo3.1-video-720p", "prompt": "x"})
    assert response.status_code == 401
    assert response.json() == {"error": {"message": "invalid token"}}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong"])
def test_aihubmax_refuses_bad_tokens(sandbox: ProviderSandbox, client: httpx.Client,
                                     authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(sandbox.base_url("aihubmax") + "/v1/tasks/task-unified-1-abcdefgh", headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key"
    assert error["type"] == "authentication_error"
    assert error["message"]


# -- Freepik ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", FREEPIK_CASES)
def test_freepik_task_completes_and_video_downloads(sandbox: ProviderSandbox, client: httpx.Client,
                                                    case: str) -> None:
    create, body, status_prefix = FREEPIK_CASES[case]
    response = submit(client, sandbox, "freepik", create, body)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == "CREATED"
    assert data["generated"] == []
    task_id = data["task_id"]

    seen = poll(client, f"{sandbox.base_url('freepik')}{status_prefix}/{task_id}", "freepik", freepik_done)
    assert seen[-1]["data"]["status"] == "COMPLETED"
    assert {s["data"]["task_id"] for s in seen} == {task_id}
    [url] = seen[-1]["data"]["generated"]
    assert url.startswith(f"{sandbox.root_url}/files/{task_id}.mp4?expires=")
    download(client, url, sandbox)

    task = sandbox.tasks[task_id]
    assert task.provider == "freepik"
    assert task.path == create
    assert task.body == body
    assert task.status_history == ["CREATED", "IN_PROGRESS", "COMPLETED"]


def test_freepik_task_is_only_found_under_its_own_model(sandbox: ProviderSandbox, client: httpx.Client) -> None:
    task_id = submit(client, sandbox, "freepik", VEO_PATH, VEO_BODY).json()["data"]["task_id"]
    base = sandbox.base_url("freepik")
    assert client.get(f"{base}{VEO_PATH}/{task_id}", headers=AUTH["freepik"]).status_code == 200
    for path in (f"{WAN_PATH}/{task_id}", f"{VEO_PATH}/00000000-0000-4000-8000-000000000000"):
        response = client.get(base + path, headers=AUTH["freepik"])
        assert response.status_code == 404
        assert response.json() == {"message": "Not found"}


def test_freepik_lists_tasks_per_model(sandbox: ProviderSandbox, client: httpx.Client) -> None:
    pro = submit(client, sandbox, "freepik", FREEPIK_CASES["kling-pro-current"][0], KLING_BODY).json()
    std = submit(client, sandbox, "freepik", FREEPIK_CASES["kling-std-current"][0], KLING_BODY).json()
    submit(client, sandbox, "freepik", VEO_PATH, VEO_BODY)
    listed = client.get(sandbox.base_url("freepik") + KLING_STATUS, headers=AUTH["freepik"]).json()["data"]
    assert [t["task_id"] for t in listed] == [pro["data"]["task_id"], std["data"]["task_id"]]
    page_two = client.get(sandbox.base_url("freepik") + KLING_STATUS, params={"page": 2, "page_size": 1},
                          headers=AUTH["freepik"]).json()["data"]
    assert [t["task_id"] for t in page_two] == [std["data"]["task_id"]]


def test_freepik_generated_items_can_be_objects(make_sandbox: Callable[..., ProviderSandbox],
                                                client: httpx.Client) -> None:
    sandbox = make_sandbox(freepik_generated_objects=True)
    task_id = submit(client, sandbox, "freepik", VEO_PATH, VEO_BODY).json()["data"]["task_id"]
    seen = poll(client, f"{sandbox.base_url('freepik')}{VEO_PATH}/{task_id}", "freepik", freepik_done)
    [item] = seen[-1]["data"]["generated"]
    download(client, item["url"], sandbox)


@pytest.mark.parametrize(
    ("path", "body", "bad_field"),
    [
        (VEO_PATH, {**VEO_BODY, "image_urls": [IMG, IMG2, IMG, IMG2]}, "image_urls"),
        (VEO_PATH, {**VEO_BODY, "image_urls": []}, "image_urls"),
        (VEO_PATH, {**VEO_BODY, "image_urls": ["http://example.com/a.jpg"]}, "image_urls[0]"),
        (VEO_PATH, {k: v for k, v in VEO_BODY.items() if k != "prompt"}, "prompt"),
        (VEO_PATH, {**VEO_BODY, "prompt": "x" * 20001}, "prompt"),
        (VEO_PATH, {**VEO_BODY, "resolution": "1080P"}, "resolution"),
        (VEO_PATH, {**VEO_BODY, "aspect_ratio": "1:1"}, "aspect_ratio"),
        (VEO_PATH, {**VEO_BODY, "generate_audio": "yes"}, "generate_audio"),
        (VEO_PATH, {**VEO_BODY, "seed": -1}, "seed"),
        (VEO_PATH, {**VEO_BODY, "webhook_url": "not a url"}, "webhook_url"),
        (WAN_PATH, {**WAN_BODY, "image_urls": [{"url": IMG}] * 3, "video_urls": [{"url": VID}] * 3}, "image_urls"),
        (WAN_PATH, {"prompt": "no references"}, "image_urls"),
        (WAN_PATH, {**WAN_BODY, "image_urls": [IMG]}, "image_urls[0]"),
        (WAN_PATH, {**WAN_BODY, "negative_prompt": "n" * 501}, "negative_prompt"),
        (WAN_PATH, {**WAN_BODY, "resolution": "1080p"}, "resolution"),
        (WAN_PATH, {**WAN_BODY, "duration": 11}, "duration"),
        (WAN_PATH, {**WAN_BODY, "seed": 2147483648}, "seed"),
        (WAN_PATH, {**WAN_BODY, "additional_settings": {"prompt_extend": "yes"}}, "additional_settings.prompt_extend"),
        (FREEPIK_CASES["kling-pro-documented"][0], {**KLING_BODY, "duration": 5}, "duration"),
        (FREEPIK_CASES["kling-pro-documented"][0], {**KLING_BODY, "duration": "16"}, "duration"),
        (FREEPIK_CASES["kling-pro-documented"][0], {**KLING_BODY, "cfg_scale": 2.5}, "cfg_scale"),
        (FREEPIK_CASES["kling-pro-current"][0], {**KLING_BODY, "cfg_scale": 1.5}, "cfg_scale"),
        (FREEPIK_CASES["kling-std-current"][0], {"prompt": "no video"}, "video_url"),
        (FREEPIK_CASES["kling-std-current"][0], {**KLING_BODY, "aspect_ratio": "4:3"}, "aspect_ratio"),
    ],
)
def test_freepik_rejects_invalid_bodies(sandbox: ProviderSandbox, client: httpx.Client, path: str,
                                        body: dict[str, Any], bad_field: str) -> None:
    response = submit(client, sandbox, "freepik", path, body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()["problem"]
    assert problem["message"] == "Your request parameters didn't validate."
    assert bad_field in [p["name"] for p in problem["invalid_params"]]
    assert all(p["reason"] for p in problem["invalid_params"])
    assert len(sandbox.tasks) == 0


def test_freepik_rejects_a_body_that_is_not_json(sandbox: ProviderSandbox, client: httpx.Client) -> None:
    response = client.post(sandbox.base_url("freepik") + VEO_PATH, content=b"{nope",
                           headers={**AUTH["freepik"], "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["problem"]["invalid_params"][0]["name"] == "body"


# -- Freepik webhooks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected_statuses"),
    [("wan", ["IN_PROGRESS", "COMPLETED"]), ("kling-pro-documented", ["IN_PROGRESS", "COMPLETED"]),
     ("veo", ["COMPLETED"])],
)
def test_freepik_webhooks_are_signed_and_match_the_status(
    sandbox: ProviderSandbox, client: httpx.Client, receiver: Receiver, case: str, expected_statuses: list[str]
) -> None:
    create, body, status_prefix = FREEPIK_CASES[case]
    created = submit(client, sandbox, "freepik", create, {**body, "webhook_url": receiver.url}).json()
    task_id = created["data"]["task_id"]
    sandbox.wait_for(task_id)
    assert sandbox.wait_for_webhooks()
    received = receiver.wait_for(len(expected_statuses))
    time.sleep(STEP * 2)  # nothing more arrives
    assert len(receiver.received) == len(expected_statuses)

    ids = set()
    for hook in received:
        assert hook.path == "/hook"
        assert hook.headers["content-type"] == "application/json"
        assert verify_signature(SECRET.encode(), hook.headers, hook.body)
        assert not verify_signature(b"another-secret", hook.headers, hook.body)
        assert abs(int(hook.headers["webhook-timestamp"]) - time.time()) < 300
        assert set(hook.json()) == {"task_id", "status", "generated"}  # the GET body without "data"
        assert hook.json()["task_id"] == task_id
        ids.add(hook.headers["webhook-id"])
    assert len(ids) == len(received)
    assert [h.json()["status"] for h in received] == expected_statuses

    final = received[-1].json()
    polled = client.get(f"{sandbox.base_url('freepik')}{status_prefix}/{task_id}", headers=AUTH["freepik"]).json()
    assert final == polled["data"]
    download(client, final["generated"][0], sandbox)

    deliveries = sandbox.tasks[task_id].deliveries
    assert [d.status for d in deliveries] == expected_statuses
    assert all(d.response_status == 200 and d.attempts == 1 and d.url == receiver.url for d in deliveries)
    assert [d.delivery_id for d in deliveries] == [h.headers["webhook-id"] for h in received]


def test_freepik_webhook_key_can_be_the_base64_decoded_secret(
    make_sandbox: Callable[..., ProviderSandbox], client: httpx.Client, receiver: Receiver
) -> None:
    raw_key = b"\x00\x01binary key\xff"
    secret = "whsec_" + base64.b64encode(raw_key).decode()
    sandbox = make_sandbox(freepik_webhook_secret=secret, freepik_webhook_key_encoding="base64")
    submit(client, sandbox, "freepik", VEO_PATH, {**VEO_BODY, "webhook_url": receiver.url})
    [hook] = receiver.wait_for(1)
    assert verify_signature(raw_key, hook.headers, hook.body)


def test_webhooks_are_retried_after_5xx_and_connection_errors(
    sandbox: ProviderSandbox, client: httpx.Client, receiver: Receiver
) -> None:
    receiver.answers = [500, 503]
    task_id = submit(client, sandbox, "freepik", VEO_PATH, {**VEO_BODY, "webhook_url": receiver.url}).json()
    task_id = task_id["data"]["task_id"]
    received = receiver.wait_for(3)
    assert len({h.headers["webhook-id"] for h in received}) == 1  # the same delivery, retried
    sandbox.wait_for(task_id, lambda t: len(t.deliveries) == 1)
    [delivery] = sandbox.tasks[task_id].deliveries
    assert (delivery.attempts, delivery.response_status, delivery.error) == (3, 200, None)

    dead = "http://127.0.0.1:9/hook"  # the discard port: nothing listens
    gone = submit(client, sandbox, "freepik", VEO_PATH, {**VEO_BODY, "webhook_url": dead}).json()["data"]["task_id"]
    task = sandbox.wait_for(gone, lambda t: len(t.deliveries) == 1)
    [failed] = task.deliveries
    assert failed.response_status is None
    assert failed.attempts == sandbox.config.webhook_attempts
    assert failed.error


# -- UniAll -------------------------------------------------------------------------------------

UNIALL_MODES = {
    "text": ("veo3.1-video-1080p", {"size": "1080p", "aspect_ratio": "16:9", "duration": 8}),
    "image": ("veo3.1-video-720p", {"image": IMG, "size": "720p", "duration": 6}),
    "first-last": ("veo3.1-fast-video-1080p", {"image": IMG, "last_image": IMG2, "aspect_ratio": "16:9",
                                               "duration": "6"}),
    "reference": ("veo3.1-video-4k", {"images": [IMG, IMG2], "aspect_ratio": "9:16", "duration": 4}),
    "extension": ("veo3.1-fast-video-720p", {"video": VID, "size": "720p"}),
}


@pytest.mark.parametrize("mode", UNIALL_MODES)
def test_uniall_modes_complete(sandbox: ProviderSandbox, client: httpx.Client, mode: str) -> None:
    model, inputs = UNIALL_MODES[mode]
    body = {"model": model, "prompt": "a slow camera move", **inputs,
            "extra_body": {"generate_audio": True, "negative_prompt": "blur", "seed": 7}}
    response = submit(client, sandbox, "uniall", UNIALL_CREATE, body)
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["status"] == "queued"
    assert created["model"] == model
    assert created["id"].startswith("vid_")

    url = f"{sandbox.base_url('uniall')}/v1/videos/{created['id']}"
    seen = poll(client, url, "uniall", lambda b: b["status"] in ("completed", "failed"))
    final = seen[-1]
    assert final["status"] == "completed"
    assert final["progress"] == 100
    download(client, final["video_url"], sandbox)
    assert all(s["status"] in ("queued", "in_progress", "completed") for s in seen)
    task = sandbox.tasks[created["id"]]
    assert (task.mode, task.model) == (mode, model)
    assert task.deliveries == []


@pytest.mark.parametrize(
    ("shape", "locate"),
    [("video_url", lambda b: b["video_url"]), ("result.video_url", lambda b: b["result"]["video_url"]),
     ("result.outputs", lambda b: b["result"]["outputs"][0])],
)
def test_uniall_result_shapes(make_sandbox: Callable[..., ProviderSandbox], client: httpx.Client,
                              shape: str, locate: Callable[[dict[str, Any]], str]) -> None:
    sandbox = make_sandbox(uniall_result_shape=shape)
    task_id = submit(client, sandbox, "uniall", UNIALL_CREATE, UNIALL_MINIMAL).json()["id"]
    final = poll(client, f"{sandbox.base_url('uniall')}/v1/videos/{task_id}", "uniall",
                 lambda b: b["status"] == "completed")[-1]
    download(client, locate(final), sandbox)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "veo3.1-fast-video-720p", "images": [IMG, IMG2]}, "images"),
        ({"model": "veo3.1-video-720p", "images": [IMG]}, "images"),
        ({"model": "veo3.1-video-720p", "images": [IMG, IMG2, IMG, IMG2]}, "images"),
        ({"model": "veo3.2-video-720p"}, "model"),
        ({"model": "veo3.1-video-720p", "size": "1080p"}, "size"),
        ({"model": "veo3.1-video-720p", "duration": 5}, "duration"),
        ({"model": "veo3.1-video-720p", "aspect_ratio": "1:1"}, "aspect_ratio"),
        ({"model": "veo3.1-video-720p", "image": IMG, "aspect_ratio": "1:1"}, "aspect_ratio"),
        ({"model": "veo3.1-video-720p", "video": VID, "aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"model": "veo3.1-video-720p", "last_image": IMG}, "last_image"),
        ({"model": "veo3.1-video-720p", "video": VID, "image": IMG}, "video"),
        ({"model": "veo3.1-video-720p", "extra_body": {"seed": "7"}}, "extra_body.seed"),
        ({"model": "veo3.1-video-720p", "prompt": None}, "prompt"),
    ],
)
def test_uniall_rejects_invalid_bodies(sandbox: ProviderSandbox, client: httpx.Client,
                                       body: dict[str, Any], param: str) -> None:
    response = submit(client, sandbox, "uniall", UNIALL_CREATE, {"prompt": "x", **body})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert error["message"]


# -- AIHubMax -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [AIHUBMAX_BODY,
     {"model": "veo-3.1-fast-reference-to-video", "prompt": "x", "reference_image_urls": [IMG, IMG2, IMG],
      "auto_fix_prompt": False, "safety_level": 6}],
    ids=["standard", "fast"],
)
def test_aihubmax_task_completes(sandbox: ProviderSandbox, client: httpx.Client, body: dict[str, Any]) -> None:
    response = submit(client, sandbox, "aihubmax", AIHUBMAX_CREATE, body)
    assert response.status_code == 200, response.text
    created = response.json()
    assert created["id"].startswith("task-unified-")
    _, _, ts, suffix = created["id"].split("-")
    assert ts == str(created["created"])
    assert len(suffix) == 8 and suffix.isalnum() and suffix == suffix.lower()
    assert {k: created[k] for k in ("model", "object", "progress", "status", "type")} == {
        "model": body["model"], "object": "video.generation.task", "progress": 0, "status": "pending",
        "type": "video"}

    seen = poll(client, f"{sandbox.base_url('aihubmax')}/v1/tasks/{created['id']}", "aihubmax",
                lambda b: b["status"] in ("completed", "failed"))
    final = seen[-1]
    assert final["status"] == "completed"
    assert final["object"] == "video.generation.task"
    [url] = final["results"]
    download(client, url, sandbox)
    assert sandbox.tasks[created["id"]].status_history == ["pending", "processing", "completed"]


def test_aihubmax_result_objects_and_early_completion(make_sandbox: Callable[..., ProviderSandbox],
                                                      client: httpx.Client) -> None:
    sandbox = make_sandbox(aihubmax_result_objects=True, aihubmax_early_completed=True)
    task_id = submit(client, sandbox, "aihubmax", AIHUBMAX_CREATE, AIHUBMAX_BODY).json()["id"]
    seen = poll(client, f"{sandbox.base_url('aihubmax')}/v1/tasks/{task_id}", "aihubmax",
                lambda b: bool(b.get("results")))
    completed = [s for s in seen if s["status"] == "completed"]
    assert completed[0]["results"] == []  # completed before the results were there
    assert completed[-1]["results"][0]["url"]
    download(client, completed[-1]["results"][0]["url"], sandbox)
    assert sandbox.tasks[task_id].status_history == ["pending", "processing", "completed", "completed"]


def test_aihubmax_early_completion_waits_until_someone_saw_it(make_sandbox: Callable[..., ProviderSandbox],
                                                              client: httpx.Client) -> None:
    sandbox = make_sandbox(aihubmax_early_completed=True)
    task_id = submit(client, sandbox, "aihubmax", AIHUBMAX_CREATE, AIHUBMAX_BODY).json()["id"]
    sandbox.wait_for(task_id, lambda t: t.phase is Phase.RESULTS_PENDING)
    time.sleep(STEP * 4)  # nobody polled: it stays there
    url = f"{sandbox.base_url('aihubmax')}/v1/tasks/{task_id}"
    body = client.get(url, headers=AUTH["aihubmax"]).json()
    assert (body["status"], body["results"]) == ("completed", [])
    sandbox.wait_for(task_id)
    assert client.get(url, headers=AUTH["aihubmax"]).json()["results"]


def test_aihubmax_callbacks_are_unsigned_status_bodies(make_sandbox: Callable[..., ProviderSandbox],
                                                       client: httpx.Client, receiver: Receiver) -> None:
    sandbox = make_sandbox(aihubmax_early_completed=True)
    task_id = submit(client, sandbox, "aihubmax", AIHUBMAX_CREATE,
                     {**AIHUBMAX_BODY, "callback_url": receiver.url}).json()["id"]
    received = receiver.wait_for(3)
    assert [(h.json()["status"], h.json().get("results")) for h in received[:2]] == [
        ("processing", None), ("completed", [])]
    assert received[2].json()["results"]
    assert all("webhook-signature" not in h.headers for h in received)
    polled = client.get(f"{sandbox.base_url('aihubmax')}/v1/tasks/{task_id}", headers=AUTH["aihubmax"]).json()
    assert received[2].json() == polled


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"model": "veo-3.1-fast-reference-to-video"}, "enhance_prompt"),
        ({"model": "veo-3.1-fast-reference-to-video", "enhance_prompt": None, "person_generation": None},
         "reference_image_type"),
        ({"duration": 6}, "duration"),
        ({"duration": "8"}, "duration"),
        ({"reference_image_urls": []}, "reference_image_urls"),
        ({"reference_image_urls": [IMG] * 4}, "reference_image_urls"),
        ({"safety_level": 7}, "safety_level"),
        ({"person_generation": "allow_all"}, "person_generation"),
        ({"reference_image_type": "asset"}, "reference_image_type"),
        ({"resolution": "1080P"}, "resolution"),
        ({"model": "veo-3.1-lite-reference-to-video"}, "model"),
        ({"callback_url": "http://example.com/hook"}, "callback_url"),
    ],
)
def test_aihubmax_rejects_invalid_bodies(sandbox: ProviderSandbox, client: httpx.Client,
                                         change: dict[str, Any], param: str) -> None:
    response = submit(client, sandbox, "aihubmax", AIHUBMAX_CREATE, {**AIHUBMAX_BODY, **change})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"code", "message", "type", "param"}
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


# -- failures, faults, links, manual control ------------------------------------------------------


def test_fail_me_prompts_fail_everywhere(sandbox: ProviderSandbox, client: httpx.Client) -> None:
    fp = submit(client, sandbox, "freepik", WAN_PATH, {**WAN_BODY, "prompt": "please FAIL_ME"}).json()
    ua = submit(client, sandbox, "uniall", UNIALL_CREATE, {"model": "veo3.1-video-720p", "prompt": "FAIL_ME"}).json()
    ah = submit(client, sandbox, "aihubmax", AIHUBMAX_CREATE, {**AIHUBMAX_BODY, "prompt": "x FAIL_ME"}).json()

    final = poll(client, f"{sandbox.base_url('freepik')}{WAN_PATH}/{fp['data']['task_id']}", "freepik",
                 freepik_done)[-1]["data"]
    assert (final["status"], final["generated"]) == ("FAILED", [])

    final = poll(client, f"{sandbox.base_url('uniall')}/v1/videos/{ua['id']}", "uniall",
                 lambda b: b["status"] in ("completed", "failed"))[-1]
    assert final["status"] == "failed"
    assert final["error"]["message"]
    assert "video_url" not in final

    final = poll(client, f"{sandbox.base_url('aihubmax')}/v1/tasks/{ah['id']}", "aihubmax",
                 lambda b: b["status"] in ("completed", "failed"))[-1]
    assert final["status"] == "failed"
    assert set(final["error"]) == {"code", "message"}
    assert not final.get("results")
    assert sandbox.tasks[ah["id"]].status_history == ["pending", "processing", "failed"]


@pytest.mark.parametrize(
    ("provider", "path", "body"),
    [("freepik", VEO_PATH, VEO_BODY),
     ("uniall", UNIALL_CREATE, {"model": "veo3.1-video-720p", "prompt": "x"}),
     ("aihubmax", AIHUBMAX_CREATE, AIHUBMAX_BODY)],
)
def test_injected_submit_failures_are_used_once(sandbox: ProviderSandbox, client: httpx.Client,
                                                provider: str, path: str, body: dict[str, Any]) -> None:
    sandbox.config.faults.fail_next_submit_with = 429
    sandbox.config.faults.fail_submits.append(503)
    first = submit(client, sandbox, provider, path, body)
    assert first.status_code == 429
    assert first.headers["retry-after"] == "1"
    if provider == "freepik":
        assert first.json() == {"message": "Too many requests"}
    else:
        assert first.json()["error"]["type"] == "rate_limit_error"
    assert submit(client, sandbox, provider, path, body).status_code == 503
    assert sandbox.config.faults.fail_next_submit_with is None
    assert submit(client, sandbox, provider, path, body).status_code == 200
    assert len(sandbox.tasks) == 1


def test_result_links_expire(make_sandbox: Callable[..., ProviderSandbox], client: httpx.Client) -> None:
    sandbox = make_sandbox(link_ttl_seconds=0.4)
    task_id = submit(client, sandbox, "freepik", VEO_PATH, VEO_BODY).json()["data"]["task_id"]
    task = sandbox.wait_for(task_id)
    url = sandbox.result_url(task)
    download(client, url, sandbox)

    tampered = client.get(url.split("?")[0] + "?expires=9999999999")
    assert tampered.status_code == 403
    time.sleep(max(0.0, task.link_expires_at - time.time()) + 0.05)
    expired = client.get(url)
    assert expired.status_code == 403
    assert expired.headers["content-type"] == "application/xml"
    assert b"Request has expired" in expired.content
    assert client.get(f"{sandbox.root_url}/files/nope.mp4?expires=1").status_code == 404


def test_result_files_support_ranges_and_head(sandbox: ProviderSandbox, client: httpx.Client) -> None:
    task_id = submit(client, sandbox, "freepik", VEO_PATH, VEO_BODY).json()["data"]["task_id"]
    url = sandbox.result_url(sandbox.wait_for(task_id))
    data = sandbox.config.video_bytes
    size = len(data)

    head = client.head(url)
    assert (head.status_code, head.headers["content-length"], head.content) == (200, str(size), b"")
    part = client.get(url, headers={"Range": "bytes=10-19"})
    assert (part.status_code, part.content) == (206, data[10:20])
    assert part.headers["content-range"] == f"bytes 10-19/{size}"
    assert client.get(url, headers={"Range": "bytes=-5"}).content == data[-5:]
    assert client.get(url, headers={"Range": f"bytes={size - 3}-"}).content == data[-3:]
    assert client.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
    assert client.get(url, headers={"Range": "bytes=0-1,5-6"}).content == data  # several ranges: ignored


def test_custom_video_bytes_are_served(make_sandbox: Callable[..., ProviderSandbox], client: httpx.Client) -> None:
    sandbox = make_sandbox(video_bytes=b"\x00\x00\x00\x18ftypmp42 not really a video")
    assert sandbox.served_sha256 == hashlib.sha256(sandbox.config.video_bytes).hexdigest()
    task_id = submit(client, sandbox, "uniall", UNIALL_CREATE, UNIALL_MINIMAL).json()["id"]
    assert download(client, sandbox.result_url(sandbox.wait_for(task_id)), sandbox) == sandbox.config.video_bytes


def test_manual_progression_without_a_clock(make_sandbox: Callable[..., ProviderSandbox], client: httpx.Client,
                                            receiver: Receiver) -> None:
    sandbox = make_sandbox(step_seconds=None)
    task_id = submit(client, sandbox, "freepik", WAN_PATH, {**WAN_BODY, "webhook_url": receiver.url}).json()
    task_id = task_id["data"]["task_id"]
    time.sleep(0.2)
    assert sandbox.tasks[task_id].status == "CREATED"
    assert sandbox.advance(task_id) is not None
    assert sandbox.tasks[task_id].status == "IN_PROGRESS"
    sandbox.force_status(task_id, "completed")
    sandbox.force_status(task_id, Phase.RUNNING)  # out of order on purpose
    assert sandbox.wait_for_webhooks()
    assert [h.json()["status"] for h in receiver.wait_for(3)] == ["IN_PROGRESS", "COMPLETED", "IN_PROGRESS"]
    assert sandbox.tasks[task_id].status_history == ["CREATED", "IN_PROGRESS", "COMPLETED", "IN_PROGRESS"]
    sandbox.advance(task_id)
    assert sandbox.tasks[task_id].status == "COMPLETED"
    assert sandbox.advance(task_id) is None


def test_unknown_routes_and_tasks(sandbox: ProviderSandbox, client: httpx.Client) -> None:
    assert client.get(f"{sandbox.root_url}/nowhere").status_code == 404
    assert client.get(sandbox.base_url("uniall") + "/v1/videos/vid_missing", headers=AUTH["uniall"]).status_code == 404
    missing = client.get(sandbox.base_url("aihubmax") + "/v1/tasks/task-unified-1-zzzzzzzz", headers=AUTH["aihubmax"])
    assert (missing.status_code, missing.json()["error"]["param"]) == (404, "task_id")
    with pytest.raises(ValueError, match="unknown provider"):
        sandbox.base_url("openai")
    assert [entry.status for entry in sandbox.request_log] == [404, 404, 404]


def test_standalone_arguments() -> None:
    args = parse_args(["--port", "0", "--step-seconds", "0.1", "--uniall-result-shape", "result.outputs"])
    assert (args.port, args.step_seconds, args.uniall_result_shape) == (0, 0.1, "result.outputs")


def test_the_result_file_is_a_real_mp4_with_video_and_audio(sandbox: ProviderSandbox, client: httpx.Client) -> None:
    import io

    import av

    task_id = submit(client, sandbox, "freepik", VEO_PATH, VEO_BODY).json()["data"]["task_id"]
    served = client.get(sandbox.result_url(sandbox.wait_for(task_id)))
    assert served.status_code == 200 and served.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(served.content)) as container:
        assert container.format.name.startswith("mov,mp4")
        [video], [audio] = container.streams.video, container.streams.audio
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert next(container.decode(video=0)).width == 320


@pytest.mark.parametrize(("kind", "status", "content_type", "counter"), [
    ("empty", 200, "video/mp4", "empty_bodies"),
    ("html", 200, "text/html; charset=utf-8", "html_answers"),
    ("not_video", 200, "video/mp4", "not_video_bodies"),
])
def test_broken_result_files_on_demand(sandbox: ProviderSandbox, client: httpx.Client, kind: str, status: int,
                                       content_type: str, counter: str) -> None:
    sandbox.config.faults.download_failures_before_success = 1
    sandbox.config.faults.download_failure_kind = kind  # type: ignore[assignment]
    task_id = submit(client, sandbox, "freepik", VEO_PATH, VEO_BODY).json()["data"]["task_id"]
    url = sandbox.result_url(sandbox.wait_for(task_id))
    broken = client.get(url)
    assert (broken.status_code, broken.headers["content-type"]) == (status, content_type)
    assert broken.content != sandbox.config.video_bytes and (kind != "empty" or broken.content == b"")
    assert broken.headers["content-length"] == str(len(broken.content))
    assert sandbox.fault_counts()[counter] == 1
    assert client.get(url).content == sandbox.config.video_bytes  # the next GET is served whole


def test_a_failed_webhook_is_logged_without_its_callback_token(sandbox, client, caplog):
    dead = "http://127.0.0.1:9/v1/callbacks/freepik/job_1?token=secret-callback-token"
    with caplog.at_level("WARNING", logger="reelhook_local.sandbox"):
        gone = submit(client, sandbox, "freepik", VEO_PATH, {**VEO_BODY, "webhook_url": dead}).json()["data"]["task_id"]
        sandbox.wait_for(gone, lambda t: len(t.deliveries) == 1)
    lines = [record.getMessage() for record in caplog.records if "failed after" in record.getMessage()]
    assert lines and all("/v1/callbacks/freepik/job_1" in line for line in lines)
    assert not [line for line in lines if "secret-callback-token" in line]
