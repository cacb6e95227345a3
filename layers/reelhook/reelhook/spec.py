"""One definition per model, from which both the catalogue and the validation derive.

A ``ModelSpec`` states what a model accepts in reelhook's normalized vocabulary.
``validate`` checks a normalized request against it and ``catalog_entry`` publishes
the very same fields, so the two cannot disagree. Rules that do not fit the
declarative fields (for instance a limit on two inputs combined) are ``Combined``
constraints or ``Mode`` definitions, and are published as well.

This module is pure Python (no pydantic, no boto3) so every function can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict

from reelhook.records import field, record

INPUT_FIELDS: tuple[str, ...] = (
    "reference_images",
    "reference_videos",
    "first_frame",
    "last_frame",
    "source_video",
)
LIST_INPUTS = frozenset({"reference_images", "reference_videos"})
StatusVia = Literal["webhook", "poll", "webhook+poll"]
# Who says what an omitted field means: the provider's document, Freepik's current OpenAPI
# spec, reelhook itself (it always sends a value), or nobody (the provider decides, unseen).
DefaultSource = Literal["document", "spec", "reelhook", "undocumented"]


class Reference(TypedDict, total=False):
    url: str
    voice_url: str


class NormalizedRequest(TypedDict, total=False):
    """The job as stored and as handed to a provider module (plain JSON types only)."""

    model: str
    prompt: str
    negative_prompt: str
    reference_images: list[Reference]
    reference_videos: list[Reference]
    first_frame: str
    last_frame: str
    source_video: str
    duration: int
    aspect_ratio: str
    resolution: str
    audio: bool
    seed: int
    options: dict[str, Any]
    client_reference: str
    notify_url: str
    routing: dict[str, Any]


def did_you_mean(given: str, known: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest known name, or nothing when none is close."""
    import difflib

    by_folded = {name.lower(): name for name in known}
    close = difflib.get_close_matches(given.lower(), list(by_folded), n=1, cutoff=0.6)
    return f"; did you mean {by_folded[close[0]]!r}?" if close else ""


@record
class FieldError:
    field: str
    message: str
    allowed: Any = None
    # For a logical model: the concrete model (route) that objects.
    route: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.allowed is not None:
            out["allowed"] = self.allowed
        if self.route is not None:
            out["route"] = self.route
        return out


@record
class InputRule:
    """How many of one input a mode takes, whether references may carry a voice, and what an
    ``s3://`` input must be (checked from the object's metadata before the provider call)."""

    min: int = 0
    max: int = 1
    voice: bool = False
    note: str = ""
    max_bytes: int | None = None
    content_types: tuple[str, ...] | None = None

    def catalog(self) -> dict[str, Any]:
        out: dict[str, Any] = {"min": self.min, "max": self.max, "voice_url": self.voice}
        if self.note:
            out["note"] = self.note
        if self.max_bytes is not None:
            out["max_bytes"] = self.max_bytes
        if self.content_types is not None:
            out["content_types"] = list(self.content_types)
        return out


@record
class Mode:
    """A set of inputs a model accepts together. The job's inputs pick the mode."""

    name: str
    inputs: Mapping[str, InputRule]
    aspect_ratio: bool = True  # False: the output follows the input, so no aspect_ratio
    description: str = ""

    def required(self) -> set[str]:
        return {name for name, rule in self.inputs.items() if rule.min > 0}


@record
class Combined:
    """A limit on several list inputs counted together (e.g. WAN: 1-5 images+videos)."""

    fields: tuple[str, ...]
    min: int
    max: int


@record
class Default:
    """What the provider does with a field the job omits, and who says so.

    ``value`` is None when no document gives one; ``note`` then says what is known.
    """

    value: Any = None
    source: DefaultSource = "undocumented"
    note: str = ""

    def catalog(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "source": self.source}
        if self.note:
            out["note"] = self.note
        return out


@record
class OwnLimit:
    """A limit reelhook adds where the provider's document gives none, published with its reason."""

    field: str  # "seed", "prompt", "negative_prompt"
    limit: str  # "minimum", "maximum", "max_length", "required"
    value: Any
    reason: str

    def catalog(self) -> dict[str, Any]:
        return {"field": self.field, "limit": self.limit, "value": self.value, "reason": self.reason}


@record
class OptionSpec:
    """A provider-specific extra accepted under ``options``.

    ``provider_field`` is the body field it is sent as (None: the option's own name);
    ``field_confirmed`` is False where the document describes the option but never names it.
    """

    type: Literal["boolean", "integer", "number", "string"]
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    provider_field: str | None = None
    field_confirmed: bool = True

    def check(self, name: str, value: Any) -> FieldError | None:
        where = f"options.{name}"
        if self.type == "boolean":
            if not isinstance(value, bool):
                return FieldError(where, "must be true or false", [True, False])
            return None
        if self.type in {"integer", "number"}:
            ok_type = isinstance(value, int) if self.type == "integer" else isinstance(value, int | float)
            if isinstance(value, bool) or not ok_type:
                return FieldError(where, f"must be an {self.type}", self._range())
            if (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum
            ):
                return FieldError(where, f"must be between {self.minimum} and {self.maximum}", self._range())
            return None
        if not isinstance(value, str) or (self.choices is not None and value not in self.choices):
            return FieldError(where, "must be one of the allowed values", list(self.choices or ()))
        return None

    def _range(self) -> dict[str, float | None]:
        return {"minimum": self.minimum, "maximum": self.maximum}

    def catalog(self, name: str, default: Default | None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "description": self.description}
        for key in ("minimum", "maximum"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.choices is not None:
            out["choices"] = list(self.choices)
        out["default"] = default.value if default is not None else None
        out["provider_field"] = self.provider_field or name
        out["provider_field_confirmed"] = self.field_confirmed
        return out


@record
class ModelSpec:
    id: str
    provider: str
    provider_model: str
    title: str
    modes: tuple[Mode, ...]
    prompt_max: int
    status_via: StatusVia
    negative_prompt_max: int | None = None
    durations: tuple[int, ...] | None = None
    default_duration: int | None = None
    aspect_ratios: tuple[str, ...] | None = None
    resolutions: tuple[str, ...] | None = None
    audio: bool = False
    seed_range: tuple[int, int] | None = None
    options: Mapping[str, OptionSpec] = field(default_factory=dict)
    combined: tuple[Combined, ...] = ()
    notes: tuple[str, ...] = ()
    prompt_required: bool = True
    # What each optional field means when omitted: one entry per field the model takes
    # (see ``optional_fields``), options as "options.<name>".
    defaults: Mapping[str, Default] = field(default_factory=dict)
    # Limits no document gives, which reelhook enforces anyway (each with its reason).
    own_limits: tuple[OwnLimit, ...] = ()
    # A field the provider ignores when an input is given (WAN: a first_frame sets the ratio):
    # it is then not sent, and the job's effective values say so.
    decided_by: Mapping[str, str] = field(default_factory=dict)
    # Model-specific rules the declarative fields cannot say; each is also described in notes.
    extra_check: Callable[[NormalizedRequest], list[FieldError]] | None = None
    # Logical models (``reelhook.routing``) this model is a route of, each with the mode a job
    # must take here to count as that logical model (None: any mode).
    serves: Mapping[str, str | None] = field(default_factory=dict)

    def accepted_inputs(self) -> set[str]:
        return {name for mode in self.modes for name in mode.inputs}

    def input_rule(self, name: str) -> InputRule | None:
        for mode in self.modes:
            if name in mode.inputs:
                return mode.inputs[name]
        return None

    def optional_fields(self) -> tuple[str, ...]:
        """Every field this model takes besides prompt and inputs, options as "options.<name>"."""
        present = {
            "negative_prompt": self.negative_prompt_max is not None,
            "duration": self.durations is not None,
            "aspect_ratio": self.aspect_ratios is not None,
            "resolution": self.resolutions is not None,
            "audio": self.audio,
            "seed": self.seed_range is not None,
        }
        return tuple(name for name, taken in present.items() if taken) + tuple(f"options.{n}" for n in self.options)

    def default(self, name: str) -> Default:
        return self.defaults.get(name) or Default()

    def sends(self, req: NormalizedRequest, name: str) -> bool:
        """Whether a field the job gives goes to the provider (not when an input decides it)."""
        decider = self.decided_by.get(name)
        return name in req and not (decider and req.get(decider))

    def effective(self, req: NormalizedRequest) -> tuple[dict[str, Any], list[str]]:
        """What was asked of the provider: each field's value as sent, else its default.

        Returns ``(values, notes)``: values are None where nothing was sent and no document
        gives a default, or where an input decides; the notes say which and why.
        """
        values: dict[str, Any] = {}
        options: dict[str, Any] = {}
        notes: list[str] = []
        for name in self.optional_fields():
            given = req.get("options", {}) if name.startswith("options.") else req
            key = name.removeprefix("options.")
            decider = self.decided_by.get(name)
            if decider and req.get(decider):
                value = None
                asked = f" (the job's {given[key]!r} was not sent)" if key in given else ""
                notes.append(f"{name}: the {decider} decides it, so it is not sent{asked}")
            elif key in given:
                value = given[key]
            else:
                default = self.default(name)
                value = default.value
                if value is None:
                    notes.append(f"{name}: not sent; {default.note or 'the provider does not document its default'}")
            (options if name.startswith("options.") else values)[key] = value
        if self.options:
            values["options"] = options
        return values, notes

    def catalog_entry(self) -> dict[str, Any]:
        defaults = {name: self.default(name) for name in self.optional_fields()}
        return {
            "id": self.id,
            "provider": self.provider,
            "provider_model": self.provider_model,
            "title": self.title,
            "status_via": self.status_via,
            "prompt": {"required": self.prompt_required, "max_length": self.prompt_max},
            "negative_prompt": (
                {"max_length": self.negative_prompt_max, "default": defaults["negative_prompt"].value}
                if self.negative_prompt_max is not None else None
            ),
            "modes": [
                {
                    "name": mode.name,
                    "description": mode.description,
                    "aspect_ratio": mode.aspect_ratio,
                    "inputs": {name: rule.catalog() for name, rule in mode.inputs.items()},
                }
                for mode in self.modes
            ],
            "combined_limits": [
                {"fields": list(c.fields), "min": c.min, "max": c.max} for c in self.combined
            ],
            "durations": list(self.durations) if self.durations is not None else None,
            "default_duration": self.default_duration,
            "aspect_ratios": list(self.aspect_ratios) if self.aspect_ratios is not None else None,
            "resolutions": list(self.resolutions) if self.resolutions is not None else None,
            # "accepted" and "default" apart: an omitted audio means true on one model, false on another.
            "audio": {"accepted": self.audio, "default": defaults["audio"].value if self.audio else None},
            "seed": (
                {"minimum": self.seed_range[0], "maximum": self.seed_range[1]} if self.seed_range else None
            ),
            "options": {name: opt.catalog(name, defaults[f"options.{name}"]) for name, opt in self.options.items()},
            "defaults": {name: default.catalog() for name, default in defaults.items()},
            "decided_by": dict(self.decided_by),
            "reelhook_limits": [limit.catalog() for limit in self.own_limits],
            "notes": list(self.notes),
        }

    # -- validation ---------------------------------------------------------------------

    def validate(self, req: NormalizedRequest) -> list[FieldError]:
        errors: list[FieldError] = []
        errors += _check_text(req, "prompt", self.prompt_max, required=self.prompt_required)
        if self.negative_prompt_max is None:
            if "negative_prompt" in req:
                errors.append(FieldError("negative_prompt", f"is not accepted by {self.id}"))
        else:
            errors += _check_text(req, "negative_prompt", self.negative_prompt_max, required=False)
        mode, mode_errors = self.select_mode(req)
        errors += mode_errors
        if mode is not None:
            errors += _check_inputs(mode, req)
            if not mode.aspect_ratio and "aspect_ratio" in req:
                errors.append(
                    FieldError(
                        "aspect_ratio",
                        f"is not accepted in {mode.name} mode: the output follows the input",
                    )
                )
        for limit in self.combined:
            count = sum(len(req.get(name) or []) for name in limit.fields)  # type: ignore[arg-type]
            if not limit.min <= count <= limit.max:
                joined = " + ".join(limit.fields)
                errors.append(
                    FieldError(
                        limit.fields[0],
                        f"{joined} together must hold {limit.min} to {limit.max} items, got {count}",
                        {"min": limit.min, "max": limit.max},
                    )
                )
        errors += _check_choice(req, "duration", self.durations)
        errors += _check_choice(req, "aspect_ratio", self.aspect_ratios)
        errors += _check_choice(req, "resolution", self.resolutions)
        if "audio" in req and not self.audio:
            errors.append(FieldError("audio", f"is not accepted by {self.id}"))
        if "seed" in req:
            if self.seed_range is None:
                errors.append(FieldError("seed", f"is not accepted by {self.id}"))
            elif not self.seed_range[0] <= req["seed"] <= self.seed_range[1]:
                errors.append(
                    FieldError(
                        "seed",
                        f"must be between {self.seed_range[0]} and {self.seed_range[1]}",
                        {"minimum": self.seed_range[0], "maximum": self.seed_range[1]},
                    )
                )
        for name, value in (req.get("options") or {}).items():
            opt = self.options.get(name)
            if opt is None:
                errors.append(FieldError(f"options.{name}", f"is not an option of {self.id}"
                                         + did_you_mean(name, sorted(self.options)), sorted(self.options)))
            elif (err := opt.check(name, value)) is not None:
                errors.append(err)
        if self.extra_check is not None:
            errors += self.extra_check(req)
        return errors

    def select_mode(self, req: NormalizedRequest) -> tuple[Mode | None, list[FieldError]]:
        given = {name for name in INPUT_FIELDS if req.get(name)}
        not_accepted = sorted(given - self.accepted_inputs())
        if not_accepted:
            return None, [
                FieldError(name, f"is not accepted by {self.id}", sorted(self.accepted_inputs()))
                for name in not_accepted
            ]
        if len(self.modes) == 1:
            return self.modes[0], []
        for mode in self.modes:
            if given <= set(mode.inputs) and mode.required() <= given:
                return mode, []
        combos = [
            {"mode": m.name, "inputs": sorted(m.inputs), "required": sorted(m.required())} for m in self.modes
        ]
        field_name = sorted(given)[0] if given else "prompt"
        described = ", ".join(sorted(given)) or "prompt only"
        return None, [
            FieldError(field_name, f"{self.id} has no mode that takes these inputs together: {described}", combos)
        ]


def _check_text(req: NormalizedRequest, name: str, limit: int, *, required: bool) -> list[FieldError]:
    value = req.get(name)
    if value is None:
        return [FieldError(name, "is required")] if required else []
    if required and not str(value).strip():
        return [FieldError(name, "must not be empty")]
    if len(str(value)) > limit:
        return [FieldError(name, f"must be at most {limit} characters, got {len(str(value))}", {"max_length": limit})]
    return []


def _check_choice(req: NormalizedRequest, name: str, allowed: Sequence[Any] | None) -> list[FieldError]:
    if name not in req:
        return []
    if allowed is None:
        return [FieldError(name, "is not accepted by this model")]
    if req[name] not in allowed:  # type: ignore[literal-required]
        return [FieldError(name, f"must be one of {', '.join(map(str, allowed))}", list(allowed))]
    return []


def _check_inputs(mode: Mode, req: NormalizedRequest) -> list[FieldError]:
    errors: list[FieldError] = []
    for name, rule in mode.inputs.items():
        value = req.get(name)
        if name in LIST_INPUTS:
            items: list[Reference] = value or []  # type: ignore[assignment]
            if not rule.min <= len(items) <= rule.max:
                errors.append(
                    FieldError(
                        name,
                        f"must hold {rule.min} to {rule.max} items in {mode.name} mode, got {len(items)}",
                        {"min": rule.min, "max": rule.max},
                    )
                )
            if not rule.voice:
                for index, item in enumerate(items):
                    if item.get("voice_url"):
                        errors.append(FieldError(f"{name}[{index}].voice_url", "is not accepted by this model"))
        elif rule.min and not value:
            errors.append(FieldError(name, f"is required in {mode.name} mode"))
    return errors
