"""Freepik (also Magnific): Veo 3.1, WAN 2.7 and Kling 3 Omni reference-to-video.

- Key in ``x-freepik-api-key`` or ``x-magnific-api-key``.
- Create answers ``{"data": {"task_id", "status": "CREATED", "generated": []}}``; the status
  GET wraps the same object in ``data``; webhooks send it unwrapped.
- Bad bodies get ``application/problem+json`` with ``invalid_params``.
- Webhooks are signed Standard-Webhooks style: ``webhook-id``, ``webhook-timestamp`` and
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``. Veo only notifies on
  completion or failure; WAN and Kling on every status change after creation.
- Kling has only the paths a document lists: the seed document's
  ``/v1/ai/video/kling-v3-omni-pro/video-reference`` (``cfg_scale`` 0-2, Pro only) and the
  current spec's ``/v1/ai/reference-to-video/kling-v3-omni-{pro,std}`` (``cfg_scale`` 0-1).
  No document has a Std ``video-reference`` path, so it is a 404 here too. All report under
  ``/v1/ai/reference-to-video/kling-v3-omni/{id}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from .protocol import BadJson, Host, Outgoing, Request, Response, encode_json, status_words
from .tasks import TERMINAL, Phase, Task, new_task
from .validation import Fields, Invalid

NAME = "freepik"
STATUSES = status_words("CREATED", "IN_PROGRESS", "COMPLETED", "FAILED")
KEY_HEADERS = ("x-freepik-api-key", "x-magnific-api-key")
STATUS_PREFIX = "/v1/ai/reference-to-video/"
KLING_DURATIONS = tuple(str(seconds) for seconds in range(3, 16))

Validator = Callable[[Fields, tuple[str, ...]], None]


@dataclass(frozen=True)
class Model:
    name: str  # recorded as the task's model
    family: str  # the status path segment under /v1/ai/reference-to-video/
    validate: Validator
    webhook_every_change: bool


def _veo(f: Fields, schemes: tuple[str, ...]) -> None:
    f.url_array("image_urls", schemes=schemes, required=True, min_items=1, max_items=3)
    f.string("prompt", required=True, non_empty=True, max_length=20000)
    f.string("negative_prompt", max_length=20000)
    f.string("resolution", choices=("720p", "1080p", "4k"))
    f.string("aspect_ratio", choices=("16:9", "9:16"))
    f.boolean("generate_audio")
    f.integer("seed", minimum=0)


def _wan(f: Fields, schemes: tuple[str, ...]) -> None:
    f.string("prompt", required=True, non_empty=True, max_length=5000)
    f.string("negative_prompt", max_length=500)
    references = 0
    for name in ("image_urls", "video_urls"):
        items = f.array(name) or []
        references += len(items)
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                f.problem(f"{name}[{index}]", "must be an object with 'url'")
                continue
            ref = Fields(item, f"{f.prefix}{name}[{index}].", f.problems)
            ref.url("url", schemes=schemes, required=True)
            ref.url("reference_voice", schemes=schemes)
    if references == 0:
        f.problem("image_urls", "at least one of 'image_urls' or 'video_urls' is required")
    elif references > 5:
        f.problem("image_urls", f"'image_urls' and 'video_urls' together allow at most 5 items, got {references}")
    f.url("start_image_url", schemes=schemes)
    f.string("aspect_ratio", choices=("16:9", "9:16", "1:1", "4:3", "3:4"))
    f.string("resolution", choices=("720P", "1080P"))
    f.integer("duration", minimum=2, maximum=10)
    f.integer("seed", minimum=0, maximum=2147483647)
    settings = f.nested("additional_settings")
    if settings is not None:
        settings.boolean("prompt_extend")


def _kling(f: Fields, schemes: tuple[str, ...], *, cfg_max: float) -> None:
    f.string("prompt", max_length=2500)
    f.url("video_url", schemes=schemes, required=True)
    f.url("image_url", schemes=schemes)
    f.string("duration", choices=KLING_DURATIONS)  # a string: "5", not 5
    f.string("aspect_ratio", choices=("auto", "16:9", "9:16", "1:1"))
    f.number("cfg_scale", minimum=0, maximum=cfg_max)
    f.string("negative_prompt", max_length=2500)


def _kling_model(tier: str, cfg_max: float) -> Model:
    return Model(f"kling-v3-omni-{tier}", "kling-v3-omni", partial(_kling, cfg_max=cfg_max), True)


CREATE_ROUTES: dict[str, Model] = {
    "/v1/ai/reference-to-video/veo-3-1": Model("veo-3-1", "veo-3-1", _veo, False),
    "/v1/ai/reference-to-video/wan-2-7": Model("wan-2-7", "wan-2-7", _wan, True),
    "/v1/ai/video/kling-v3-omni-pro/video-reference": _kling_model("pro", 2.0),
    "/v1/ai/reference-to-video/kling-v3-omni-pro": _kling_model("pro", 1.0),
    "/v1/ai/reference-to-video/kling-v3-omni-std": _kling_model("std", 1.0),
}
# By task model name; both Kling paths of a tier share a name (only their cfg_scale range differs).
MODELS: dict[str, Model] = {model.name: model for model in CREATE_ROUTES.values()}
# Status path segment -> the task models it reports on.
FAMILIES: dict[str, frozenset[str]] = {
    family: frozenset(m.name for m in MODELS.values() if m.family == family)
    for family in {m.family for m in MODELS.values()}
}


def message(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json(status, {"message": text}, headers=headers)


def invalid(problems: list[Invalid]) -> Response:
    payload = {
        "problem": {
            "message": "Your request parameters didn't validate.",
            "invalid_params": [{"name": p.name, "reason": p.reason} for p in problems],
        }
    }
    return Response.json(400, payload, content_type="application/problem+json")


FAULT_MESSAGES = {
    402: "Payment required: not enough credits",
    429: "Too many requests",
    500: "Internal Server Error",
    503: "Service Unavailable. Please try again later.",
}


def webhook_key(secret: str, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body``."""
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class FreepikApi:
    name = NAME

    def __init__(self, host: Host) -> None:
        self.host = host

    def handle(self, request: Request) -> Response:
        refusal = self._authenticate(request)
        if refusal is not None:
            return refusal
        if request.path in CREATE_ROUTES and request.method == "POST":
            return self._create(request, CREATE_ROUTES[request.path])
        if request.path.startswith(STATUS_PREFIX):
            family, _, task_id = request.path.removeprefix(STATUS_PREFIX).partition("/")
            if family in FAMILIES and request.method == "GET":
                if task_id:
                    return self._status(family, task_id)
                return self._list(family, request)
        if request.path in CREATE_ROUTES:
            return message(405, "Method not allowed")
        return message(404, "Not found")

    def _authenticate(self, request: Request) -> Response | None:
        presented = [request.headers[h] for h in KEY_HEADERS if h in request.headers]
        if not presented:
            return message(401, "Missing API key")
        if not any(hmac.compare_digest(key.encode(), self.host.config.freepik_api_key.encode())
                   for key in presented):
            return message(401, "Invalid API key")
        return None

    def _create(self, request: Request, model: Model) -> Response:
        fault = self.host.api_fault("submit", NAME)
        if fault is not None:
            return self._fault(fault)
        try:
            body = request.json_object()
        except BadJson as exc:
            return invalid([Invalid("body", str(exc))])
        fields = Fields(body)
        schemes = ("http", "https") if self.host.config.allow_http_inputs else ("https",)
        model.validate(fields, schemes)
        webhook_url = fields.url("webhook_url", schemes=("http", "https"))
        if fields.problems:
            return invalid(fields.problems)
        prompt = body.get("prompt")
        task = new_task(
            task_id=str(uuid.uuid4()),
            provider=NAME,
            model=model.name,
            path=request.path,
            body=body,
            statuses=STATUSES,
            prompt=prompt if isinstance(prompt, str) else None,
            now=self.host.now(),
            webhook_url=webhook_url,
        )
        self.host.tasks.add(task)
        return Response.json(200, {"data": self._detail(task)})

    def _fault(self, status: int) -> Response:
        return self.refusal(status, self.host.config.faults.retry_after(status))

    def refusal(self, status: int, headers: dict[str, str]) -> Response:
        return message(status, FAULT_MESSAGES.get(status, "Error"), headers)

    def _status(self, family: str, task_id: str) -> Response:
        fault = self.host.api_fault("status")
        if fault is not None:
            return self._fault(fault)
        task = self.host.tasks.observe(task_id)
        if task is None or task.provider != NAME or task.model not in FAMILIES[family]:
            return message(404, "Not found")
        return Response.json(200, {"data": self._detail(task)})

    def _list(self, family: str, request: Request) -> Response:
        try:
            page = int(request.query.get("page", "1"))
            page_size = int(request.query.get("page_size", "20"))
        except ValueError:
            return message(400, "Parameter 'page' is not valid")
        if page < 1:
            return message(400, "Parameter 'page' must be greater than 0")
        if not 1 <= page_size <= 100:
            return message(400, "Parameter 'page_size' must be between 1 and 100")
        tasks = self.host.tasks.of(NAME, FAMILIES[family])
        chunk = tasks[(page - 1) * page_size : page * page_size]
        return Response.json(200, {"data": [{"task_id": t.task_id, "status": t.status} for t in chunk]})

    def _detail(self, task: Task) -> dict[str, Any]:
        generated: list[Any] = []
        if task.phase is Phase.COMPLETED:
            url = self.host.result_url(task)
            generated = [{"url": url} if self.host.config.freepik_generated_objects else url]
        return {"task_id": task.task_id, "status": task.status, "generated": generated}

    def notifications(self, task: Task) -> list[Outgoing]:
        if not task.webhook_url:
            return []
        if not MODELS[task.model].webhook_every_change and task.phase not in TERMINAL:
            return []
        body = encode_json(self._detail(task))
        webhook_id = "msg_" + uuid.uuid4().hex
        timestamp = int(self.host.now())
        config = self.host.config
        key = webhook_key(config.freepik_webhook_secret, config.freepik_webhook_key_encoding)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "reelhook-sandbox (freepik webhooks)",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(key, webhook_id, timestamp, body),
        }
        return [Outgoing(task.webhook_url, body, headers, task.status, webhook_id)]
