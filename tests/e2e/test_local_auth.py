"""IAM (SigV4) auth on the local front, as API Gateway applies it to the template's routes.

With ``enforce_iam`` the client routes refuse what is not signed with the local stack's
credentials, before any handler runs; the callback route (``Authorizer: NONE``) stays open.
Signed requests come from the CLI's signer, from curl's ``--aws-sigv4`` and from the CLI.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.credentials import ReadOnlyCredentials
from click.testing import CliRunner

from reelhook_cli.main import cli
from reelhook_client.auth import SigV4Auth
from reelhook_local.front import LocalFront, verify_sigv4
from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LOCAL_CREDENTIALS, LocalStack, StackOptions
from reelhook_local.template import FunctionDef, Route, functions

pytestmark = pytest.mark.e2e

KEY = LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]
SECRET = LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
REGION = LOCAL_CREDENTIALS["AWS_REGION"]
MODEL = "uniall/veo3.1-video-1080p"
CLIENT_ROUTES = {"POST /v1/jobs", "GET /v1/jobs", "GET /v1/jobs/{id}", "POST /v1/jobs/{id}/cancel", "GET /v1/models",
                 "GET /v1/providers", "GET /v1/openapi.json"}
CALLBACK_ROUTE = "POST /v1/callbacks/{provider}/{job_id}"
FORBIDDEN = {"message": "Forbidden"}
OTHER_KEY, OTHER_SECRET = "other-user", "other-secret"  # a second IAM user the front knows
MISMATCH = "The request signature we calculated does not match the signature you provided"


@pytest.fixture(scope="module")
def stack():
    with LocalStack(StackOptions(sandbox=SandboxConfig(step_seconds=0.1), enforce_iam=True,
                                 iam_users={OTHER_KEY: OTHER_SECRET})) as running:
        yield running


def signer(key: str = KEY, secret: str = SECRET, region: str = REGION) -> SigV4Auth:
    return SigV4Auth(region, ReadOnlyCredentials(key, secret, None))


def job_body(marker: str) -> dict[str, Any]:
    return {"model": MODEL, "prompt": f"a fjord at dawn ({marker})", "duration": 8, "client_reference": marker}


def table_items(stack) -> list[dict[str, Any]]:
    dynamodb = stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=stack.resources.table_name):
        items += page["Items"]
    return items


def submit(stack, marker: str, auth: httpx.Auth | None) -> httpx.Response:
    return httpx.post(f"{stack.api_url}/v1/jobs", json=job_body(marker), auth=auth,
                      headers={"Idempotency-Key": f"auth-{marker}"}, timeout=10)


def test_the_template_puts_iam_on_the_client_routes_only():
    routes = {f"{r.method} {r.path}": r.authorizer for fn in functions().values() for r in fn.routes}
    assert routes == {route: "AWS_IAM" for route in CLIENT_ROUTES} | {CALLBACK_ROUTE: "NONE"}


def test_unsigned_calls_to_client_routes_are_refused_and_create_nothing(stack):
    before = table_items(stack)
    requests = {
        "POST /v1/jobs": ("POST", "/v1/jobs"),
        "GET /v1/jobs": ("GET", "/v1/jobs"),
        "GET /v1/jobs/{id}": ("GET", "/v1/jobs/job_" + "0" * 32),
        "POST /v1/jobs/{id}/cancel": ("POST", "/v1/jobs/job_" + "0" * 32 + "/cancel"),
        "GET /v1/models": ("GET", "/v1/models"),
        "GET /v1/providers": ("GET", "/v1/providers"),
        "GET /v1/openapi.json": ("GET", "/v1/openapi.json"),
    }
    assert set(requests) == CLIENT_ROUTES
    for method, path in requests.values():
        answer = httpx.request(method, stack.api_url + path, timeout=10, headers={"Idempotency-Key": "unsigned-1"},
                               json=job_body("unsigned-1") if method == "POST" else None)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json() == FORBIDDEN
        assert answer.headers["x-amzn-errortype"] == "ForbiddenException"
    # An Authorization header that is not SigV4 is no better.
    bearer = httpx.post(f"{stack.api_url}/v1/jobs", json=job_body("unsigned-2"), timeout=10,
                        headers={"Authorization": "Bearer abc", "Idempotency-Key": "unsigned-2"})
    assert bearer.status_code == 403 and "Authorization header requires" in bearer.json()["message"]
    after = table_items(stack)
    assert len(after) == len(before)
    assert not [item for item in after if "unsigned-" in json.dumps(item)]


def test_bad_signatures_are_refused(stack, monkeypatch):
    wrong_secret = submit(stack, "wrong-secret", signer(secret="not-local"))
    assert wrong_secret.status_code == 403 and MISMATCH in wrong_secret.json()["message"]
    assert wrong_secret.headers["x-amzn-errortype"] == "InvalidSignatureException"

    unknown_key = submit(stack, "unknown-key", signer(key="AKIAEXAMPLE"))
    assert unknown_key.status_code == 403
    assert unknown_key.json() == {"message": "The security token included in the request is invalid."}

    other_region = submit(stack, "other-region", signer(region="eu-west-1"))
    assert other_region.status_code == 403 and "region" in other_region.json()["message"]

    # A signed request whose body is swapped on the way.
    request = httpx.Request("POST", f"{stack.api_url}/v1/jobs", json=job_body("tampered"))
    signer().sign(request)
    forged = job_body("tampered") | {"duration": 4}
    tampered = httpx.post(f"{stack.api_url}/v1/jobs", json=forged, timeout=10,
                          headers={k: v for k, v in request.headers.items() if k.lower().startswith(("x-amz", "auth"))})
    assert tampered.status_code == 403, tampered.text

    # Signed more than five minutes ago.
    import botocore.auth

    stale = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=6)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: stale)
    expired = submit(stack, "expired", signer())
    assert expired.status_code == 403 and expired.json()["message"].startswith("Signature expired:")
    monkeypatch.undo()

    refused = {"wrong-secret", "unknown-key", "other-region", "tampered", "expired"}
    # Match on the job's own client_reference: moto's state is shared by every stack in the
    # process, and other suites' jobs may well mention "expired".
    assert not [item for item in table_items(stack)
                if item.get("client_reference", {}).get("S") in refused]


def test_signed_calls_work(stack):
    with httpx.Client(base_url=stack.api_url, auth=signer(), timeout=10) as api:
        created = api.post("/v1/jobs", json=job_body("signed"), headers={"Idempotency-Key": "auth-signed"})
        assert created.status_code == 202, created.text
        job = api.get(f"/v1/jobs/{created.json()['id']}")
        assert job.status_code == 200 and job.json()["id"] == created.json()["id"]
        models = api.get("/v1/models")
        assert models.status_code == 200 and MODEL in {m["id"] for m in models.json()["models"]}
        assert api.get("/v1/openapi.json").status_code == 200
        # A query string is part of what is signed, too.
        assert api.get("/v1/models", params={"b": "2", "a": "1 2"}).status_code == 200


def test_two_identities_see_only_their_own_jobs(stack):
    mine, theirs = signer(), signer(OTHER_KEY, OTHER_SECRET)
    with httpx.Client(base_url=stack.api_url, timeout=10) as api:
        body = job_body("two-identities")
        created = api.post("/v1/jobs", json=body, auth=mine, headers={"Idempotency-Key": "auth-two"})
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        # The same key from the other identity is its own: a new job, not a replay or a 409.
        other = api.post("/v1/jobs", json=body, auth=theirs, headers={"Idempotency-Key": "auth-two"})
        assert other.status_code == 202 and other.json()["id"] != job_id
        assert api.get(f"/v1/jobs/{job_id}", auth=theirs).status_code == 404
        assert api.post(f"/v1/jobs/{job_id}/cancel", auth=theirs).status_code == 404
        listed = api.get("/v1/jobs", params={"client_reference": "two-identities"}, auth=theirs).json()
        assert [job["id"] for job in listed["jobs"]] == [other.json()["id"]]
        mine_listed = api.get("/v1/jobs", params={"client_reference": "two-identities"}, auth=mine).json()
        assert [job["id"] for job in mine_listed["jobs"]] == [job_id]
        cancelled = api.post(f"/v1/jobs/{job_id}/cancel", auth=mine)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert api.get(f"/v1/jobs/{other.json()['id']}", auth=theirs).json()["status"] != "cancelled"


def test_the_callback_route_needs_no_signature(stack):
    with httpx.Client(base_url=stack.api_url, auth=signer(), timeout=10) as api:
        job_id = api.post("/v1/jobs", json=job_body("callback"), headers={"Idempotency-Key": "auth-cb"}).json()["id"]
    answer = httpx.post(f"{stack.api_url}/v1/callbacks/uniall/{job_id}", params={"token": "not-the-token"},
                        json={"status": "completed"}, timeout=10)
    # Refused by the handler (a bad callback token), not by the front's IAM check.
    assert answer.status_code == 401, answer.text
    assert "x-amzn-errortype" not in answer.headers and answer.json() != FORBIDDEN


CURL = shutil.which("curl")


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_with_aws_sigv4(stack):
    def curl(*args: str, user: str = f"{KEY}:{SECRET}") -> tuple[int, str]:
        command = [str(CURL), "-s", "-w", "\n%{http_code}", "--aws-sigv4", f"aws:amz:{REGION}:execute-api",
                   "--user", user, *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)  # noqa: S603
        body, _, status = done.stdout.rpartition("\n")
        return int(status), body

    status, body = curl(f"{stack.api_url}/v1/models")
    assert status == 200 and MODEL in body
    status, body = curl("-H", "content-type: application/json", "-H", "Idempotency-Key: auth-curl",
                        "-d", json.dumps(job_body("curl")), f"{stack.api_url}/v1/jobs")
    assert status == 202, body
    status, body = curl(f"{stack.api_url}/v1/jobs/{json.loads(body)['id']}")
    assert status == 200 and json.loads(body)["model"] == MODEL
    status, body = curl(f"{stack.api_url}/v1/models", user=f"{KEY}:wrong")
    assert status == 403 and MISMATCH in body


def test_the_cli_with_auth_iam(stack):
    env = {"REELHOOK_API_URL": stack.api_url, "REELHOOK_AUTH": "iam", "AWS_ACCESS_KEY_ID": KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": REGION, "AWS_SESSION_TOKEN": None,
           "AWS_PROFILE": None, "COLUMNS": "200"}
    runner = CliRunner()
    models = runner.invoke(cli, ["models"], env=env, catch_exceptions=False)
    assert models.exit_code == 0 and MODEL in models.stdout, models.output
    submitted = runner.invoke(cli, ["submit", "--model", MODEL, "--prompt", "a fjord at dawn", "--duration", "8",
                                    "--idempotency-key", "auth-cli"], env=env, catch_exceptions=False)
    assert submitted.exit_code == 0, submitted.output
    status = runner.invoke(cli, ["status", submitted.stdout.strip(), "--json"], env=env, catch_exceptions=False)
    assert status.exit_code == 0 and json.loads(status.stdout)["model"] == MODEL
    unsigned = runner.invoke(cli, ["models"], env=env | {"REELHOOK_AUTH": "none"})
    assert unsigned.exit_code == 3 and "authentication failed (HTTP 403" in unsigned.stderr
    wrong = runner.invoke(cli, ["models"], env=env | {"AWS_SECRET_ACCESS_KEY": "wrong"})
    assert wrong.exit_code == 3 and "signature we calculated does not match" in wrong.stderr


# -- the front on its own: what a signed request's event carries ---------------------------------------------


@pytest.fixture
def echo_front(tmp_path: Path):
    """A front whose one function answers with the requestContext it was given."""
    (tmp_path / "echo.py").write_text(textwrap.dedent("""
        import json

        def handler(event, context):
            return {"statusCode": 200, "body": json.dumps(event["requestContext"])}
    """))
    logical_id = f"Echo{tmp_path.name.replace('-', '').replace('_', '')}Function"
    fn = FunctionDef(logical_id=logical_id, code_dir=tmp_path, handler="echo.handler", routes=(
        Route("POST", "/private/{name}", logical_id, authorizer="AWS_IAM"),
        Route("GET", "/public", logical_id, authorizer="NONE"),
    ))
    front = LocalFront({logical_id: fn}, enforce_iam=True, credentials={KEY: SECRET}, region=REGION)
    front.start()
    yield front
    front.stop()


def test_a_signed_request_carries_the_caller_identity(echo_front):
    answer = httpx.post(f"{echo_front.url}/private/a%20b?x=1&x=2", content=b"\x00\x01binary", auth=signer(),
                        headers={"content-type": "application/octet-stream", "Idempotency-Key": "echo"}, timeout=10)
    assert answer.status_code == 200, answer.text
    iam = answer.json()["authorizer"]["iam"]
    assert iam["accessKey"] == KEY and iam["accountId"] == answer.json()["accountId"]
    assert iam["userArn"] == f"arn:aws:iam::{iam['accountId']}:user/{KEY}"
    assert iam["userId"].startswith("AIDA") and iam["callerId"] == iam["userId"]
    public = httpx.get(f"{echo_front.url}/public", timeout=10)
    assert public.status_code == 200 and "authorizer" not in public.json()
    assert httpx.post(f"{echo_front.url}/private/x", timeout=10).json() == FORBIDDEN


def test_a_signed_content_hash_must_be_the_body_s():
    from email.message import Message

    request = httpx.Request("POST", "http://127.0.0.1:3000/v1/jobs", content=b"{}",
                            headers={"content-type": "application/json"})
    signer().sign(request)
    headers = Message()
    for name, value in request.headers.items():
        headers[name] = value
    identity = verify_sigv4("POST", "/v1/jobs", headers, b"{}", credentials={KEY: SECRET}, region=REGION)
    assert identity["accessKey"] == KEY
    with pytest.raises(Exception, match="x-amz-content-sha256"):
        verify_sigv4("POST", "/v1/jobs", headers, b"{ }", credentials={KEY: SECRET}, region=REGION)
    with pytest.raises(Exception, match="not yet current"):
        verify_sigv4("POST", "/v1/jobs", headers, b"{}", credentials={KEY: SECRET}, region=REGION,
                     now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))


def test_authorizers_the_front_cannot_check_are_not_left_open(tmp_path):
    fn = FunctionDef(logical_id="JwtFunction", code_dir=tmp_path, handler="app.handler",
                     routes=(Route("GET", "/x", "JwtFunction", authorizer="MyJwtAuthorizer"),))
    with pytest.raises(NotImplementedError, match="MyJwtAuthorizer"):
        LocalFront({"JwtFunction": fn}, enforce_iam=True, credentials={KEY: SECRET})
