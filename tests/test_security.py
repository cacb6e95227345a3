"""Security checks: checkov over the template, and no secret ever reaching a log line.

checkov
    checkov lives in its own virtualenv (``make test`` creates ``.tools/checkov`` and passes
    its path in ``$CHECKOV``): its pins conflict with ours. It cannot read ``template.yaml``
    as it stands: checkov applies SAM ``Globals`` with a deep merge, so PollerFunction's
    ``CALLBACK_BASE_URL: !If [...]`` merged with the global ``!Ref CallbackBaseUrl`` becomes
    ``{"Fn::If": ..., "Ref": ...}``; its parameter-default pass then replaces the ``Ref`` key's
    parent with the default string and crashes walking into the ``Fn::If`` beneath it
    (``context_parser.evaluate_default_refs``: "string indices must be integers"). So it is
    given the template twice, as JSON:

    - the SAM form with Globals merged by SAM's own code (``AWS::Serverless::*`` resources);
    - the CloudFormation that ``aws-sam-translator`` makes of it: every real role, policy,
      function, permission, stage and event source mapping.

    Suppressions live in ``template.yaml``, in each resource's ``Metadata.checkov.skip``, with
    a ``comment`` giving the reason. SAM drops a function's Metadata when it transforms it, so
    the test copies each resource's ``Metadata.checkov`` onto the resource of the same logical
    id in the transformed template. A third copy, the transformed template without any
    suppression, must fail exactly the suppressed checks: a suppression nothing needs any
    more, or a scan that finds nothing, fails the test.

secrets in logs
    Real flows through the local stack with Powertools at DEBUG and metrics on: everything
    written to stdout/stderr and every logging record is searched for the provider keys, the
    webhook secret, the callback token key and every job's callback token.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from reelhook_local.aws_resources import load_template
from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import PROVIDERS, LocalStack, StackOptions
from tests.integration.notify_support import Receiver
from tests.template_tools import ROOT, TEMPLATE_PATH, apply_globals, sam_transform

CHECKOV_DEFAULT = ROOT / ".tools" / "checkov" / "bin" / "checkov"
SAM_FILE = "template.sam.json"
CFN_FILE = "template.cfn.json"
UNSUPPRESSED_FILE = "template.cfn.unsuppressed.json"
# Offline and quick: no policy download or mapping from Prisma Cloud, no PyPI version check.
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "LOG_LEVEL": "WARNING"}
CHECKOV_DROPPED_ENV = ("BC_API_KEY", "BC_API_URL", "PRISMA_API_URL", "CKV_API_KEY")
CHECKOV_TIMEOUT_SECONDS = 300


# ---------------------------------------------------------------------------- checkov


def checkov_executable() -> str:
    path = os.environ.get("CHECKOV") or str(CHECKOV_DEFAULT)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"checkov not found at {path}: run `make test`, which installs it in .tools/checkov "
            "(its own virtualenv) and passes its path in $CHECKOV",
            pytrace=False,
        )
    return path


def suppressions(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(logical id, check id) -> comment, for every ``Metadata.checkov.skip`` entry."""
    found: dict[tuple[str, str], str] = {}
    for name, resource in template["Resources"].items():
        for entry in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            found[(name, entry["id"])] = entry.get("comment", "")
    return found


def with_checkov_metadata(sam: dict[str, Any], transformed: dict[str, Any]) -> dict[str, Any]:
    """``transformed`` with each SAM resource's ``Metadata.checkov`` on the resource of the same id."""
    out = copy.deepcopy(transformed)
    for name, resource in sam["Resources"].items():
        checkov = resource.get("Metadata", {}).get("checkov")
        if checkov is None:
            continue
        assert name in out["Resources"], f"{name} carries checkov suppressions but is not in the transformed template"
        out["Resources"][name].setdefault("Metadata", {})["checkov"] = copy.deepcopy(checkov)
    return out


def without_checkov_metadata(template: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(template)
    for resource in out["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    return out


def run_checkov(directory: Path, files: list[str]) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if k not in CHECKOV_DROPPED_ENV} | CHECKOV_ENV
    command = [checkov_executable(), "--framework", "cloudformation", "--skip-download", "-o", "json", "--compact"]
    for name in files:
        command += ["-f", name]
    try:
        done = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True,  # noqa: S603
                              timeout=CHECKOV_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"checkov took more than {CHECKOV_TIMEOUT_SECONDS} s (trying to reach the network?)")
    # Exit status 1 means "some check failed": the JSON says which.
    assert done.returncode in (0, 1), f"checkov exited with {done.returncode}:\n{done.stderr[-4000:]}"
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov did not answer JSON:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    reports = report if isinstance(report, list) else [report]
    assert [r["check_type"] for r in reports] == ["cloudformation"], done.stderr[-4000:]
    return reports


def findings(reports: list[dict[str, Any]], kind: str) -> dict[str, set[tuple[str, str]]]:
    """File name -> {(logical id, check id)} for ``kind`` ("failed_checks", "skipped_checks", ...)."""
    out: dict[str, set[tuple[str, str]]] = {}
    for report in reports:
        for check in report["results"][kind]:
            name = check["resource"].split(".", 1)[1]
            out.setdefault(Path(check["file_path"]).name, set()).add((name, check["check_id"]))
    return out


def describe(reports: list[dict[str, Any]], kind: str) -> str:
    return "\n".join(
        f"{Path(c['file_path']).name}: {c['check_id']} {c['resource']}: {c['check_name']}"
        for r in reports for c in r["results"][kind]
    )


@pytest.fixture(scope="module")
def sam_template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def checkov_reports(tmp_path_factory: pytest.TempPathFactory,
                    sam_template: dict[str, Any]) -> list[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("checkov")
    transformed = with_checkov_metadata(sam_template, sam_transform(sam_template))
    forms = {
        SAM_FILE: apply_globals(sam_template),
        CFN_FILE: transformed,
        UNSUPPRESSED_FILE: without_checkov_metadata(transformed),
    }
    for name, form in forms.items():
        (directory / name).write_text(json.dumps(form, indent=1))
    return run_checkov(directory, list(forms))


def test_checkov_finds_nothing_unsuppressed(checkov_reports: list[dict[str, Any]]) -> None:
    failed = findings(checkov_reports, "failed_checks")
    failed.pop(UNSUPPRESSED_FILE, None)
    assert not failed, "checkov failed checks (fix them, or suppress with a reason in template.yaml):\n" + "\n".join(
        line for line in describe(checkov_reports, "failed_checks").splitlines()
        if not line.startswith(UNSUPPRESSED_FILE)
    )


def test_checkov_read_every_form_completely(checkov_reports: list[dict[str, Any]],
                                            sam_template: dict[str, Any]) -> None:
    (report,) = checkov_reports
    assert report["summary"]["parsing_errors"] == 0
    passed = findings(checkov_reports, "passed_checks")
    assert set(passed) == {SAM_FILE, CFN_FILE, UNSUPPRESSED_FILE}
    # The transformed form holds what SAM generates: roles, permissions, the API stage.
    generated = {name for name, _check in passed[CFN_FILE]} - set(sam_template["Resources"])
    assert {"ApiFunctionRole", "HttpApiApiGatewayDefaultStage", "InboxFunctionRole"} <= generated


def test_every_suppression_has_a_reason(sam_template: dict[str, Any]) -> None:
    found = suppressions(sam_template)
    assert found, "no checkov suppressions found: has Metadata.checkov moved?"
    for (name, check), comment in found.items():
        assert len(comment.split()) >= 5, f"{name} suppresses {check} without a real reason: {comment!r}"


def test_suppressions_apply_to_both_forms(checkov_reports: list[dict[str, Any]],
                                          sam_template: dict[str, Any]) -> None:
    declared = set(suppressions(sam_template))
    skipped = findings(checkov_reports, "skipped_checks")
    assert skipped.get(CFN_FILE, set()) == declared
    assert skipped.get(SAM_FILE, set()) == declared
    assert UNSUPPRESSED_FILE not in skipped


def test_every_suppression_is_still_needed(checkov_reports: list[dict[str, Any]],
                                           sam_template: dict[str, Any]) -> None:
    """Without its suppressions the template fails exactly the suppressed checks: none is stale,
    and the scan does find things (it is not silently checking nothing)."""
    failed = findings(checkov_reports, "failed_checks").get(UNSUPPRESSED_FILE, set())
    declared = set(suppressions(sam_template))
    assert declared - failed == set(), "suppressions for checks that now pass: remove them from template.yaml"
    assert failed == declared


# ---------------------------------------------------------------------------- secrets in logs

IMG = "https://example.com/ref.png"
# Records of the test doubles: the sandbox plays the providers (it knows their keys and sends
# webhooks to the callback URLs, with httpx, from its own threads) and moto plays AWS (it
# holds the secret). Only what reelhook and the libraries it calls log is searched.
DOUBLE_LOGGERS = ("reelhook_local.sandbox", "moto", "werkzeug")
DOUBLE_THREADS = ("sandbox-",)


def wait(api: httpx.Client, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed"}:
            return job
        time.sleep(0.1)
    raise TimeoutError(f"{job_id} still {job.get('status')}")


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could print from ``record``: message, arguments, extras, traceback."""
    parts = [record.name, record.levelname, record.getMessage(), repr(vars(record))]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


def bind_powertools_to_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the functions' Powertools handler at the current ``sys.stdout``.

    Powertools binds its handler to the ``sys.stdout`` of the moment the first function
    module is imported, which in a pytest session is some earlier capture; call this from
    the test body, where ``sys.stdout`` is capfd's.
    """
    from reelhook_local.front import load_handler
    from reelhook_local.template import functions

    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "reelhook")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "reelhook")
    for fn in functions().values():
        load_handler(fn)
    handlers = [h for h in logging.getLogger("reelhook").handlers if isinstance(h, logging.StreamHandler)]
    assert handlers, "the functions' Powertools logger has no stream handler"
    for handler in handlers:
        monkeypatch.setattr(handler, "stream", sys.stdout)


def test_no_secret_reaches_the_logs(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
                                    caplog: pytest.LogCaptureFixture) -> None:
    bind_powertools_to_stdout(monkeypatch)
    # Only the sandbox, with fresh and unmistakable secrets.
    for provider in PROVIDERS:
        for suffix in ("BASE_URL", "API_KEY", "WEBHOOK_SECRET"):
            monkeypatch.delenv(f"{provider.upper()}_{suffix}", raising=False)
    sandbox = SandboxConfig(
        step_seconds=0.1,
        freepik_api_key=f"fpk-{secrets.token_hex(12)}",
        uniall_api_key=f"uak-{secrets.token_hex(12)}",
        aihubmax_api_key=f"ahk-{secrets.token_hex(12)}",
        freepik_webhook_secret=f"whs-{secrets.token_hex(12)}",
        aihubmax_early_completed=True,
    )
    # The reconciler waits long enough for Freepik jobs to be carried by their webhooks alone.
    options = StackOptions(sandbox=sandbox, schedule_seconds=0.3, reconcile_after_seconds=60,
                           extra_env={"POWERTOOLS_LOG_LEVEL": "DEBUG", "POWERTOOLS_METRICS_DISABLED": "false"})
    # Libraries (httpx, botocore, ...) at INFO, as a Lambda whose root logger is at INFO would
    # log; reelhook's own loggers at DEBUG whatever level they were created with.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="reelhook")
    canary = f"canary-{secrets.token_hex(12)}"
    jobs: dict[str, dict[str, Any]] = {}

    with LocalStack(options) as stack, httpx.Client(base_url=stack.api_url, timeout=10) as api:
        faults = stack.sandbox.config.faults

        def run(name: str, body: dict[str, Any]) -> dict[str, Any]:
            answer = api.post("/v1/jobs", json=body)
            assert answer.status_code == 202, answer.text
            jobs[name] = wait(api, answer.json()["id"])
            return jobs[name]

        ok = run("freepik", {"model": "freepik/veo-3-1-reference-to-video", "prompt": "walk",
                             "reference_images": [IMG]})
        assert ok["status"] == "succeeded" and "webhook" in {e["source"] for e in ok["events"]}, ok
        deliveries = stack.sandbox.tasks[ok["provider_task_id"]].deliveries
        assert deliveries and {d.response_status for d in deliveries} == {200}, deliveries

        faults.fail_next_submit_with = 401
        refused = run("freepik_401", {"model": "freepik/veo-3-1-reference-to-video", "prompt": "walk",
                                      "reference_images": [IMG]})
        assert refused["status"] == "failed", refused

        faults.forged_kinds = ("bad_signature",)
        faults.forged_rate = 1.0
        forged_job = run("freepik_forged", {"model": "freepik/veo-3-1-reference-to-video", "prompt": "walk",
                                            "reference_images": [IMG]})
        assert stack.sandbox.wait_for_webhooks()
        faults.forged_rate = 0.0
        forged = stack.sandbox.forged_deliveries
        assert forged and {f.response_status for f in forged} == {401}, forged
        assert forged_job["status"] == "succeeded", forged_job

        polled = run("uniall", {"model": "uniall/veo3.1-video-720p", "prompt": "a quiet lake"})
        assert polled["status"] == "succeeded" and "poll" in {e["source"] for e in polled["events"]}, polled

        hub = run("aihubmax", {"model": "aihubmax/veo-3.1-reference-to-video", "prompt": "wave",
                               "reference_images": [IMG]})
        assert hub["status"] == "succeeded", hub

        # A signed notification goes out (the notify signing key must not be logged either).
        with Receiver() as receiver:
            notified = run("notified", {"model": "uniall/veo3.1-video-720p", "prompt": "a quiet lake",
                                        "notify_url": receiver.url})
            assert notified["status"] == "succeeded", notified
            deadline = time.monotonic() + 30
            while not receiver.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(receiver.requests) == 1

        # What must never be logged: every value of the deployment secret ...
        assert stack.resources is not None
        secret = json.loads(stack.client("secretsmanager").get_secret_value(
            SecretId=stack.resources.secret_id)["SecretString"])
        forbidden = {f"secret {name}": value for name, value in secret.items()}
        assert set(secret) == {"freepik_api_key", "freepik_webhook_secret", "uniall_api_key", "aihubmax_api_key",
                               "callback_token_key"}
        assert secret["freepik_api_key"] == sandbox.freepik_api_key
        # ... and every job's callback token, as computed and as the providers received it.
        from reelhook.adapters.notify_secret import whsec
        from reelhook.webhook_auth import job_token

        key = secret["callback_token_key"].encode()
        for job in jobs.values():
            provider = job["model"].split("/")[0]
            forbidden[f"callback token of {job['id']}"] = job_token(key, provider, job["id"])
        notify = json.loads(stack.client("secretsmanager").get_secret_value(
            SecretId=stack.resources.notify_secret_id)["SecretString"])
        forbidden["notify signing_key"] = notify["signing_key"]
        forbidden["notify whsec"] = whsec(notify["signing_key"].encode())
        received = {parse_qs(urlsplit(task.webhook_url).query)["token"][0]
                    for task in stack.sandbox.tasks.values() if task.webhook_url}
        assert len(received) >= 3 and received <= set(forbidden.values()), received

        # The capture works: a line logged like the handlers' is found.
        logging.getLogger("reelhook").info("capture check", extra={"value": canary})
    out, err = capfd.readouterr()
    records = "\n".join(record_text(r) for r in caplog.records
                        if not r.name.startswith(DOUBLE_LOGGERS) and not r.threadName.startswith(DOUBLE_THREADS))
    captured = {"stdout/stderr": out + err, "log records": records}

    for where, text in captured.items():
        assert canary in text, f"the {where} capture misses lines logged through the functions' logger"
    # The handlers' own lines are in there: job ids, webhook verdicts and metrics.
    for job in jobs.values():
        if job["status"] == "succeeded":  # the callback and transfer functions log job ids
            assert job["id"] in out, f"no handler logged anything about {job['id']}"
    assert '"status_code":401' in out.replace(" ", "") and "WebhooksRejected" in out

    leaks = [f"{label} in {where}" for label, value in forbidden.items() for where, text in captured.items()
             if value and value in text]
    assert not leaks, "secrets logged: " + ", ".join(leaks)
