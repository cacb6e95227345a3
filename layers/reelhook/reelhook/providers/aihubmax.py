"""AIHubMax: Veo 3.1 reference-to-video, standard and fast. Polled; callbacks optional.

Quirks kept here:
- ``reference_image_urls`` 1-3 and a fixed duration of 8 s.
- Enhance prompt, person generation and reference image type exist on the standard model
  only; auto-fix prompt and the content safety level on both.
- A task may read ``completed`` before ``results`` is filled: that is still running.
- ``results`` items are strings or ``{"url"}``. Links live 24 hours.
- The optional ``callback_url`` is unsigned, so every callback is confirmed with a GET.
- The document describes auto-fix prompt, safety level, enhance prompt, person generation and
  reference image type but never names their fields (nor those of prompt, aspect ratio,
  duration, resolution and audio): reelhook's names are inferences, marked unconfirmed in the
  catalogue. ``AIHUBMAX_FIELD_NAMES="safety_level=safetyLevel,audio=audio"`` renames any of
  them without a code change (keys are reelhook's names). The create and status paths are
  inferred too: ``AIHUBMAX_CREATE_PATH``, ``AIHUBMAX_STATUS_PATH`` (with ``{task_id}``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from reelhook.config import ProviderSettings, settings
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
    result_urls,
)
from reelhook.spec import Default, InputRule, Mode, ModelSpec, NormalizedRequest, OptionSpec, OwnLimit

logger = logging.getLogger(__name__)
NAME = "aihubmax"
# reelhook's name -> the body field it is sent as, by inference: the document names only
# "model" and "reference_image_urls". Each can be renamed with AIHUBMAX_FIELD_NAMES.
INFERRED_FIELDS = {
    "prompt": "prompt", "aspect_ratio": "aspect_ratio", "duration": "duration", "resolution": "resolution",
    "audio": "generate_audio", "auto_fix_prompt": "auto_fix_prompt", "safety_level": "safety_level",
    "enhance_prompt": "enhance_prompt", "person_generation": "person_generation",
    "reference_image_type": "reference_image_type",
}
_STATUS = {"pending": Phase.SUBMITTED, "processing": Phase.RUNNING, "completed": Phase.COMPLETED,
           "failed": Phase.FAILED, "cancelled": Phase.FAILED, "canceled": Phase.FAILED}

UNNAMED = "the document describes this option but does not name its field"


def field_names(extras: Mapping[str, str]) -> dict[str, str]:
    """The inferred names, with the configured renames (``name=field`` pairs, comma-separated)."""
    names = dict(INFERRED_FIELDS)
    for pair in extras.get("field_names", "").split(","):
        ours, sep, theirs = (part.strip() for part in pair.partition("="))
        if not pair.strip():
            continue
        if not sep or ours not in names or not theirs:
            # Ignored, not fatal: the catalogue shows the names in use, so the mistake is visible.
            logger.warning("AIHUBMAX_FIELD_NAMES: ignoring %r (use name=field with one of %s)",
                           pair, ", ".join(sorted(names)))
            continue
        names[ours] = theirs
    return names


def _options(names: Mapping[str, str], standard: bool) -> dict[str, OptionSpec]:
    def option(name: str, *args: Any, **kwargs: Any) -> OptionSpec:
        return OptionSpec(*args, provider_field=names[name], field_confirmed=False, **kwargs)

    options = {
        "auto_fix_prompt": option("auto_fix_prompt", "boolean", "Let the provider repair a prompt it would refuse"),
        "safety_level": option("safety_level", "integer",
                               "Content safety: 1 is the strictest, 6 the most permissive", minimum=1, maximum=6),
    }
    if standard:
        options |= {
            "enhance_prompt": option("enhance_prompt", "boolean", "Let the provider enrich the prompt"),
            "person_generation": option("person_generation", "string", "Whether people may be generated",
                                        choices=("dont_allow", "allow_adult")),
            "reference_image_type": option("reference_image_type", "string",
                                           "Use the references as assets or as a style", choices=("ASSET", "STYLE")),
        }
    return options


def _spec(provider_model: str, title: str, options: Mapping[str, OptionSpec],
          names: Mapping[str, str], serves: str) -> ModelSpec:
    unconfirmed = {ours: theirs for ours, theirs in names.items() if ours not in options}
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
        defaults={
            "duration": Default(8, "document", "fixed at 8 seconds"),
            "aspect_ratio": Default("16:9", "document"),
            "resolution": Default("1080p", "document"),
            "audio": Default(False, "document", "disabled by default: omit audio and the video is silent"),
        } | {f"options.{name}": Default(None, "undocumented", '"Do not pass this parameter unless necessary": '
                                        "not sent, so the provider's own default applies")
             for name in options},
        own_limits=(
            OwnLimit("prompt", "max_length", 20000, "the document gives no limit; reelhook refuses longer prompts "
                     "before a paid request, at the length Veo 3.1 takes on Freepik"),
            OwnLimit("prompt", "required", True, "the document marks no field required; a reference-to-video "
                     "task is described by its prompt, so reelhook asks for one"),
        ),
        notes=("Polled through GET /v1/tasks/{id}; with AIHUBMAX_CALLBACKS=true the unsigned callback is "
               "also used, after confirming it with a GET.",
               "Result links live 24 hours.",
               "Field names are inferred except model and reference_image_urls; sent as "
               + ", ".join(f"{ours}={theirs}" for ours, theirs in unconfirmed.items())
               + " (unconfirmed; rename with AIHUBMAX_FIELD_NAMES)."),
        serves={serves: "reference"},
    )


STANDARD = "veo-3.1-reference-to-video"
FAST = "veo-3.1-fast-reference-to-video"
CREATE_PATH = "/v1/videos/generations"
STATUS_PATH = "/v1/tasks/{task_id}"


def _models() -> tuple[ModelSpec, ...]:
    names = field_names(settings().provider(NAME).extras)
    return (
        _spec(STANDARD, "Veo 3.1 reference-to-video (AIHubMax)", _options(names, True), names,
              "veo-3.1/reference-to-video"),
        _spec(FAST, "Veo 3.1 Fast reference-to-video (AIHubMax)", _options(names, False), names,
              "veo-3.1-fast/reference-to-video"),
    )


class AIHubMax:
    name = NAME
    # The paths are unconfirmed (by analogy with the same platform's other gateways): configuration.
    defaults = ProviderSettings(base_url="https://api.aihubmax.com", extras={
        "callbacks": "false", "field_names": "", "create_path": CREATE_PATH, "status_path": STATUS_PATH})
    webhook_secret_fields = ()  # nothing is signed
    link_lifetime_seconds = 24 * 3600

    @property
    def models(self) -> tuple[ModelSpec, ...]:
        return _models()  # option field names follow the configuration

    def sends_webhooks(self, extras: Mapping[str, str]) -> bool:
        return extras.get("callbacks", "false").lower() == "true"

    def submit_call(self, spec: ModelSpec, req: NormalizedRequest, webhook_url: str | None,
                    extras: Mapping[str, str]) -> HttpCall:
        names = field_names(extras)
        body: dict[str, Any] = {
            "model": spec.provider_model,
            names["prompt"]: req["prompt"],
            "reference_image_urls": [ref["url"] for ref in req.get("reference_images", [])],
        }
        for ours in ("aspect_ratio", "duration", "resolution", "audio"):
            if ours in req:
                body[names[ours]] = req[ours]  # type: ignore[literal-required]
        for name, value in req.get("options", {}).items():
            body[names[name]] = value  # sent only when the client asked, as the document advises
        if webhook_url:
            body["callback_url"] = webhook_url
        return HttpCall("POST", extras.get("create_path") or CREATE_PATH, body)

    def parse_submit(self, body: Any) -> str:
        return submit_task_id(body)

    def status_call(self, spec: ModelSpec, task_id: str, extras: Mapping[str, str]) -> HttpCall:
        return HttpCall("GET", (extras.get("status_path") or STATUS_PATH).replace("{task_id}", task_id))

    def parse_status(self, body: Any, *, from_webhook: bool) -> ProviderStatus:
        # "completed" may come before "results" is filled: read_status keeps that as running.
        return read_status(body, vocabulary=_STATUS, results=lambda data: result_urls(data.get("results")),
                           failure=lambda data, raw: error_text(data.get("error"), f"the provider reported {raw}"))

    def verify_webhook(self, ctx: WebhookContext) -> str | None:
        return None  # unsigned: the URL token authenticates it and a GET confirms its content

    def webhook_needs_confirmation(self, ctx: WebhookContext) -> bool:
        return True

    def webhook_secret_missing(self, ctx: WebhookContext) -> bool:
        return False  # it signs nothing: every delivery is confirmed by a GET

    def error_message(self, status_code: int, body: Any) -> str:
        return envelope_error(status_code, body)

    def key_probe_call(self, extras: Mapping[str, str]) -> HttpCall:
        # The status GET of a task that cannot exist: 401 for a bad key, 404 for a good one.
        return HttpCall("GET", (extras.get("status_path") or STATUS_PATH).replace("{task_id}", PROBE_TASK_ID))

    def read_key_probe(self, status_code: int | None, body: Any) -> KeyProbe:
        return read_key_probe(status_code, body, self.error_message)


PROVIDER = AIHubMax()
