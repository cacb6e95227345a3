"""Write the JWT variant of template.yaml: client routes behind a JWT authorizer instead of IAM.

SAM's ``Auth.DefaultAuthorizer`` must be a literal, so no CloudFormation parameter can
switch it; the switch happens at build time instead (``make build AUTH=jwt``)::

    python scripts/jwt_template.py [--issuer URL] [--audience ID] [-o .aws-sam/template-jwt.yaml]

Every ``AWS::Serverless::HttpApi`` whose default authorizer is ``AWS_IAM`` gets::

    Auth:
      Authorizers:
        Jwt:
          IdentitySource: $request.header.Authorization
          JwtConfiguration: {issuer: !Ref JwtIssuer, audience: [!Ref JwtAudience]}
      DefaultAuthorizer: Jwt

and the template gets the ``JwtIssuer`` and ``JwtAudience`` parameters (``--issuer`` and
``--audience`` become their defaults, so a later ``sam deploy`` needs no override). Routes
that opt out (``Auth: {Authorizer: NONE}``, the provider callbacks) keep opting out; a route
that names ``AWS_IAM`` itself is moved to ``Jwt``, any other authorizer name is refused.

The output is YAML with the intrinsics in their long form (``Ref:``, ``Fn::Sub:``), which
CloudFormation and SAM read as they read the short tags. Local code paths (``CodeUri``,
``ContentUri``...) are rewritten relative to the output file, so ``sam build -t`` on it
builds the same sources.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from reelhook_local.aws_resources import load_template

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT / "template.yaml"
DEFAULT_OUTPUT = ROOT / ".aws-sam" / "template-jwt.yaml"

AUTHORIZER = "Jwt"
IDENTITY_SOURCE = "$request.header.Authorization"
ISSUER_PARAMETER = "JwtIssuer"
AUDIENCE_PARAMETER = "JwtAudience"

# Properties that may name a local path, relative to the template (SAM resolves them so).
LOCAL_PATH_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri", "Location")


class VariantError(ValueError):
    """The template cannot be turned into the JWT variant as it stands."""


def jwt_auth() -> dict[str, Any]:
    return {
        "Authorizers": {
            AUTHORIZER: {
                "IdentitySource": IDENTITY_SOURCE,
                "JwtConfiguration": {
                    "issuer": {"Ref": ISSUER_PARAMETER},
                    "audience": [{"Ref": AUDIENCE_PARAMETER}],
                },
            }
        },
        "DefaultAuthorizer": AUTHORIZER,
    }


def jwt_parameters(issuer: str | None, audience: str | None) -> dict[str, dict[str, Any]]:
    issuer_parameter: dict[str, Any] = {
        "Type": "String",
        "AllowedPattern": r"^https://[^\s]+$",
        "Description": (
            "Issuer of the JWTs the client routes accept (the token's iss claim), e.g. "
            "https://cognito-idp.<region>.amazonaws.com/<user-pool-id>. API Gateway fetches its keys "
            "from <issuer>/.well-known/openid-configuration."
        ),
    }
    audience_parameter: dict[str, Any] = {
        "Type": "String",
        "MinLength": 1,
        "Description": "Audience the JWTs must carry (aud claim; for Cognito access tokens, the app client id).",
    }
    if issuer:
        issuer_parameter["Default"] = issuer
    if audience:
        audience_parameter["Default"] = audience
    return {ISSUER_PARAMETER: issuer_parameter, AUDIENCE_PARAMETER: audience_parameter}


def _is_iam_api(resource: dict[str, Any]) -> bool:
    auth = resource.get("Properties", {}).get("Auth", {})
    return resource.get("Type") == "AWS::Serverless::HttpApi" and auth.get("DefaultAuthorizer") == "AWS_IAM"


def _api_id(api: Any) -> str | None:
    if isinstance(api, dict) and set(api) == {"Ref"}:
        return str(api["Ref"])
    return None


def _move_routes(template: dict[str, Any], apis: set[str]) -> None:
    """Routes on the switched APIs: NONE stays NONE, AWS_IAM becomes Jwt, anything else is refused."""
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in resource.get("Properties", {}).get("Events", {}).items():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties", {})
            api = _api_id(props.get("ApiId"))
            if api is None:
                # No ApiId: the implicit API, which SAM makes without any authorizer.
                continue
            if api not in apis:
                continue
            authorizer = props.get("Auth", {}).get("Authorizer")
            if authorizer in (None, "NONE", AUTHORIZER):
                continue
            if authorizer == "AWS_IAM":
                props["Auth"]["Authorizer"] = AUTHORIZER
                continue
            raise VariantError(f"{name}.Events.{event_name} uses authorizer {authorizer!r}; only NONE or AWS_IAM "
                               "can be carried over to the JWT variant")


def _relocate(path: str, source_dir: Path, output_dir: Path) -> str:
    if "://" in path or os.path.isabs(path):
        return path
    moved = os.path.relpath(source_dir / path, output_dir)
    return moved + "/" if path.endswith("/") and not moved.endswith("/") else moved


def _relocate_paths(template: dict[str, Any], source_dir: Path, output_dir: Path) -> None:
    sections = [template["Resources"].values()]
    function_globals = template.get("Globals", {}).get("Function")
    if isinstance(function_globals, dict):
        sections.append([{"Properties": function_globals}])
    for resources in sections:
        for resource in resources:
            props = resource.get("Properties", {})
            for key in LOCAL_PATH_PROPERTIES:
                if isinstance(props.get(key), str):
                    props[key] = _relocate(props[key], source_dir, output_dir)


def jwt_variant(template: dict[str, Any], issuer: str | None = None, audience: str | None = None) -> dict[str, Any]:
    """``template`` (as :func:`load_template` reads it) with JWT auth in place of IAM."""
    out = copy.deepcopy(template)
    apis = {name for name, resource in out.get("Resources", {}).items() if _is_iam_api(resource)}
    if not apis:
        raise VariantError("no AWS::Serverless::HttpApi with Auth.DefaultAuthorizer AWS_IAM to switch to JWT")
    parameters = out.setdefault("Parameters", {})
    clash = {ISSUER_PARAMETER, AUDIENCE_PARAMETER} & set(parameters)
    if clash:
        raise VariantError(f"the template already declares {sorted(clash)}")
    parameters.update(jwt_parameters(issuer, audience))
    for name in apis:
        out["Resources"][name]["Properties"]["Auth"] = jwt_auth()
    _move_routes(out, apis)
    return out


def dump(template: dict[str, Any]) -> str:
    return yaml.safe_dump(template, sort_keys=False, width=1000, allow_unicode=True)


def write_variant(source: Path, output: Path, issuer: str | None = None, audience: str | None = None) -> Path:
    variant = jwt_variant(load_template(source), issuer, audience)
    output.parent.mkdir(parents=True, exist_ok=True)
    _relocate_paths(variant, source.resolve().parent, output.resolve().parent)
    header = f"# GENERATED by scripts/jwt_template.py from {os.path.relpath(source, output.parent)}: do not edit.\n"
    output.write_text(header + dump(variant), encoding="utf-8")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=DEFAULT_SOURCE, help="the SAM template (template.yaml)")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--issuer", default=os.environ.get("JWT_ISSUER") or None,
                        help="default for the JwtIssuer parameter (env JWT_ISSUER)")
    parser.add_argument("--audience", default=os.environ.get("JWT_AUDIENCE") or None,
                        help="default for the JwtAudience parameter (env JWT_AUDIENCE)")
    args = parser.parse_args(argv)
    if args.issuer and not args.issuer.startswith("https://"):
        parser.error(f"--issuer must be an https:// URL, not {args.issuer!r}")
    try:
        written = write_variant(args.template, args.output, args.issuer, args.audience)
    except VariantError as e:
        print(f"jwt_template: {e}", file=sys.stderr)
        return 1
    print(f"wrote {os.path.relpath(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
