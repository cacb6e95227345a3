"""The ``reelhook`` CLI against the local stack (real HTTP all the way), plus its SigV4 signing."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from botocore.credentials import Credentials
from click.testing import CliRunner, Result

from reelhook_cli.main import build_job, cli, parse_option
from reelhook_client.auth import SigV4Auth, default_auth_mode, region_from_url
from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LocalStack, StackOptions

pytestmark = pytest.mark.e2e
VEO = "freepik/veo-3-1-reference-to-video"
IMG = "https://example.com/ref.png"
JOB_ID = re.compile(r"^job_[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def stack():
    with LocalStack(StackOptions(sandbox=SandboxConfig(step_seconds=0.1))) as running:
        yield running


@pytest.fixture
def run(stack):
    runner = CliRunner()

    def invoke(*args: str, **env: str) -> Result:
        return runner.invoke(cli, list(args), env={"REELHOOK_API_URL": stack.api_url, "COLUMNS": "200"} | env,
                             catch_exceptions=False)

    return invoke


def job_json(run, job_id: str) -> dict[str, Any]:
    result = run("status", job_id, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def expected_sha256(stack, task_id: str) -> str:
    sha256_for = getattr(stack.sandbox, "sha256_for", None)
    return sha256_for(task_id) if sha256_for is not None else stack.sandbox.served_sha256


def test_models_lists_the_catalogue(run):
    table = run("models")
    assert table.exit_code == 0, table.output
    assert VEO in table.stdout and "webhook+poll" in table.stdout and "reference: 1-3 images" in table.stdout
    narrow = run("models", COLUMNS="80")  # one block per model instead of a table
    assert narrow.exit_code == 0 and VEO in narrow.stdout and "status via" in narrow.stdout
    raw = run("models", "--json")
    assert raw.exit_code == 0
    assert VEO in {m["id"] for m in json.loads(raw.stdout)["models"]}


def test_submit_wait_status_download(run, stack, tmp_path):
    submitted = run("submit", "--model", VEO, "--prompt", "a walk through a neon city", "--image", IMG,
                    "--resolution", "1080p", "--aspect-ratio", "16:9", "--audio", "--seed", "7",
                    "--negative-prompt", "blur", "--client-reference", "cli-test",
                    "--idempotency-key", "cli-test-1")
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.strip()
    assert JOB_ID.match(job_id), submitted.stdout
    # The same key and body give the same job.
    again = run("submit", "--model", VEO, "--prompt", "a walk through a neon city", "--image", IMG,
                "--resolution", "1080p", "--aspect-ratio", "16:9", "--audio", "--seed", "7",
                "--negative-prompt", "blur", "--client-reference", "cli-test",
                "--idempotency-key", "cli-test-1", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["id"] == job_id

    waited = run("wait", job_id, "--interval", "0.2", "--timeout", "60")
    assert waited.exit_code == 0, waited.output
    assert "succeeded" in waited.stdout and f"reelhook download {job_id}" in waited.stdout
    assert "submitted via submit" in waited.stderr and "storing via webhook" in waited.stderr  # shown as they came

    job = job_json(run, job_id)
    assert job["status"] == "succeeded" and job["client_reference"] == "cli-test"
    [output] = job["outputs"]
    shown = run("status", job_id)
    assert shown.exit_code == 0 and "succeeded" in shown.stdout and job["provider_task_id"] in shown.stdout

    target = tmp_path / "video.mp4"
    fetched = run("download", job_id, "-o", str(target))
    assert fetched.exit_code == 0, fetched.output
    data = target.read_bytes()
    assert hashlib.sha256(data).hexdigest() == output["sha256"] == expected_sha256(stack, job["provider_task_id"])
    assert len(data) == output["bytes"] and "verified" in fetched.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["video.mp4"]  # no partial file left behind

    beyond = run("download", job_id, "--index", "1", "-o", str(tmp_path / "other.mp4"))
    assert beyond.exit_code == 2 and "--index" in beyond.stderr


def test_download_refuses_a_file_that_does_not_match(run, stack, tmp_path, monkeypatch):
    submitted = run("submit", "--model", VEO, "--prompt", "tamper", "--image", IMG, "--wait", "--interval", "0.2")
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.splitlines()[0]
    real_request = httpx.Client.request

    def wrong_sha(self: httpx.Client, method: str, url: Any, **kwargs: Any) -> httpx.Response:
        response = real_request(self, method, url, **kwargs)
        if method != "GET" or "/v1/jobs/" not in str(url):
            return response
        body = response.json()
        for output in body.get("outputs", []):
            output["sha256"] = "0" * 64
        return httpx.Response(response.status_code, json=body, request=response.request)

    monkeypatch.setattr(httpx.Client, "request", wrong_sha)
    target = tmp_path / "video.mp4"
    result = run("download", job_id, "-o", str(target))
    assert result.exit_code == 5, result.output
    assert "SHA-256" in result.stderr and not target.exists() and list(tmp_path.iterdir()) == []


def test_submit_from_a_file_with_flags_on_top(run, tmp_path):
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({"model": VEO, "prompt": "from a file", "reference_images": [IMG],
                                    "aspect_ratio": "1:1", "client_reference": "file"}))
    # The file's aspect ratio is wrong for Veo; the flag overrides it.
    result = run("submit", "--file", str(job_file), "--aspect-ratio", "9:16", "--json")
    assert result.exit_code == 0, result.output
    job = json.loads(result.stdout)
    assert job["model"] == VEO and job["client_reference"] == "file" and job["status"] in {"queued", "submitted"}
    waited = run("wait", job["id"], "--interval", "0.2", "--json")
    assert waited.exit_code == 0 and json.loads(waited.stdout)["status"] == "succeeded"


def test_a_job_the_model_does_not_accept_names_the_field(run):
    result = run("submit", "--model", VEO, "--prompt", "square", "--image", IMG, "--aspect-ratio", "1:1")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "aspect_ratio" in result.stderr and "16:9" in result.stderr and "validation_error" in result.stderr
    assert "Traceback" not in result.output


def test_a_failed_job_makes_wait_exit_1_with_the_reason(run):
    submitted = run("submit", "--model", VEO, "--prompt", "please FAIL_ME", "--image", IMG)
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.strip()
    result = run("wait", job_id, "--interval", "0.2", "--timeout", "60")
    assert result.exit_code == 1, result.output
    assert f"job {job_id} failed: provider_failed" in result.stderr
    also = run("submit", "--model", VEO, "--prompt", "FAIL_ME again", "--image", IMG, "--wait", "--interval", "0.2")
    assert also.exit_code == 1 and "provider_failed" in also.stderr


def test_unknown_job_and_wait_timeout(run):
    missing = run("status", "job_" + "0" * 32)
    assert missing.exit_code == 1 and "no job" in missing.stderr
    submitted = run("submit", "--model", VEO, "--prompt", "slow", "--image", IMG)
    timed_out = run("wait", submitted.stdout.strip(), "--timeout", "0.1", "--interval", "0.1")
    assert timed_out.exit_code == 4 and "gave up waiting" in timed_out.stderr


def test_a_failover_and_the_providers_as_the_cli_shows_them(run, stack):
    stack.sandbox.config.faults.fail_submits_for["freepik"] = [402]  # Freepik out of credit, once
    done = run("submit", "--model", "veo-3.1/reference-to-video", "--prompt", "a fox in the snow", "--image", IMG,
               "--wait", "--interval", "0.2", "--timeout", "60")
    assert done.exit_code == 0, done.output
    # The stack runs in this process: its functions' log lines may share the captured stdout.
    lines = [line for line in done.stdout.splitlines() if not line.startswith("{")]
    [job_id] = [line for line in lines if JOB_ID.match(line)]
    served = "served by aihubmax aihubmax/veo-3.1-reference-to-video"
    assert served in lines
    rows = [line.split("│") for line in lines if "│" in line]
    attempts = [[cell.strip() for cell in row] for row in rows if len(row) == 4]
    assert [(a[0], a[1], a[2]) for a in attempts] == [("freepik", VEO, "rejected"),
                                                      ("aihubmax", "aihubmax/veo-3.1-reference-to-video", "succeeded")]
    assert "402" in attempts[0][3]
    skipped = [[cell.strip() for cell in row] for row in rows if len(row) == 3]
    assert {row[0] for row in skipped} == {"uniall"} and all("reference_images" in row[2] for row in skipped)
    shown = run("status", job_id)
    assert shown.exit_code == 0, shown.output
    assert "aihubmax aihubmax/veo-3.1-reference-to-video" in shown.stdout and "routes skipped" in shown.stdout
    assert "402" in shown.stdout

    table = run("providers")
    assert table.exit_code == 0, table.output
    providers = {line.split()[0]: line for line in table.stdout.splitlines()
                 if line.split() and line.split()[0] in {"freepik", "aihubmax", "uniall"}}
    assert set(providers) == {"freepik", "aihubmax", "uniall"}, table.stdout
    assert "failure" in providers["freepik"] and "(no cap)" in providers["freepik"]  # the 402 counted
    assert "unlimited" in providers["uniall"]
    raw = json.loads(run("providers", "--json").stdout)
    assert {p["name"] for p in raw["providers"]} == set(providers)
    assert next(p for p in raw["providers"] if p["name"] == "freepik")["circuit"]["consecutive_failures"] >= 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_api_gives_a_clean_message():
    url = f"http://127.0.0.1:{closed_port()}"
    result = CliRunner().invoke(cli, ["--api-url", url, "models"], catch_exceptions=False)
    assert result.exit_code == 3
    assert f"not reachable at {url}" in result.stderr and "make serve" in result.stderr
    assert "Traceback" not in result.output


def test_jwt_needs_a_token():
    result = CliRunner().invoke(cli, ["--auth", "jwt", "models"], env={"REELHOOK_TOKEN": ""})
    assert result.exit_code == 2 and "token" in result.stderr


# -- no stack needed -----------------------------------------------------------------------------


def test_options_and_file_merge():
    assert parse_option("enhance_prompt=true") == ("enhance_prompt", True)
    assert parse_option("safety_level=2") == ("safety_level", 2)
    assert parse_option("cfg_scale=0.5") == ("cfg_scale", 0.5)
    assert parse_option("person_generation=allow_adult") == ("person_generation", "allow_adult")
    assert parse_option('label="007"') == ("label", "007")
    assert parse_option("x=nan") == ("x", "nan")
    base = {"model": "m", "prompt": "p", "reference_images": ["a"], "options": {"a": 1, "b": 2}}
    job = build_job(base, fields={"prompt": "q", "seed": None}, images=(), videos=('{"url": "v", "voice_url": "w"}',),
                    options=("b=3", "c=false"))
    assert job == {"model": "m", "prompt": "q", "reference_images": ["a"],
                   "reference_videos": [{"url": "v", "voice_url": "w"}], "options": {"a": 1, "b": 3, "c": False}}


def test_auth_mode_and_region_follow_the_url():
    aws = "https://abc123defg.execute-api.eu-west-1.amazonaws.com"
    assert default_auth_mode(aws) == "iam" and region_from_url(aws) == "eu-west-1"
    assert default_auth_mode("http://127.0.0.1:3000") == "none" and region_from_url("http://127.0.0.1:3000") is None


def reference_sigv4(request: httpx.Request, *, key: str, secret: str, region: str, stamp: str) -> str:
    """SigV4 written out from the AWS documentation, to check the botocore-based signer against."""
    signed = [name.strip() for name in
              request.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")]
    url = urlsplit(str(request.url))
    query = "&".join(sorted(url.query.split("&"))) if url.query else ""
    canonical = "\n".join([
        request.method, url.path or "/", query,
        "".join(f"{name}:{request.headers[name].strip()}\n" for name in signed),
        ";".join(signed), hashlib.sha256(request.content).hexdigest(),
    ])
    scope = f"{stamp[:8]}/{region}/execute-api/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signing_key = f"AWS4{secret}".encode()
    for part in (stamp[:8], region, "execute-api", "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    return hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()


def signed(body: dict[str, Any], monkeypatch, token: str | None = None) -> httpx.Request:
    import botocore.auth

    fixed = dt.datetime(2025, 3, 14, 15, 9, 26)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: fixed)
    auth = SigV4Auth("eu-west-1", Credentials("AKID", "SECRET", token))
    request = httpx.Request("POST", "https://abc123defg.execute-api.eu-west-1.amazonaws.com/v1/jobs?b=2&a=1",
                            json=body, headers={"Idempotency-Key": "k1", "user-agent": "reelhook-cli/test"})
    flow = auth.sync_auth_flow(request)
    return next(flow)


def test_sigv4_signs_the_request_and_its_body(monkeypatch):
    body = {"model": VEO, "prompt": "hello"}
    request = signed(body, monkeypatch)
    authorization = request.headers["authorization"]
    match = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=AKID/20250314/eu-west-1/execute-api/aws4_request, "
                         r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", authorization)
    assert match, authorization
    headers = match[1].split(";")
    assert {"host", "x-amz-date", "x-amz-content-sha256", "content-type", "idempotency-key"} <= set(headers)
    assert "user-agent" not in headers and "connection" not in headers
    assert request.headers["x-amz-date"] == "20250314T150926Z"
    assert request.headers["x-amz-content-sha256"] == hashlib.sha256(request.content).hexdigest()
    assert match[2] == reference_sigv4(request, key="AKID", secret="SECRET", region="eu-west-1",
                                       stamp="20250314T150926Z")
    # Another body, another signature.
    other = signed(body | {"prompt": "hello!"}, monkeypatch)
    assert other.headers["authorization"] != authorization
    # Temporary credentials carry their session token, which is signed too.
    with_token = signed(body, monkeypatch, token="SESSION")
    assert with_token.headers["x-amz-security-token"] == "SESSION"
    assert "x-amz-security-token" in with_token.headers["authorization"]


def test_a_refused_signature_says_authentication_failed(monkeypatch):
    def forbidden(self: httpx.Client, method: str, url: Any, **kwargs: Any) -> httpx.Response:
        return httpx.Response(403, json={"message": "Forbidden"}, request=httpx.Request(method, "http://x" + str(url)))

    monkeypatch.setattr(httpx.Client, "request", forbidden)
    result = CliRunner().invoke(cli, ["--api-url", "http://127.0.0.1:9", "status", "job_" + "0" * 32])
    assert result.exit_code == 3 and "authentication failed (HTTP 403" in result.stderr and "Forbidden" in result.stderr
    assert "Traceback" not in result.output


def _third_party_imports(package: Path, pattern: str = "*.py", skip: tuple[str, ...] = ()) -> set[str]:
    import ast
    import sys

    imported: set[str] = set()
    for source in package.glob(pattern):
        if source.name in skip:
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    return {name for name in imported if name not in sys.stdlib_module_names and not name.startswith("reelhook")}


def test_the_client_and_cli_need_only_their_packages_dependencies():
    """`pip install ./clients/python` gives a working client, `[cli]` a working `reelhook`: every
    package either imports is a dependency of reelhook-client (or of the extra it needs), never
    something only the server project brings."""
    import importlib.metadata
    import re
    import tomllib

    client_root = Path(__file__).resolve().parents[2] / "clients" / "python"
    project = tomllib.loads((client_root / "pyproject.toml").read_text())["project"]

    def names(specs: list[str]) -> set[str]:
        return {re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0].lower() for spec in specs}

    base = names(project["dependencies"])
    extras = {extra: names(specs) for extra, specs in project["optional-dependencies"].items()}
    distributions = importlib.metadata.packages_distributions()

    def owners(name: str) -> set[str]:
        return {d.lower() for d in distributions.get(name, [name])}

    client = _third_party_imports(client_root / "src" / "reelhook_client")
    cli_imports = _third_party_imports(client_root / "src" / "reelhook_cli", skip=("doctor.py",))
    # `reelhook doctor` alone needs more (boto3, and the reelhook package it names when missing).
    doctor_imports = _third_party_imports(client_root / "src" / "reelhook_cli", "doctor.py")
    assert {"httpx", "pydantic"} <= client and {"click", "rich"} <= cli_imports, "then this test checks nothing"
    for name in sorted(client):
        # botocore only for IAM auth, imported when it is asked for: the [iam] extra.
        allowed = base | (extras["iam"] if name == "botocore" else set())
        assert owners(name) & allowed, f"reelhook_client imports {name}, which is not in its dependencies"
    for name in sorted(cli_imports):
        assert owners(name) & (base | extras["cli"]), f"reelhook_cli imports {name}, not in reelhook-client[cli]"
    assert {"boto3", "urllib3"} <= doctor_imports, "then the doctor's part checks nothing"
    for name in sorted(doctor_imports):
        assert owners(name) & (base | extras["cli"] | extras["doctor"]), \
            f"reelhook_cli/doctor.py imports {name}, not in reelhook-client[cli,doctor]"
    assert extras["iam"] <= extras["cli"], "the CLI signs requests: [cli] must bring what [iam] does"


def test_under_json_errors_are_json_too(run):
    result = run("submit", "--model", VEO, "--prompt", "x", "--image", IMG, "--duration", "5", "--json")
    assert result.exit_code == 1
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "validation_error" and error["http_status"] == 422
    assert {f["field"] for f in error["fields"]} == {"duration"}
    # Without --json, in the same process, the message is text again.
    plain = run("submit", "--model", VEO, "--prompt", "x", "--image", IMG, "--duration", "5")
    assert plain.stderr.startswith("Error: ")


def test_submit_sends_the_notify_url(run, stack):
    result = run("submit", "--model", VEO, "--prompt", "x", "--image", IMG,
                 "--notify-url", "https://hooks.example.com/reelhook", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["notify_url"] == "https://hooks.example.com/reelhook"


def test_a_range_is_printed_as_its_bounds_not_its_key_names():
    from reelhook_cli.errors import field_lines

    [line] = field_lines([{"field": "reference_images", "message": "must hold 1 to 3 items, got 0",
                           "allowed": {"min": 1, "max": 3}}])
    assert line.endswith("(allowed: min 1, max 3)")
    assert "min, max" not in line


def test_the_readmes_shell_completion_line_produces_a_completion_script():
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assert '_REELHOOK_COMPLETE=bash_source .venv/bin/reelhook' in (root / "README.md").read_text()
    executable = root / ".venv" / "bin" / "reelhook"
    script = subprocess.run([str(executable)], env={**os.environ, "_REELHOOK_COMPLETE": "bash_source"},  # noqa: S603
                            capture_output=True, text=True, timeout=60, check=True).stdout
    assert "complete " in script and "_reelhook_completion" in script
