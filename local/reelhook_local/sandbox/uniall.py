"""UniAll: six Veo 3.1 models behind ``POST /v1/video/generations``; poll only, no webhooks.

- ``Authorization: Bearer <key>``.
- The mode follows the inputs: text (prompt only), image (``image``), first-last
  (``image`` + ``last_image``), reference (``images``, 2-3, standard models only) and
  extension (``video``). ``aspect_ratio`` (16:9 or 9:16) is accepted in every mode: the
  document's image-to-video example sends one and no text clearly forbids it elsewhere.
- The document's only create answer is ``{}`` (``SandboxConfig.uniall_create_answer="empty"``);
  by default the sandbox names the task in ``id``, or in ``task_id``.
- Status is read at ``GET /v1/videos/{id}`` (plural). Where the video URL appears is not
  settled, so ``SandboxConfig.uniall_result_shape`` picks one of the three documented places.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any

from .protocol import (
    BadJson,
    Host,
    Outgoing,
    Request,
    Response,
    fault_words,
    status_words,
)
from .tasks import Phase, Task, new_task
from .validation import Fields, Invalid

NAME = "uniall"
STATUSES = status_words("queued", "in_progress", "completed", "failed")
CREATE_PATH = "/v1/video/generations"
STATUS_PREFIX = "/v1/videos/"
RESOLUTIONS = ("720p", "1080p", "4k")
# model -> (resolution, is_fast)
MODELS: dict[str, tuple[str, bool]] = {
    **{f"veo3.1-video-{r}": (r, False) for r in RESOLUTIONS},
    **{f"veo3.1-fast-video-{r}": (r, True) for r in RESOLUTIONS},
}
DURATIONS = (4, 6, 8)
MODE_INPUTS = ("image", "last_image", "images", "video")
PROGRESS = {
    Phase.SUBMITTED: 0,
    Phase.RUNNING: 50,
    Phase.RESULTS_PENDING: 99,
    Phase.COMPLETED: 100,
    Phase.FAILED: 100,
}


def error(status: int, text: str, *, type_: str = "invalid_request_error", param: str | None = None,
          headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"message": text, "type": type_}
    if param is not None:
        body["param"] = param
    return Response.json(status, {"error": body}, headers=headers)


def _mode(f: Fields) -> str:
    """The generation mode the inputs select; conflicting inputs are recorded as problems."""
    present = {name for name in MODE_INPUTS if f.present(name)}
    if "video" in present and len(present) > 1:
        f.problem("video", "'video' (extension) cannot be combined with 'image', 'last_image' or 'images'")
    elif "images" in present and present & {"image", "last_image"}:
        f.problem("images", "'images' (multi-image reference) cannot be combined with 'image' or 'last_image'")
    elif "last_image" in present and "image" not in present:
        f.problem("last_image", "'last_image' needs 'image' (the first frame)")
    if "video" in present:
        return "extension"
    if "images" in present:
        return "reference"
    if "last_image" in present:
        return "first-last"
    return "image" if "image" in present else "text"


def validate(body: dict[str, Any], schemes: tuple[str, ...]) -> tuple[str, list[Invalid]]:
    f = Fields(body)
    model = f.string("model", required=True, choices=tuple(MODELS))
    f.string("prompt", required=True, non_empty=True)
    for name in ("image", "last_image", "video"):
        f.url(name, schemes=schemes)
    f.url_array("images", schemes=schemes, min_items=2, max_items=3)
    mode = _mode(f)
    if model is not None:
        resolution, fast = MODELS[model]
        if mode == "reference" and fast:
            f.problem("images", f"model '{model}' does not support multi-image reference ('images')")
        size = f.string("size")
        if size is not None and size != resolution:
            f.problem("size", f"'size' must be '{resolution}' for model '{model}'")
    duration = body.get("duration")
    if duration is not None and (isinstance(duration, bool) or str(duration) not in {str(d) for d in DURATIONS}):
        f.problem("duration", "'duration' must be one of 4, 6, 8")
    # Allowed in every mode: the document forbids it in none (reelhook's refusal in extension mode
    # is its own inference, so the sandbox must not be the only place that believes it).
    f.string("aspect_ratio", choices=("16:9", "9:16"))
    extra = f.nested("extra_body")
    if extra is not None:
        extra.boolean("generate_audio")
        extra.string("negative_prompt")
        extra.integer("seed", minimum=0)
    return mode, f.problems


class UniallApi:
    name = NAME

    def __init__(self, host: Host) -> None:
        self.host = host

    def handle(self, request: Request) -> Response:
        token = request.bearer_token()
        expected = self.host.config.uniall_api_key
        if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
            return Response.json(401, {"error": {"message": "invalid token"}})
        if request.path == CREATE_PATH:
            if request.method != "POST":
                return error(405, "method not allowed")
            return self._create(request)
        if request.path.startswith(STATUS_PREFIX) and request.method == "GET":
            return self._status(request.path.removeprefix(STATUS_PREFIX))
        return error(404, "not found", type_="not_found_error")

    def _create(self, request: Request) -> Response:
        fault = self.host.api_fault("submit", NAME)
        if fault is not None:
            return self._fault(fault)
        try:
            body = request.json_object()
        except BadJson as exc:
            return error(400, str(exc))
        schemes = ("http", "https") if self.host.config.allow_http_inputs else ("https",)
        mode, problems = validate(body, schemes)
        if problems:
            return error(400, problems[0].reason, param=problems[0].name)
        now = self.host.now()
        task = new_task(
            task_id="vid_" + uuid.uuid4().hex[:24],
            provider=NAME,
            model=body["model"],
            path=request.path,
            body=body,
            statuses=STATUSES,
            prompt=body["prompt"],
            now=now,
            mode=mode,
        )
        self.host.tasks.add(task)
        answer = self.host.config.uniall_create_answer
        if answer == "empty":
            return Response.json(200, {})  # exactly the document's example: the task exists, unnamed
        return Response.json(200, {
            answer: task.task_id,
            "object": "video",
            "status": task.status,
            "progress": 0,
            "created_at": int(now),
            "model": task.model,
        })

    def _fault(self, status: int) -> Response:
        return self.refusal(status, self.host.config.faults.retry_after(status))

    def refusal(self, status: int, headers: dict[str, str]) -> Response:
        _, type_, text = fault_words(status)
        return error(status, text, type_=type_, headers=headers)

    def _status(self, task_id: str) -> Response:
        fault = self.host.api_fault("status")
        if fault is not None:
            return self._fault(fault)
        task = self.host.tasks.observe(task_id)
        if task is None or task.provider != NAME:
            return error(404, f"video '{task_id}' not found", type_="not_found_error", param="id")
        return Response.json(200, self.status_body(task))

    def status_body(self, task: Task) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": task.task_id,
            "object": "video",
            "model": task.model,
            "status": task.status,
            "progress": PROGRESS[task.phase],
            "created_at": int(task.created_at),
        }
        if task.phase is Phase.COMPLETED:
            url = self.host.result_url(task)
            shape = self.host.config.uniall_result_shape
            if shape == "video_url":
                body["video_url"] = url
            elif shape == "result.video_url":
                body["result"] = {"video_url": url}
            else:
                count = max(1, self.host.config.uniall_output_count)
                body["result"] = {"outputs": [url if i == 0 else f"{url}&output={i}" for i in range(count)]}
        if task.phase is Phase.FAILED:
            body["error"] = {"message": "video generation failed (sandbox: the prompt asked for it)"}
        return body

    def notifications(self, task: Task) -> list[Outgoing]:
        return []  # UniAll documents no webhooks
