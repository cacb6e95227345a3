"""The JWT variant of the template (``make build AUTH=jwt``, scripts/jwt_template.py).

SAM's ``Auth.DefaultAuthorizer`` must be a literal, so the IAM/JWT choice is made at build
time by generating a second template. Checked offline here, as tests/test_template.py
checks template.yaml: the SAM transform, then the OpenAPI body API Gateway would import.

The default (IAM) template's routes are pinned by
``tests/test_template.py::test_client_routes_refuse_unsigned_calls_and_callbacks_stay_open``:
every client route requires AWS_IAM, the callback route does not. Here: the JWT variant
keeps exactly that split, with the JWT authorizer in place of IAM.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from reelhook_local.aws_resources import load_template
from scripts.jwt_template import (
    AUDIENCE_PARAMETER,
    AUTHORIZER,
    ISSUER_PARAMETER,
    VariantError,
    dump,
    jwt_variant,
    main,
    write_variant,
)
from tests.template_tools import REGION, ROOT, TEMPLATE_PATH, sam_transform

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
AUDIENCE = "example-app-client-id"
CALLBACK_ROUTE = ("POST", "/v1/callbacks/{provider}/{job_id}")


@cache
def default_template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@cache
def variant() -> dict[str, Any]:
    return jwt_variant(default_template(), ISSUER, AUDIENCE)


@cache
def transformed(which: str) -> dict[str, Any]:
    return sam_transform(variant() if which == "jwt" else default_template())


def api_body(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["HttpApi"]["Properties"]["Body"]


def route_security(template: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    return {
        (method.upper(), path): operation.get("security", [])
        for path, operations in api_body(template)["paths"].items()
        for method, operation in operations.items()
    }


def defined_schemes(template: dict[str, Any]) -> set[str]:
    return set(api_body(template).get("components", {}).get("securitySchemes", {}))


def lint(text: str) -> list[str]:
    from cfnlint.api import ManualArgs, lint

    return [str(m) for m in lint(text, config=ManualArgs(regions=[REGION]))]


# ---------------------------------------------------------------------------- routes


def test_every_client_route_takes_the_jwt_and_the_callback_route_none() -> None:
    default, jwt = route_security(transformed("iam")), route_security(transformed("jwt"))
    assert set(jwt) == set(default)
    assert CALLBACK_ROUTE in jwt
    schemes = defined_schemes(transformed("jwt"))
    assert schemes == {AUTHORIZER}
    client_routes = 0
    for route, security in default.items():
        if security == [{"AWS_IAM": []}]:
            assert jwt[route] == [{AUTHORIZER: []}], route
            client_routes += 1
        else:  # open in the default template: open here too, naming no authorizer
            assert jwt[route] == security, route
            assert not {name for requirement in security for name in requirement} & (schemes | {"AWS_IAM"}), route
    assert client_routes >= 4
    assert jwt[CALLBACK_ROUTE] == default[CALLBACK_ROUTE]


def test_jwt_authorizer_configuration() -> None:
    scheme = api_body(transformed("jwt"))["components"]["securitySchemes"][AUTHORIZER]
    assert scheme["type"] == "oauth2"
    authorizer = scheme["x-amazon-apigateway-authorizer"]
    assert authorizer == {
        "type": "jwt",
        "identitySource": "$request.header.Authorization",
        "jwtConfiguration": {"issuer": {"Ref": ISSUER_PARAMETER}, "audience": [{"Ref": AUDIENCE_PARAMETER}]},
    }


def test_no_iam_left_in_the_jwt_api() -> None:
    assert "AWS_IAM" not in json.dumps(api_body(transformed("jwt")))
    assert "EnableIamAuthorizer" not in variant()["Resources"]["HttpApi"]["Properties"]["Auth"]


def test_jwt_parameters() -> None:
    parameters = variant()["Parameters"]
    assert parameters[ISSUER_PARAMETER]["Default"] == ISSUER
    assert parameters[AUDIENCE_PARAMETER]["Default"] == AUDIENCE
    bare = jwt_variant(default_template())["Parameters"]
    assert "Default" not in bare[ISSUER_PARAMETER] and "Default" not in bare[AUDIENCE_PARAMETER]
    # Everything else is template.yaml's, untouched.
    assert {k: v for k, v in variant().items() if k not in ("Parameters", "Resources")} == {
        k: v for k, v in default_template().items() if k not in ("Parameters", "Resources")
    }
    assert set(variant()["Resources"]) == set(default_template()["Resources"])


# ---------------------------------------------------------------------------- cfn-lint


def test_cfn_lint_jwt_sam_template_is_clean() -> None:
    assert lint(dump(variant())) == []


def test_cfn_lint_jwt_transformed_template_is_clean() -> None:
    # Also proves the authorizer uses both parameters: an unused one would be W2001.
    assert lint(json.dumps(transformed("jwt"))) == []


# ---------------------------------------------------------------------------- the file


def test_written_file_reads_back_and_builds_the_same_sources(tmp_path: Path) -> None:
    output = tmp_path / "out" / "template-jwt.yaml"
    write_variant(TEMPLATE_PATH, output, ISSUER, AUDIENCE)
    written = load_template(output)
    # Local code paths are relative to the file, so `sam build -t` on it finds the sources.
    for name, resource in written["Resources"].items():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in props:
                original = default_template()["Resources"][name]["Properties"][key]
                assert (output.parent / props[key]).resolve() == (ROOT / original).resolve(), name
                props[key] = original
    assert written == variant()


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "t.yaml"
    assert main(["-o", str(output), "--issuer", ISSUER, "--audience", AUDIENCE]) == 0
    assert load_template(output)["Parameters"][ISSUER_PARAMETER]["Default"] == ISSUER
    with pytest.raises(SystemExit):
        main(["-o", str(output), "--issuer", "http://insecure.example"])
    assert "https://" in capsys.readouterr().err


# ---------------------------------------------------------------------------- refusals


def test_routes_naming_iam_move_to_jwt_and_unknown_authorizers_are_refused() -> None:
    template = json.loads(json.dumps(default_template()))
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"]
    events["CreateJob"]["Properties"]["Auth"] = {"Authorizer": "AWS_IAM"}
    assert jwt_variant(template)["Resources"]["ApiFunction"]["Properties"]["Events"]["CreateJob"]["Properties"][
        "Auth"] == {"Authorizer": AUTHORIZER}
    events["CreateJob"]["Properties"]["Auth"] = {"Authorizer": "SomeLambdaAuthorizer"}
    with pytest.raises(VariantError, match="SomeLambdaAuthorizer"):
        jwt_variant(template)


def test_a_template_without_iam_auth_is_refused() -> None:
    template = json.loads(json.dumps(default_template()))
    del template["Resources"]["HttpApi"]["Properties"]["Auth"]
    with pytest.raises(VariantError, match="AWS_IAM"):
        jwt_variant(template)
    template = json.loads(json.dumps(default_template()))
    template["Parameters"][ISSUER_PARAMETER] = {"Type": "String"}
    with pytest.raises(VariantError, match="already declares"):
        jwt_variant(template)
