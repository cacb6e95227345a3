"""AIHubMax: Veo 3.1 reference-to-video, standard and fast; poll, with an optional callback.

- ``Authorization: Bearer <key>``; errors are ``{"error": {"code", "message", "type", "param"}}``.
- ``POST /v1/videos/generations`` creates ``task-unified-<ts>-<8 chars>``; ``GET /v1/tasks/{id}``
  (both inferred, so ``aihubmax_create_path`` and ``aihubmax_status_prefix`` move them) reports
  ``pending``/``processing``/``completed``/``failed`` with ``results`` once completed.
- ``enhance_prompt``, ``person_generation`` and ``reference_image_type`` exist on the standard
  model only; ``duration`` can only be 8.
- Only ``model`` and ``reference_image_urls`` are named by the document; every other field
  name is an inference, so ``SandboxConfig.aihubmax_field_names`` can rename each and
  ``aihubmax_strict_fields`` refuses names it does not know.
- ``callback_url`` gets the status body, unsigned, on every status change. The real service
  wants https; the sandbox also takes http to a loopback host.
- With ``SandboxConfig.aihubmax_early_completed`` a task first reads ``completed`` with empty
  ``results`` (once seen by a poll or a callback) before the real completion.
"""

from __future__ import annotations

import hmac
import secrets
import string
from typing import Any

from .protocol import (
    BadJson,
    Host,
    Outgoing,
    Request,
    Response,
    encode_json,
    fault_words,
    status_words,
)
from .tasks import Phase, Task, new_task
from .validation import Fields, Invalid, is_loopback_url

NAME = "aihubmax"
STATUSES = status_words("pending", "processing", "completed", "failed")
CREATE_PATH = "/v1/videos/generations"
STATUS_PREFIX = "/v1/tasks/"
STANDARD = "veo-3.1-reference-to-video"
FAST = "veo-3.1-fast-reference-to-video"
STANDARD_ONLY = ("enhance_prompt", "person_generation", "reference_image_type")
TASK_OBJECT = "video.generation.task"
PROGRESS = {
    Phase.SUBMITTED: 0,
    Phase.RUNNING: 50,
    Phase.RESULTS_PENDING: 100,
    Phase.COMPLETED: 100,
    Phase.FAILED: 100,
}
_ID_ALPHABET = string.ascii_lowercase + string.digits


def error(status: int, code: str, text: str, *, type_: str = "invalid_request_error",
          param: str | None = None, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"code": code, "message": text, "type": type_, "param": param}}
    return Response.json(status, body, headers=headers)


# The fields the document names, and those whose names are inferred (by reelhook's name).
NAMED_FIELDS = ("model", "reference_image_urls", "callback_url")
INFERRED_FIELDS = ("prompt", "duration", "aspect_ratio", "resolution", "generate_audio", "auto_fix_prompt",
                   "safety_level", "enhance_prompt", "person_generation", "reference_image_type")


def validate(body: dict[str, Any], schemes: tuple[str, ...], names: dict[str, str] | None = None,
             *, strict: bool = False) -> list[Invalid]:
    """``names`` renames the inferred fields (inferred name -> expected name); ``strict`` refuses unknown ones."""
    n = {name: name for name in INFERRED_FIELDS} | (names or {})
    f = Fields(body)
    model = f.string("model", required=True, choices=(STANDARD, FAST))
    f.string(n["prompt"], required=True, non_empty=True)
    f.url_array("reference_image_urls", schemes=schemes, required=True, min_items=1, max_items=3)
    f.integer(n["duration"], choices=(8,))
    f.string(n["aspect_ratio"], choices=("16:9", "9:16"))
    f.string(n["resolution"], choices=("720p", "1080p", "4k"))
    f.boolean(n["generate_audio"])
    f.boolean(n["auto_fix_prompt"])
    f.integer(n["safety_level"], minimum=1, maximum=6)
    f.boolean(n["enhance_prompt"])
    f.string(n["person_generation"], choices=("dont_allow", "allow_adult"))
    f.string(n["reference_image_type"], choices=("ASSET", "STYLE"))
    if model == FAST:
        for name in (n[s] for s in STANDARD_ONLY):
            if f.present(name):
                f.problem(name, f"'{name}' is not supported by model '{FAST}'")
    callback = f.url("callback_url", schemes=("http", "https"))
    if callback is not None and callback.startswith("http:") and not is_loopback_url(callback):
        f.problem("callback_url", "'callback_url' must be an https URL")
    if strict:
        known = set(NAMED_FIELDS) | set(n.values())
        for name in sorted(set(body) - known):
            f.problem(name, f"'{name}' is not a known parameter")
    return f.problems


def new_task_id(now: float) -> str:
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    return f"task-unified-{int(now)}-{suffix}"


class AihubmaxApi:
    name = NAME

    def __init__(self, host: Host) -> None:
        self.host = host

    def handle(self, request: Request) -> Response:
        token = request.bearer_token()
        expected = self.host.config.aihubmax_api_key
        if token is None or not hmac.compare_digest(token.encode(), expected.encode()):
            text = "Missing API key" if token is None else "Invalid API key provided"
            return error(401, "invalid_api_key", text, type_="authentication_error")
        config = self.host.config
        if request.path == config.aihubmax_create_path:
            if request.method != "POST":
                return error(405, "method_not_allowed", "Method not allowed")
            return self._create(request)
        if request.path.startswith(config.aihubmax_status_prefix) and request.method == "GET":
            return self._status(request.path.removeprefix(config.aihubmax_status_prefix))
        return error(404, "not_found", "Not found", type_="not_found_error")

    def _create(self, request: Request) -> Response:
        fault = self.host.api_fault("submit", NAME)
        if fault is not None:
            return self._fault(fault)
        try:
            body = request.json_object()
        except BadJson as exc:
            return error(400, "invalid_json", str(exc))
        schemes = ("http", "https") if self.host.config.allow_http_inputs else ("https",)
        config = self.host.config
        names = config.aihubmax_field_names
        problems = validate(body, schemes, names, strict=config.aihubmax_strict_fields)
        if problems:
            return error(400, "invalid_parameter", problems[0].reason, param=problems[0].name)
        now = self.host.now()
        task = new_task(
            task_id=new_task_id(now),
            provider=NAME,
            model=body["model"],
            path=request.path,
            body=body,
            statuses=STATUSES,
            prompt=body[names.get("prompt", "prompt")],
            now=now,
            webhook_url=body.get("callback_url"),
            early_completed=self.host.config.aihubmax_early_completed,
        )
        self.host.tasks.add(task)
        return Response.json(200, {
            config.aihubmax_id_field: task.task_id,
            "created": int(now),
            "model": task.model,
            "object": TASK_OBJECT,
            "progress": 0,
            "status": task.status,
            "type": "video",
        })

    def _fault(self, status: int) -> Response:
        return self.refusal(status, self.host.config.faults.retry_after(status))

    def refusal(self, status: int, headers: dict[str, str]) -> Response:
        code, type_, text = fault_words(status)
        return error(status, code, text, type_=type_, headers=headers)

    def _status(self, task_id: str) -> Response:
        fault = self.host.api_fault("status")
        if fault is not None:
            return self._fault(fault)
        task = self.host.tasks.observe(task_id)
        if task is None or task.provider != NAME:
            return error(404, "task_not_found", f"Task '{task_id}' not found", param="task_id")
        return Response.json(200, self.status_body(task))

    def status_body(self, task: Task) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": task.task_id,
            "model": task.model,
            "object": TASK_OBJECT,
            "progress": PROGRESS[task.phase],
            "status": task.status,
            "created": int(task.created_at),
            "type": "video",
        }
        if task.phase is Phase.RESULTS_PENDING:
            body["results"] = []
        elif task.phase is Phase.COMPLETED:
            url = self.host.result_url(task)
            body["results"] = [{"url": url} if self.host.config.aihubmax_result_objects else url]
        elif task.phase is Phase.FAILED:
            body["error"] = {
                "code": "generation_failed",
                "message": "video generation failed (sandbox: the prompt asked for it)",
            }
        return body

    def notifications(self, task: Task) -> list[Outgoing]:
        if not task.webhook_url:
            return []
        delivery_id = f"{task.task_id}:{len(task.history)}"
        headers = {"Content-Type": "application/json", "User-Agent": "reelhook-sandbox (aihubmax callbacks)"}
        body = encode_json(self.status_body(task))
        return [Outgoing(task.webhook_url, body, headers, task.status, delivery_id)]
