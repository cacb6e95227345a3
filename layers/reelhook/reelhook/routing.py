"""Logical models: one provider-neutral id that several providers' models serve.

A concrete model declares the logical models it is a route of (``ModelSpec.serves``), so a
new provider joins a logical model from its own module. A job naming a logical model is
checked against every route; the routes that can take it as given are kept, in the
deployment's provider order (or the job's own), and the others are recorded with their
objections. The submit consumer moves a job to its next route when the policy allows
(``services.failover``).

Pure Python: no boto3, no pydantic.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, Literal

from reelhook.config import settings
from reelhook.providers import all_models, provider_names
from reelhook.records import record
from reelhook.spec import FieldError, ModelSpec, NormalizedRequest, did_you_mean

Failover = Literal["submit", "any", "none"]
FAILOVER_POLICIES: tuple[str, ...] = ("submit", "any", "none")
# Title and description of each logical model; its routes come from the concrete models.
LOGICAL_MODELS: dict[str, tuple[str, str]] = {
    "veo-3.1/reference-to-video": (
        "Veo 3.1 reference-to-video, from any provider that sells it",
        "Google Veo 3.1 from 1-3 reference images. Routes: Freepik, AIHubMax (standard) and UniAll "
        "(multi-image reference, 2-3 images; its resolution is fixed per model)."),
    "veo-3.1-fast/reference-to-video": (
        "Veo 3.1 Fast reference-to-video, from any provider that sells it",
        "Google Veo 3.1 Fast from 1-3 reference images (AIHubMax today)."),
}


@record
class Route:
    spec: ModelSpec
    mode: str | None  # the mode a job must take on this model to count as the logical model


@record
class RoutePlan:
    """What a job naming a logical model will try, in order, and what was left out and why."""

    routes: tuple[str, ...]  # concrete model ids that can take the job as given
    skipped: tuple[dict[str, Any], ...]  # {"model", "provider", "reasons": [field errors]}
    providers: tuple[str, ...]  # the provider order applied
    failover: str

    def stored(self) -> dict[str, Any]:
        return {"providers": list(self.providers), "failover": self.failover}


def job_spec(job: dict[str, Any]) -> ModelSpec:
    """The concrete model a job is on now: its current route, else the model it named."""
    route = job.get("route") or {}
    return all_models()[route.get("model") or job["model"]]


def is_logical(model_id: str) -> bool:
    return model_id in logical_routes()


@cache
def logical_routes() -> dict[str, tuple[Route, ...]]:
    found: dict[str, list[Route]] = {model_id: [] for model_id in LOGICAL_MODELS}
    for spec in all_models().values():
        for model_id, mode in spec.serves.items():
            found.setdefault(model_id, []).append(Route(spec, mode))
    return {model_id: tuple(routes) for model_id, routes in found.items() if routes}


def provider_order(requested: Sequence[str] | None = None) -> tuple[str, ...]:
    """The job's providers if it names them, else the deployment's order then every other
    provider alphabetically."""
    if requested:
        return tuple(requested)
    known = provider_names()
    first = [name for name in settings().routing_provider_order if name in known]
    return tuple(first + [name for name in known if name not in first])


def catalog_entry(model_id: str) -> dict[str, Any]:
    title, description = LOGICAL_MODELS.get(model_id, (model_id, ""))
    order = provider_order()
    routes = sorted(logical_routes()[model_id], key=lambda r: (order.index(r.spec.provider), r.spec.id))
    return {
        "id": model_id,
        "logical": True,
        "title": title,
        "description": description,
        "failover_default": settings().routing_failover,
        "routes": [{"model": r.spec.id, "provider": r.spec.provider, "mode": r.mode,
                    "title": r.spec.title} for r in routes],
    }


def routing_errors(routing: dict[str, Any] | None) -> list[FieldError]:
    """Objections to a job's own ``routing`` (its shape is checked by the request model)."""
    if not routing:
        return []
    errors = []
    known = list(provider_names())
    for index, name in enumerate(routing.get("providers") or ()):
        if name not in known:
            errors.append(FieldError(f"routing.providers[{index}]", "is not a known provider"
                                     + did_you_mean(name, known), known))
    return errors


def plan_routes(model_id: str, req: NormalizedRequest, routing: dict[str, Any] | None,
                extra_check: Any = None) -> tuple[RoutePlan | None, list[FieldError]]:
    """The routes of ``model_id`` that can take ``req``; or None and every route's objections.

    ``extra_check(spec, req)`` adds objections a route only learns from outside (the S3
    inputs' metadata, say).
    """
    routing = routing or {}
    order = provider_order(routing.get("providers"))
    failover = routing.get("failover") or settings().routing_failover
    if failover not in FAILOVER_POLICIES:
        failover = "submit"
    routes = sorted((r for r in logical_routes()[model_id] if r.spec.provider in order),
                    key=lambda r: (order.index(r.spec.provider), r.spec.id))
    kept: list[str] = []
    skipped: list[dict[str, Any]] = []
    objections: list[FieldError] = []
    for route in routes:
        problems = _route_problems(route, req)
        if not problems and extra_check is not None:
            problems = list(extra_check(route.spec, req))
        if problems:
            skipped.append({"model": route.spec.id, "provider": route.spec.provider,
                            "reasons": [p.as_dict() for p in problems]})
            objections += [FieldError(p.field, p.message, p.allowed, route=route.spec.id) for p in problems]
        else:
            kept.append(route.spec.id)
    if not routes:
        objections.append(FieldError("routing.providers", f"none of these providers serves {model_id}",
                                     sorted({r.spec.provider for r in logical_routes()[model_id]})))
    if not kept:
        return None, objections
    return RoutePlan(tuple(kept), tuple(skipped), order, failover), []


def _route_problems(route: Route, req: NormalizedRequest) -> list[FieldError]:
    problems = route.spec.validate(req)
    if problems or route.mode is None:
        return problems
    mode, _ = route.spec.select_mode(req)
    if mode is not None and mode.name != route.mode:
        return [FieldError("reference_images", f"{route.spec.id} serves this model only in {route.mode} mode, "
                                               f"and these inputs make a {mode.name} job")]
    return []
