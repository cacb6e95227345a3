"""Freepik (also served as Magnific): Veo 3.1, WAN 2.7 and Kling 3 Omni reference-to-video.

Quirks kept here:
- Submit answers ``{"data": {"task_id", "status", "generated"}}``; the status GET wraps the
  same object in ``data`` and the webhook body does not.
- ``generated`` items are strings, or objects with ``url``.
- Webhooks are signed Standard-Webhooks style with the account's secret, used as raw UTF-8
  bytes by default or base64-decoded (``FREEPIK_WEBHOOK_SECRET_ENCODING=base64``).
- Kling Pro's documented path ``/v1/ai/video/kling-v3-omni-pro/video-reference`` takes
  ``cfg_scale`` 0-2; the current spec's ``/v1/ai/reference-to-video/kling-v3-omni-pro`` takes 0-1
  (``FREEPIK_KLING_ENDPOINT=reference-to-video``). Std has only the current spec's
  ``/v1/ai/reference-to-video/kling-v3-omni-std`` (no document lists a Std video-reference
  path), so it always posts there and takes 0-1.
- WAN: a ``start_image_url`` sets the output's ratio "instead of the aspect_ratio parameter",
  so with a first frame ``aspect_ratio`` is not sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from reelhook.config import ProviderSettings, settings
from reelhook.providers._common import read_key_probe, read_status
from reelhook.providers.base import (
    HttpCall,
    KeyProbe,
    MalformedPayload,
    Phase,
    ProviderStatus,
    WebhookContext,
    WebhookRejected,
    result_urls,
)
from reelhook.spec import (
    Combined,
    Default,
    InputRule,
    Mode,
    ModelSpec,
    NormalizedRequest,
    OptionSpec,
    OwnLimit,
)
from reelhook.webhook_auth import SignatureError, secret_bytes, verify_standard

logger = logging.getLogger(__name__)
_warned_unsigned = False

NAME = "freepik"
WEBHOOK_SECRET_FIELD = "freepik_webhook_secret"  # noqa: S105 - a field name, not a secret
# A well-formed task id no task has: Freepik's ids are UUIDs, and the nil UUID is never issued.
PROBE_UUID = "00000000-0000-0000-0000-000000000000"
_STATUS = {
    "created": Phase.SUBMITTED,
    "in_progress": Phase.RUNNING,
    "completed": Phase.COMPLETED,
    "failed": Phase.FAILED,
}
MB = 1024 * 1024
WAN_IMAGE_TYPES = ("image/jpeg", "image/png", "image/bmp", "image/webp")
VEO = "freepik/veo-3-1-reference-to-video"
WAN = "freepik/wan-2-7-reference-to-video"
KLING_PRO = "freepik/kling-v3-omni-pro-video-reference"
KLING_STD = "freepik/kling-v3-omni-std-video-reference"
KLING_CURRENT_ENDPOINT = "reference-to-video"
# The document says "Required range: x >= 0" and nothing more; the maximum is reelhook's.
SEED_MAX_REASON = ("the document gives no maximum (\"Required range: x >= 0\"); reelhook caps seeds at "
                   "4294967295 (2^32 - 1, the unsigned 32-bit range seeds are commonly drawn from) so that a "
                   "value the provider might refuse or truncate is refused here, before a paid request")

_VEO_SPEC = ModelSpec(
    id=VEO,
    provider=NAME,
    provider_model="veo-3-1",
    title="Veo 3.1 reference-to-video (Freepik)",
    modes=(
        Mode(
            "reference",
            {"reference_images": InputRule(1, 3, note="publicly reachable https images")},
            description="1-3 reference images for character or object consistency",
        ),
    ),
    prompt_max=20000,
    negative_prompt_max=20000,
    aspect_ratios=("16:9", "9:16"),
    resolutions=("720p", "1080p", "4k"),
    audio=True,
    seed_range=(0, 4294967295),
    status_via="webhook+poll",
    defaults={
        "negative_prompt": Default(None, "undocumented", "none is sent and the document names no default"),
        "aspect_ratio": Default("16:9", "document"),
        "resolution": Default("720p", "document"),
        "audio": Default(True, "document", "generate_audio defaults to true: omit audio and the video has sound"),
        "seed": Default(None, "undocumented", "none is sent; the document names no default"),
    },
    own_limits=(OwnLimit("seed", "maximum", 4294967295, SEED_MAX_REASON),),
    notes=("Freepik notifies at least on completion; reelhook also polls the task.",),
    serves={"veo-3.1/reference-to-video": "reference"},
)

_WAN_SPEC = ModelSpec(
    id=WAN,
    provider=NAME,
    provider_model="wan-2-7",
    title="WAN 2.7 reference-to-video (Freepik)",
    modes=(
        Mode(
            "reference",
            {
                "reference_images": InputRule(0, 5, voice=True),
                "reference_videos": InputRule(0, 5, voice=True),
                "first_frame": InputRule(0, 1, note="JPEG, PNG, BMP or WEBP, 240-8000 px, at most 20 MB",
                                         max_bytes=20 * MB, content_types=WAN_IMAGE_TYPES),
            },
            description='Characters from images and videos, named "Image 1", "Video 1" in the prompt',
        ),
    ),
    combined=(Combined(("reference_images", "reference_videos"), 1, 5),),
    prompt_max=5000,
    negative_prompt_max=500,
    durations=tuple(range(2, 11)),
    default_duration=5,
    aspect_ratios=("16:9", "9:16", "1:1", "4:3", "3:4"),
    resolutions=("720p", "1080p"),
    seed_range=(0, 2147483647),
    options={
        "prompt_extend": OptionSpec("boolean", "Let the provider rewrite the prompt for detail",
                                    provider_field="additional_settings.prompt_extend"),
    },
    status_via="webhook+poll",
    defaults={
        "negative_prompt": Default(None, "undocumented", "none is sent and the document names no default"),
        "duration": Default(5, "document"),
        "aspect_ratio": Default("16:9", "document", "a first_frame decides the ratio instead"),
        "resolution": Default("1080p", "document", 'sent as "1080P"'),
        "seed": Default(None, "document", '"Leave unset for random seed"'),
        "options.prompt_extend": Default(True, "spec", "the current spec's additional_settings.prompt_extend"),
    },
    decided_by={"aspect_ratio": "first_frame"},
    notes=("A first_frame sets the output aspect ratio instead of aspect_ratio, which is then not sent.",),
)


def _kling_spec(model_id: str, tier: str, cfg_max: float, path: str) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider=NAME,
        provider_model=f"kling-v3-omni-{tier}",
        title=f"Kling 3 Omni {tier.capitalize()} video reference (Freepik)",
        modes=(
            Mode(
                "video-reference",
                {
                    "reference_videos": InputRule(
                        1, 1, note="MP4 or MOV, 3-10 s, 720-2160 px, at most 200 MB; @Video1 in the prompt",
                        max_bytes=200 * MB, content_types=("video/mp4", "video/quicktime"),
                    ),
                    "first_frame": InputRule(0, 1, note="JPG or PNG, at least 300x300, at most 10 MB",
                                             max_bytes=10 * MB, content_types=("image/jpeg", "image/png")),
                },
                description="Motion and style from a reference video, optionally from a start frame",
            ),
        ),
        prompt_max=2500,
        prompt_required=False,  # neither the document nor the spec requires it; only video_url
        negative_prompt_max=2500,
        durations=tuple(range(3, 16)),
        default_duration=5,
        aspect_ratios=("auto", "16:9", "9:16", "1:1"),
        options={
            "cfg_scale": OptionSpec("number", "Prompt adherence (higher is stricter)", minimum=0, maximum=cfg_max),
        },
        status_via="webhook+poll",
        defaults={
            "negative_prompt": Default("blur, distort, and low quality", "document"),
            "duration": Default(5, "document"),
            "aspect_ratio": Default("16:9", "document"),
            "options.cfg_scale": Default(0.5, "document"),
        },
        notes=(f"Created with POST {path} (cfg_scale 0-{cfg_max:g}).",),
    )


def kling_create_path(tier: str, extras: Mapping[str, str]) -> str:
    """Pro: the seed document's path unless configured otherwise. Std: only the current spec has it."""
    if tier == "kling-v3-omni-pro" and extras.get("kling_endpoint") != KLING_CURRENT_ENDPOINT:
        return f"/v1/ai/video/{tier}/video-reference"
    return f"/v1/ai/reference-to-video/{tier}"


def _kling_cfg_max(path: str) -> float:
    # The seed document says "0 <= x <= 2"; the current spec "maximum: 1".
    return 2.0 if path.endswith("/video-reference") else 1.0


def _models() -> tuple[ModelSpec, ...]:
    extras = settings().provider(NAME).extras
    klings = []
    for model_id, tier in ((KLING_PRO, "pro"), (KLING_STD, "std")):
        path = kling_create_path(f"kling-v3-omni-{tier}", extras)
        klings.append(_kling_spec(model_id, tier, _kling_cfg_max(path), path))
    return (_VEO_SPEC, _WAN_SPEC, *klings)


def _reference(item: Mapping[str, str]) -> dict[str, str]:
    out = {"url": item["url"]}
    if item.get("voice_url"):
        out["reference_voice"] = item["voice_url"]
    return out


def _veo_body(req: NormalizedRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image_urls": [ref["url"] for ref in req.get("reference_images", [])],
        "prompt": req["prompt"],
    }
    _copy(req, body, negative_prompt="negative_prompt", resolution="resolution",
          aspect_ratio="aspect_ratio", audio="generate_audio", seed="seed")
    return body


def _wan_body(req: NormalizedRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": req["prompt"]}
    if req.get("reference_images"):
        body["image_urls"] = [_reference(r) for r in req["reference_images"]]
    if req.get("reference_videos"):
        body["video_urls"] = [_reference(r) for r in req["reference_videos"]]
    _copy(req, body, negative_prompt="negative_prompt", first_frame="start_image_url",
          duration="duration", seed="seed")
    if _WAN_SPEC.sends(req, "aspect_ratio"):  # not with a start frame: the image's ratio wins
        body["aspect_ratio"] = req["aspect_ratio"]
    if "resolution" in req:
        body["resolution"] = req["resolution"].upper()
    if "prompt_extend" in req.get("options", {}):
        body["additional_settings"] = {"prompt_extend": req["options"]["prompt_extend"]}
    return body


def _kling_body(req: NormalizedRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"video_url": req["reference_videos"][0]["url"]}
    _copy(req, body, prompt="prompt", first_frame="image_url", aspect_ratio="aspect_ratio",
          negative_prompt="negative_prompt")
    if "duration" in req:
        body["duration"] = str(req["duration"])
    if "cfg_scale" in req.get("options", {}):
        body["cfg_scale"] = req["options"]["cfg_scale"]
    return body


def _copy(req: NormalizedRequest, body: dict[str, Any], **names: str) -> None:
    for ours, theirs in names.items():
        if ours in req:
            body[theirs] = req[ours]  # type: ignore[literal-required]


class Freepik:
    name = NAME
    defaults = ProviderSettings(
        base_url="https://api.freepik.com",  # or https://api.magnific.com with x-magnific-api-key
        api_key_header="x-freepik-api-key",
        api_key_prefix="",
        extras={"kling_endpoint": "video-reference", "webhook_secret_encoding": "raw"},
        # Documented per key: 50/s over 5 s and 10/s averaged over 2 min. 9.5/s with a burst of 5
        # stays under both even when queued sends land a second or two after their slot
        # (at most 9.5 * 122 + 5 = 1164 in any 2 minutes, 9.5 * 7 + 5 = 72 in any 5 s).
        requests_per_second=9.5,
        burst=5,
    )
    link_lifetime_seconds = 4 * 3600  # undocumented for these models; never rely on more
    webhook_secret_fields = (WEBHOOK_SECRET_FIELD,)

    @property
    def models(self) -> tuple[ModelSpec, ...]:
        return _models()  # Kling's cfg_scale range follows the configured endpoint

    def sends_webhooks(self, extras: Mapping[str, str]) -> bool:
        return True

    def _paths(self, spec: ModelSpec, extras: Mapping[str, str]) -> tuple[str, str]:
        if spec.id in (KLING_PRO, KLING_STD):
            return kling_create_path(spec.provider_model, extras), "/v1/ai/reference-to-video/kling-v3-omni"
        path = f"/v1/ai/reference-to-video/{spec.provider_model}"
        return path, path

    def submit_call(self, spec: ModelSpec, req: NormalizedRequest, webhook_url: str | None,
                    extras: Mapping[str, str]) -> HttpCall:
        builder = {VEO: _veo_body, WAN: _wan_body}.get(spec.id, _kling_body)
        body = builder(req)
        if webhook_url:
            body["webhook_url"] = webhook_url
        return HttpCall("POST", self._paths(spec, extras)[0], body)

    def parse_submit(self, body: Any) -> str:
        return self.parse_status(body, from_webhook=False).task_id or _missing_task_id()

    def status_call(self, spec: ModelSpec, task_id: str, extras: Mapping[str, str]) -> HttpCall:
        return HttpCall("GET", f"{self._paths(spec, extras)[1]}/{task_id}")

    def parse_status(self, body: Any, *, from_webhook: bool) -> ProviderStatus:
        # The webhook body is the GET body without "data"; read_status accepts either from either.
        return read_status(
            body, vocabulary=_STATUS, results=lambda data: result_urls(data.get("generated")), task_id=_task_id,
            failure=lambda data, raw: str(data.get("error") or data.get("message") or "the provider reported FAILED"),
        )

    def verify_webhook(self, ctx: WebhookContext) -> str | None:
        configured = _configured_secrets(ctx)
        if not configured:
            return ctx.headers.get("webhook-id")
        encoding = ctx.extras.get("webhook_secret_encoding", "raw")
        try:
            keys = [secret_bytes(s, encoding) for s in configured]
            return verify_standard(keys, ctx.headers, ctx.raw_body, now=ctx.now)
        except SignatureError as exc:
            raise WebhookRejected(401, f"invalid webhook signature: {exc}") from exc
        except ValueError as exc:  # a secret that is not valid base64
            raise WebhookRejected(401, "webhook secret is not usable with the configured encoding") from exc

    def webhook_needs_confirmation(self, ctx: WebhookContext) -> bool:
        # Without a secret nothing was verified: anyone holding the callback URL could send it.
        unsigned = not _configured_secrets(ctx)
        global _warned_unsigned
        if unsigned and not _warned_unsigned:
            _warned_unsigned = True  # once per container: the deployment is misconfigured, not the request
            logger.warning("no Freepik webhook secret is configured: each Freepik webhook costs a status GET "
                           "to confirm it; set freepik_webhook_secret in the provider secret")
        return unsigned

    def webhook_secret_missing(self, ctx: WebhookContext) -> bool:
        return not _configured_secrets(ctx)

    def error_message(self, status_code: int, body: Any) -> str:
        if isinstance(body, dict):
            problem = body.get("problem") if isinstance(body.get("problem"), dict) else body
            message = str(problem.get("message") or f"HTTP {status_code}")
            params = problem.get("invalid_params")
            if isinstance(params, list) and params:
                details = "; ".join(
                    f"{p.get('name')}: {p.get('reason')}" for p in params if isinstance(p, dict)
                )
                return f"{message} ({details})"
            return message
        return f"HTTP {status_code}"

    def key_probe_call(self, extras: Mapping[str, str]) -> HttpCall:
        # Veo's status GET for the nil task id: "Invalid API key" (401) or "Not found" (404).
        return HttpCall("GET", f"/v1/ai/reference-to-video/veo-3-1/{PROBE_UUID}")

    def read_key_probe(self, status_code: int | None, body: Any) -> KeyProbe:
        return read_key_probe(status_code, body, self.error_message)


def _configured_secrets(ctx: WebhookContext) -> list[str]:
    """The webhook secrets in use: several, space-separated, while one is being rotated."""
    return ctx.secrets.get(WEBHOOK_SECRET_FIELD, "").split()


def _task_id(data: dict[str, Any]) -> str | None:
    task_id = data.get("task_id")
    if task_id is not None and not isinstance(task_id, str):
        raise MalformedPayload("task_id must be a string")
    return task_id


def _missing_task_id() -> str:
    raise MalformedPayload("the submit response has no task_id")


PROVIDER = Freepik()
