"""Reads ``template.yaml`` so the local stack is wired exactly as the deployed one.

Routes, queue triggers, schedules and environment come from the template; nothing about
the functions is repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"


@cache
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    from reelhook_local.aws_resources import load_template as load

    return load(path)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway style, e.g. /v1/jobs/{id}
    function: str
    # The effective authorizer: the event's ``Auth.Authorizer``, else the API's
    # ``Auth.DefaultAuthorizer``, else "NONE". "AWS_IAM" means SigV4 is required.
    authorizer: str = "NONE"


@dataclass(frozen=True)
class FunctionDef:
    logical_id: str
    code_dir: Path
    handler: str
    routes: tuple[Route, ...] = ()
    queues: tuple[tuple[str, int], ...] = ()  # (queue logical id, batch size)
    # queue logical id -> the SQS event's ScalingConfig.MaximumConcurrency, where it has one
    queue_concurrency: dict[str, int] = field(default_factory=dict)
    scheduled: bool = False
    environment: dict[str, Any] = field(default_factory=dict)


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else str(target).split(".")[0])
    return None


def _number(template: dict[str, Any], value: Any) -> int | None:
    """A number, or a ``!Ref`` to a parameter's default."""
    ref = _ref(value)
    if ref is not None:
        value = ((template.get("Parameters") or {}).get(ref) or {}).get("Default")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _default_authorizer(template: dict[str, Any], api_ref: str | None) -> str:
    """The API's ``Auth.DefaultAuthorizer``; SAM merges ``Globals.HttpApi`` into every HttpApi."""
    global_auth = ((template.get("Globals") or {}).get("HttpApi") or {}).get("Auth") or {}
    api_auth: dict[str, Any] = {}
    if api_ref is not None:  # an explicit AWS::Serverless::HttpApi; without ApiId, SAM's implicit one
        api = (template.get("Resources") or {}).get(api_ref) or {}
        api_auth = (api.get("Properties") or {}).get("Auth") or {}
    return str(api_auth.get("DefaultAuthorizer") or global_auth.get("DefaultAuthorizer") or "NONE")


def route_authorizer(template: dict[str, Any], event_properties: dict[str, Any]) -> str:
    """The authorizer API Gateway applies to one ``HttpApi`` event's route."""
    own = (event_properties.get("Auth") or {}).get("Authorizer")
    if own:
        return str(own)
    return _default_authorizer(template, _ref(event_properties.get("ApiId")))


def functions(template: dict[str, Any] | None = None) -> dict[str, FunctionDef]:
    template = template or load_template()
    found: dict[str, FunctionDef] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        routes: list[Route] = []
        queues: list[tuple[str, int]] = []
        concurrency: dict[str, int] = {}
        scheduled = False
        for event in (props.get("Events") or {}).values():
            kind, ev_props = event.get("Type"), event.get("Properties", {})
            if kind == "HttpApi":
                routes.append(Route(str(ev_props["Method"]).upper(), str(ev_props["Path"]), logical_id,
                                    authorizer=route_authorizer(template, ev_props)))
            elif kind == "SQS":
                queue = _ref(ev_props.get("Queue"))
                if queue:
                    queues.append((queue, int(ev_props.get("BatchSize", 10))))
                    most = _number(template, (ev_props.get("ScalingConfig") or {}).get("MaximumConcurrency"))
                    if most is not None:
                        concurrency[queue] = most
            elif kind in {"Schedule", "ScheduleV2"}:
                scheduled = True
        found[logical_id] = FunctionDef(
            logical_id=logical_id,
            code_dir=ROOT / str(props["CodeUri"]),
            handler=str(props.get("Handler", "app.handler")),
            routes=tuple(routes),
            queues=tuple(queues),
            queue_concurrency=concurrency,
            scheduled=scheduled,
            environment=dict((props.get("Environment") or {}).get("Variables") or {}),
        )
    return found


def environment_variables(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every function environment variable the template declares (Globals and each function's
    own) with its template value, unresolved."""
    template = template or load_template()
    found = dict(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            found |= (resource.get("Properties", {}).get("Environment") or {}).get("Variables") or {}
    return found


def resource_wired(template: dict[str, Any] | None = None) -> set[str]:
    """The variables the template points at one of its own resources (a table name, a queue
    URL): a deployment's wiring, not a setting anyone chooses."""
    template = template or load_template()
    resources = set(template["Resources"])

    def names_resource(value: Any) -> bool:
        if isinstance(value, dict):
            if "Ref" in value:
                return value["Ref"] in resources
            if "Fn::GetAtt" in value:
                target = value["Fn::GetAtt"]
                return (target[0] if isinstance(target, list) else str(target).split(".")[0]) in resources
            return any(names_resource(v) for v in value.values())
        if isinstance(value, list):
            return any(names_resource(v) for v in value)
        return False

    return {name for name, value in environment_variables(template).items() if names_resource(value)}
