"""AIHubMax: Veo 3.1 reference-to-video, standard and fast. Polled; callbacks optional.

Quirks kept here:
- ``reference_image_urls`` 1-3 and a fixed duration of 8 s.
- Enhance prompt, person generation and reference image type exist on the standard model
  only; auto-fix prompt and the content safety level on both.
- A task may read ``completed`` before ``results`` is filled: that is still running.
- ``results`` items are strings or ``{"url"}``. Links live 24 hours.
- The optional ``callback_url`` is unsigned, so every callback is confirmed with a GET.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reelhook.config import ProviderSettings
from reelhook.providers._common import envelope_error, error_text, read_status, submit_task_id
from reelhook.providers.base import (
    HttpCall,
    Phase,
    ProviderStatus,
    WebhookContext,
    result_urls,
)
from reelhook.spec import InputRule, Mode, ModelSpec, NormalizedRequest, OptionSpec

NAME = "aihubmax"
_STATUS = {"pending": Phase.SUBMITTED, "processing": Phase.RUNNING, "completed": Phase.COMPLETED,
           "failed": Phase.FAILED, "cancelled": Phase.FAILED, "canceled": Phase.FAILED}

BOTH_OPTIONS = {
    "auto_fix_prompt": OptionSpec("boolean", "Let the provider repair a prompt it would refuse"),
    "safety_level": OptionSpec("integer", "Content safety: 1 is the strictest, 6 the most permissive",
                               minimum=1, maximum=6),
}
STANDARD_OPTIONS = BOTH_OPTIONS | {
    "enhance_prompt": OptionSpec("boolean", "Let the provider enrich the prompt"),
    "person_generation": OptionSpec("string", "Whether people may be generated",
                                    choices=("dont_allow", "allow_adult")),
    "reference_image_type": OptionSpec("string", "Use the references as assets or as a style",
                                       choices=("ASSET", "STYLE")),
}


def _spec(provider_model: str, title: str, options: Mapping[str, OptionSpec]) -> ModelSpec:
    return ModelSpec(
        id=f"{NAME}/{provider_model}",
        provider=NAME,
        provider_model=provider_model,
        title=title,
        modes=(Mode("reference", {"reference_images": InputRule(1, 3)},
                    description="1-3 reference images for character or style consistency"),),
        prompt_max=20000,
        durations=(8,),
        default_duration=8,
        aspect_ratios=("16:9", "9:16"),
        resolutions=("720p", "1080p", "4k"),
        audio=True,
        options=options,
        status_via="poll",
        notes=("Polled through GET /v1/tasks/{id}; with AIHUBMAX_CALLBACKS=true the unsigned callback is "
               "also used, after confirming it with a GET.",
               "Result links live 24 hours.",
               "The prompt limit is not documented; reelhook caps it at 20000 characters."),
    )


MODELS = (
    _spec("veo-3.1-reference-to-video", "Veo 3.1 reference-to-video (AIHubMax)", STANDARD_OPTIONS),
    _spec("veo-3.1-fast-reference-to-video", "Veo 3.1 Fast reference-to-video (AIHubMax)", BOTH_OPTIONS),
)


class AIHubMax:
    name = NAME
    defaults = ProviderSettings(base_url="https://api.aihubmax.com", extras={"callbacks": "false"})
    models = MODELS
    link_lifetime_seconds = 24 * 3600
    webhook_needs_confirmation = True

    def sends_webhooks(self, extras: Mapping[str, str]) -> bool:
        return extras.get("callbacks", "false").lower() == "true"

    def submit_call(self, spec: ModelSpec, req: NormalizedRequest, webhook_url: str | None,
                    extras: Mapping[str, str]) -> HttpCall:
        body: dict[str, Any] = {
            "model": spec.provider_model,
            "prompt": req["prompt"],
            "reference_image_urls": [ref["url"] for ref in req.get("reference_images", [])],
        }
        for ours, theirs in (("aspect_ratio", "aspect_ratio"), ("duration", "duration"),
                             ("resolution", "resolution"), ("audio", "generate_audio")):
            if ours in req:
                body[theirs] = req[ours]  # type: ignore[literal-required]
        body |= req.get("options", {})  # sent only when the client asked, as the document advises
        if webhook_url:
            body["callback_url"] = webhook_url
        return HttpCall("POST", "/v1/videos/generations", body)

    def parse_submit(self, body: Any) -> str:
        return submit_task_id(body)

    def status_call(self, spec: ModelSpec, task_id: str, extras: Mapping[str, str]) -> HttpCall:
        return HttpCall("GET", f"/v1/tasks/{task_id}")

    def parse_status(self, body: Any, *, from_webhook: bool) -> ProviderStatus:
        # "completed" may come before "results" is filled: read_status keeps that as running.
        return read_status(body, vocabulary=_STATUS, results=lambda data: result_urls(data.get("results")),
                           failure=lambda data, raw: error_text(data.get("error"), f"the provider reported {raw}"))

    def verify_webhook(self, ctx: WebhookContext) -> str | None:
        return None  # unsigned: the URL token authenticates it and a GET confirms its content

    def error_message(self, status_code: int, body: Any) -> str:
        return envelope_error(status_code, body)


PROVIDER = AIHubMax()
