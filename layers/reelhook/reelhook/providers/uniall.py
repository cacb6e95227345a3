"""UniAll: six Veo 3.1 models in five modes, polled (no webhook is documented).

Quirks kept here:
- The mode follows from the inputs: text (prompt only), image (``image``), first and
  last frame (``image`` + ``last_image``), multi-image reference (``images``, 2-3,
  standard models only) and extension (``video``).
- ``aspect_ratio`` in every mode but extension: the image-to-video example sends it (the
  field table's row is garbled), the extension example does not.
- Create is ``/v1/video/generations``, status is ``/v1/videos/{id}`` (plural).
- The only documented create answer is ``{}``: an answer without ``id`` or ``task_id`` may
  still have made a task, so it is an unknown outcome, never re-sent (``MissingTaskId``).
- A finished task's links: ``video_url``, ``result.video_url`` and every ``result.outputs[]``,
  all kept (several outputs are several paid videos).
- The document gives no defaults and no limits on prompt, negative prompt or seed: reelhook's
  own limits are published with their reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reelhook.config import ProviderSettings
from reelhook.providers._common import (
    PROBE_TASK_ID,
    envelope_error,
    error_text,
    read_key_probe,
    read_status,
    submit_task_id,
)
from reelhook.providers.base import (
    HttpCall,
    KeyProbe,
    Phase,
    ProviderStatus,
    WebhookContext,
    WebhookRejected,
    result_urls,
)
from reelhook.spec import Default, InputRule, Mode, ModelSpec, NormalizedRequest, OwnLimit

NAME = "uniall"
_STATUS = {"queued": Phase.SUBMITTED, "in_progress": Phase.RUNNING, "completed": Phase.COMPLETED,
           "failed": Phase.FAILED}

TEXT = Mode("text-to-video", {}, description="Prompt only")
IMAGE = Mode("image-to-video", {"first_frame": InputRule(1, 1)},
             description="Animate one image (the document's example also sends aspect_ratio)")
FIRST_LAST = Mode("first-and-last-frame", {"first_frame": InputRule(1, 1), "last_frame": InputRule(1, 1)},
                  description="From a first frame to a last frame")
REFERENCE = Mode("multi-image-reference", {"reference_images": InputRule(2, 3)},
                 description="2-3 reference images for consistency (standard models only)")
EXTENSION = Mode("video-extension", {"source_video": InputRule(1, 1)}, aspect_ratio=False,
                 description="Extend a video; the output follows it")


def _spec(tier: str, resolution: str) -> ModelSpec:
    fast = tier == "fast"
    provider_model = f"veo3.1-{'fast-' if fast else ''}video-{resolution}"
    modes = (TEXT, IMAGE, FIRST_LAST, EXTENSION) if fast else (TEXT, IMAGE, FIRST_LAST, REFERENCE, EXTENSION)
    return ModelSpec(
        id=f"{NAME}/{provider_model}",
        provider=NAME,
        provider_model=provider_model,
        title=f"Veo 3.1 {'Fast ' if fast else ''}{resolution} (UniAll)",
        modes=modes,
        prompt_max=20000,
        negative_prompt_max=20000,
        durations=(4, 6, 8),
        aspect_ratios=("16:9", "9:16"),
        resolutions=(resolution,),
        audio=True,
        seed_range=(0, 4294967295),
        status_via="poll",
        defaults={
            "negative_prompt": Default(None, "undocumented", UNDOCUMENTED),
            "duration": Default(None, "undocumented", UNDOCUMENTED),
            "aspect_ratio": Default(None, "undocumented", UNDOCUMENTED + " (image-to-video and extension "
                                    "are said to follow the input)"),
            "resolution": Default(resolution, "reelhook",
                                  f"the model fixes it: reelhook always sends size={resolution}"),
            "audio": Default(None, "undocumented", UNDOCUMENTED),
            "seed": Default(None, "undocumented", UNDOCUMENTED),
        },
        own_limits=OWN_LIMITS,
        notes=("No webhook is documented: reelhook polls GET /v1/videos/{id} with backoff.",),
        # The fast models have no reference mode, so only the standard ones are Veo 3.1 routes.
        serves={} if fast else {"veo-3.1/reference-to-video": REFERENCE.name},
    )


UNDOCUMENTED = "none is sent; the document names no default"
OWN_LIMITS = (
    OwnLimit("prompt", "max_length", 20000, "the document gives no limit; reelhook refuses longer prompts "
             "before a paid request, at the length Veo 3.1 takes on Freepik"),
    OwnLimit("negative_prompt", "max_length", 20000, "the document gives no limit; the same cap as the prompt"),
    OwnLimit("aspect_ratio", "not in video-extension mode", True, "inferred: the extension example sends none "
             "and the field table's garbled row (\"image-to-video, video extension use, pass\") reads as "
             "\"follows the input\"; refused rather than sent and perhaps ignored"),
    OwnLimit("seed", "minimum", 0, "the document gives no range; seeds are non-negative on every other Veo 3.1 API"),
    OwnLimit("seed", "maximum", 4294967295, "the document gives no range; reelhook caps seeds at 2^32 - 1 so "
             "that a value the provider might refuse or truncate is refused here"),
)


MODELS = tuple(_spec(tier, res) for tier in ("standard", "fast") for res in ("720p", "1080p", "4k"))


def _body(spec: ModelSpec, req: NormalizedRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": spec.provider_model, "prompt": req["prompt"]}
    if "first_frame" in req:
        body["image"] = req["first_frame"]
    if "last_frame" in req:
        body["last_image"] = req["last_frame"]
    if req.get("reference_images"):
        body["images"] = [ref["url"] for ref in req["reference_images"]]
    if "source_video" in req:
        body["video"] = req["source_video"]
    body["size"] = spec.resolutions[0] if spec.resolutions else req.get("resolution")
    if "aspect_ratio" in req:
        body["aspect_ratio"] = req["aspect_ratio"]
    if "duration" in req:
        body["duration"] = req["duration"]
    extra = {theirs: req[ours] for ours, theirs in  # type: ignore[literal-required]
             (("audio", "generate_audio"), ("negative_prompt", "negative_prompt"), ("seed", "seed")) if ours in req}
    if extra:
        body["extra_body"] = extra
    return body


def _video_urls(data: dict[str, Any]) -> tuple[str, ...]:
    """Every link the answer names, once each: a paid output is never dropped."""
    found: list[str] = []
    if data.get("video_url"):
        found += result_urls(data["video_url"])
    result = data.get("result")
    if isinstance(result, dict):
        if result.get("video_url"):
            found += result_urls(result["video_url"])
        if result.get("outputs"):
            found += result_urls(result["outputs"])
    return tuple(dict.fromkeys(found))


class UniAll:
    name = NAME
    defaults = ProviderSettings(base_url="https://api.uniall.ai")  # not published: configure UNIALL_BASE_URL
    models = MODELS
    webhook_secret_fields = ()  # nothing is signed
    link_lifetime_seconds = 3600  # undocumented: copy at once

    def sends_webhooks(self, extras: Mapping[str, str]) -> bool:
        return False

    def submit_call(self, spec: ModelSpec, req: NormalizedRequest, webhook_url: str | None,
                    extras: Mapping[str, str]) -> HttpCall:
        return HttpCall("POST", "/v1/video/generations", _body(spec, req))

    def parse_submit(self, body: Any) -> str:
        return submit_task_id(body)

    def status_call(self, spec: ModelSpec, task_id: str, extras: Mapping[str, str]) -> HttpCall:
        return HttpCall("GET", f"/v1/videos/{task_id}")

    def parse_status(self, body: Any, *, from_webhook: bool) -> ProviderStatus:
        return read_status(body, vocabulary=_STATUS, results=_video_urls,
                           failure=lambda data, raw: error_text(data.get("error"), "the provider reported failed"))

    def verify_webhook(self, ctx: WebhookContext) -> str | None:
        raise WebhookRejected(404, "UniAll sends no webhooks")

    def webhook_needs_confirmation(self, ctx: WebhookContext) -> bool:
        return True  # never reached: every delivery is refused above

    def webhook_secret_missing(self, ctx: WebhookContext) -> bool:
        return False  # it sends no webhooks

    def error_message(self, status_code: int, body: Any) -> str:
        return envelope_error(status_code, body)

    def key_probe_call(self, extras: Mapping[str, str]) -> HttpCall:
        # The status GET of a task that cannot exist: 401 for a bad key, 404 for a good one.
        return HttpCall("GET", f"/v1/videos/{PROBE_TASK_ID}")

    def read_key_probe(self, status_code: int | None, body: Any) -> KeyProbe:
        return read_key_probe(status_code, body, self.error_message)


PROVIDER = UniAll()
