"""2. Webhook cost: AWS calls per webhook, counted with botocore event hooks, and handler latency.

AWS is moto's in-process ``mock_aws`` with the template's resources (as tests/conftest.py sets
it up); jobs are created through the real api handler against the provider sandbox, then signed
Freepik webhooks go straight into the real callback handler. Every AWS call is seen by the
``before-call`` hook that :class:`bench.common.AwsCalls` puts on each botocore session.

Latency "excluding AWS" is measured, not stubbed: the time moto spends answering each request
(timed around moto's ``before-send`` stubber, i.e. what AWS itself would do) is subtracted from
the handler's wall time. A second figure also subtracts botocore's client-side work (the whole
``before-call``→``after-call`` span of every call), leaving reelhook's and Powertools' own code.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets as pysecrets
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.common import AwsCalls, MotoTimer, percentile, progress, rnd, silence_powertools, table, verdict

NAME = "webhook"
VEO = {"model": "freepik/veo-3-1-reference-to-video", "prompt": "a cat on a skateboard",
       "reference_images": ["https://example.com/cat.png"], "resolution": "720p"}
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


class Context:
    function_name = "callback"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:callback"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@contextlib.contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def api_event(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "2.0", "routeKey": "POST /v1/jobs", "rawPath": "/v1/jobs", "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
                           "http": {"method": "POST", "path": "/v1/jobs", "protocol": "HTTP/1.1",
                                    "sourceIp": "203.0.113.9", "userAgent": "bench"},
                           "requestId": "r1", "routeKey": "POST /v1/jobs", "stage": "$default",
                           "time": "22/Nov/2026:00:00:00 +0000", "timeEpoch": 0},
        "body": json.dumps(body), "isBase64Encoded": False,
    }


def webhook_event(webhook_url: str, body: dict[str, Any], secret: str, msg_id: str | None = None) -> dict[str, Any]:
    """A signed Freepik webhook as API Gateway hands it to the callback function."""
    hook = urlsplit(webhook_url)
    provider, job_id = hook.path.split("/")[-2:]
    raw = json.dumps(body).encode()
    msg_id, ts = msg_id or f"msg_{uuid.uuid4().hex}", int(time.time())
    mac = hmac.new(secret.encode(), f"{msg_id}.{ts}.".encode() + raw, hashlib.sha256).digest()
    token = parse_qs(hook.query)["token"][0]
    return {
        "version": "2.0", "routeKey": "POST /v1/callbacks/{provider}/{job_id}", "rawPath": hook.path,
        "rawQueryString": hook.query,
        "headers": {"content-type": "application/json", "host": "api.example.com", "webhook-id": msg_id,
                    "webhook-timestamp": str(ts), "webhook-signature": "v1," + base64.b64encode(mac).decode()},
        "queryStringParameters": {"token": token},
        "pathParameters": {"provider": provider, "job_id": job_id},
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
                           "http": {"method": "POST", "path": hook.path, "protocol": "HTTP/1.1",
                                    "sourceIp": "203.0.113.9", "userAgent": "freepik"},
                           "requestId": "r2", "routeKey": "POST /v1/callbacks/{provider}/{job_id}",
                           "stage": "$default", "time": "22/Nov/2026:00:00:00 +0000", "timeEpoch": 0},
        "body": raw.decode(), "isBase64Encoded": False,
    }


def run(quick: bool) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from reelhook_local.aws_resources import create_stack_resources, template_env
    from reelhook_local.front import load_handler
    from reelhook_local.sandbox import ProviderSandbox, SandboxConfig
    from reelhook_local.stack import LocalStack
    from reelhook_local.template import functions

    iterations = 40 if quick else 300
    recorder = AwsCalls()
    moto_timer = MotoTimer()
    per_case: dict[str, list[Counter[str]]] = {}
    timings: dict[str, list[dict[str, float]]] = {}
    api_calls: list[Counter[str]] = []

    with environment({"AWS_ENDPOINT_URL": None} | AWS_ENV), \
            ProviderSandbox(SandboxConfig(step_seconds=None)) as sandbox, mock_aws():
        recorder.install()
        moto_timer.install()
        try:
            session = boto3.session.Session(region_name="us-east-1")
            config = sandbox.config
            resources = create_stack_resources(session, secret_values={
                "callback_token_key": pysecrets.token_urlsafe(48),
                "freepik_api_key": config.freepik_api_key,
                "freepik_webhook_secret": config.freepik_webhook_secret,
            }, visibility_timeout=30)
            env = template_env(resources) | {
                "FREEPIK_BASE_URL": sandbox.base_url("freepik"),
                "CALLBACK_BASE_URL": "https://api.example.com",
                "REELHOOK_ALLOW_INSECURE_FETCH": "true",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            }
            with environment(dict(env)):
                LocalStack._reset_caches()
                fns = functions()
                api = recorder.wrap("api", load_handler(fns["ApiFunction"]))
                callback = recorder.wrap("callback", load_handler(fns["CallbackFunction"]))
                silence_powertools()
                secret = config.freepik_webhook_secret
                _run_cases(iterations, api, callback, sandbox, secret, recorder, moto_timer,
                           per_case, timings, api_calls)
        finally:
            moto_timer.uninstall()
            recorder.uninstall()
            LocalStack._reset_caches()
    return _summarise(iterations, per_case, timings, api_calls)


def _run_cases(iterations: int, api: Any, callback: Any, sandbox: Any, secret: str, recorder: AwsCalls,
               moto_timer: MotoTimer, per_case: dict[str, list[Counter[str]]],
               timings: dict[str, list[dict[str, float]]], api_calls: list[Counter[str]]) -> None:
    from reelhook.adapters import aws
    from reelhook.adapters import secrets as secret_cache

    def invoke(case: str, event: dict[str, Any]) -> dict[str, Any]:
        mark = recorder.snapshot()
        moto_timer.take()
        started = time.perf_counter()
        answer = callback(event, Context())
        handler_s = time.perf_counter() - started
        moto_s = moto_timer.take()
        calls, _ = recorder.since(mark)
        lambda_calls = [c for c in calls if c.origin == "lambda"]
        per_case.setdefault(case, []).append(Counter(c.name for c in lambda_calls))
        aws_s = sum(c.seconds for c in lambda_calls)
        timings.setdefault(case, []).append({"handler": handler_s, "moto": moto_s, "aws": aws_s})
        if answer["statusCode"] != 200:
            raise RuntimeError(f"{case}: callback answered {answer['statusCode']}: {answer['body']}")
        return json.loads(answer["body"])

    # A new callback instance: no clients, no cached secret. Its first webhook is the cold case.
    with progress("webhooks (in-process moto)", iterations) as advance:
        for index in range(iterations):
            mark = recorder.snapshot()
            answer = api(api_event(VEO), Context())
            calls, _ = recorder.since(mark)
            api_calls.append(Counter(c.name for c in calls if c.origin == "lambda"))
            job = json.loads(answer["body"])
            task = sandbox.tasks[job["provider_task_id"]]
            url = task.webhook_url
            if index == 0:
                aws.reset_clients()
                secret_cache.clear_cache()
            running_id = f"msg_{uuid.uuid4().hex}"
            running = webhook_event(url, {"task_id": task.task_id, "status": "IN_PROGRESS", "generated": []},
                                    secret, running_id)
            body = invoke("cold_non_terminal" if index == 0 else "non_terminal", running)
            assert body["applied"] and body["status"] == "running", body
            # The provider retries the same delivery (same webhook-id): a duplicate.
            body = invoke("duplicate_non_terminal", webhook_event(
                url, {"task_id": task.task_id, "status": "IN_PROGRESS", "generated": []}, secret, running_id))
            assert not body["applied"], body
            done_id = f"msg_{uuid.uuid4().hex}"
            done_body = {"task_id": task.task_id, "status": "COMPLETED",
                         "generated": [f"https://cdn.example.com/{task.task_id}.mp4"]}
            body = invoke("completion", webhook_event(url, done_body, secret, done_id))
            assert body["applied"] and body["status"] == "storing", body
            body = invoke("duplicate_completion", webhook_event(url, done_body, secret, done_id))
            assert not body["applied"], body
            # A late IN_PROGRESS after completion (new delivery id): ignored, job stays storing.
            body = invoke("late_non_terminal", webhook_event(
                url, {"task_id": task.task_id, "status": "IN_PROGRESS", "generated": []}, secret))
            assert not body["applied"] and body["status"] == "storing", body
            advance(1)


CASES = {
    "non_terminal": ("IN_PROGRESS (non-terminal)", "1 DynamoDB write, nothing else"),
    "completion": ("COMPLETED with a result URL", "≤ 1 DynamoDB write + 1 SQS send"),
    "duplicate_non_terminal": ("duplicate IN_PROGRESS (same webhook-id)", "no state change"),
    "duplicate_completion": ("duplicate COMPLETED (same webhook-id)", "no state change, no 2nd SQS send"),
    "late_non_terminal": ("late IN_PROGRESS after completion", "no state change"),
    "cold_non_terminal": ("IN_PROGRESS on a cold instance (first event)", "1 secret fetch per instance"),
}


def _per_invocation(counters: list[Counter[str]]) -> tuple[dict[str, float], bool]:
    total: Counter[str] = Counter()
    for counter in counters:
        total.update(counter)
    uniform = all(c == counters[0] for c in counters)
    return {name: rnd(count / len(counters), 3) for name, count in sorted(total.items())}, uniform


def _summarise(iterations: int, per_case: dict[str, list[Counter[str]]],
               timings: dict[str, list[dict[str, float]]], api_calls: list[Counter[str]]) -> dict[str, Any]:
    cases: dict[str, Any] = {}
    for case, counters in per_case.items():
        calls, uniform = _per_invocation(counters)
        writes = sum(v for k, v in calls.items() if k.split(":")[1] in WRITES)
        others = {k: v for k, v in calls.items() if k.split(":")[1] not in WRITES and k != "sqs:SendMessage"}
        sends = calls.get("sqs:SendMessage", 0)
        ok: bool | None = None
        if case == "non_terminal":
            ok = calls == {"dynamodb:UpdateItem": 1.0}
        elif case == "completion":
            ok = writes <= 1 and sends <= 1 and not others
        elif case.startswith(("duplicate", "late")):
            ok = sends == 0 and writes <= 1 and not others
        cases[case] = {"calls_per_invocation": calls, "identical_every_time": uniform, "invocations": len(counters),
                       "dynamodb_writes": writes, "sqs_sends": sends, "pass": ok}
    warm_secret_fetches = sum(c.get("secretsmanager:GetSecretValue", 0)
                              for case, counters in per_case.items() if case != "cold_non_terminal"
                              for c in counters)
    cold_secret_fetches = sum(c.get("secretsmanager:GetSecretValue", 0) for c in per_case["cold_non_terminal"])
    latency: dict[str, Any] = {}
    for case, all_samples in timings.items():
        if case == "cold_non_terminal":
            continue
        # The first of each kind is a warm-up: the first completion also creates the SQS client.
        samples = all_samples[1:]
        handler = [s["handler"] * 1000 for s in samples]
        minus_moto = [(s["handler"] - s["moto"]) * 1000 for s in samples]
        minus_aws = [(s["handler"] - s["aws"]) * 1000 for s in samples]
        moto = [s["moto"] * 1000 for s in samples]
        latency[case] = {
            "n": len(samples),
            "handler_p50_ms": rnd(percentile(handler, 50), 3), "handler_p99_ms": rnd(percentile(handler, 99), 3),
            "excl_aws_p50_ms": rnd(percentile(minus_moto, 50), 3),
            "excl_aws_p99_ms": rnd(percentile(minus_moto, 99), 3),
            "own_code_p50_ms": rnd(percentile(minus_aws, 50), 3),
            "own_code_p99_ms": rnd(percentile(minus_aws, 99), 3),
            "moto_p50_ms": rnd(percentile(moto, 50), 3),
        }
    api_per, api_uniform = _per_invocation(api_calls)
    first = timings["cold_non_terminal"][0]
    return {
        "cold_first_webhook_ms": rnd(first["handler"] * 1000, 1),
        "first_completion_ms": rnd(timings["completion"][0]["handler"] * 1000, 1),
        "iterations": iterations,
        "cases": cases,
        "secrets": {"cold_instance_first_event": cold_secret_fetches, "warm_invocations_total": warm_secret_fetches,
                    "warm_invocations": sum(len(c) for k, c in per_case.items() if k != "cold_non_terminal"),
                    "pass": warm_secret_fetches == 0},
        "latency": latency,
        "api_create_calls": {"calls_per_invocation": api_per, "identical_every_time": api_uniform},
    }


def _calls_text(calls: dict[str, float]) -> str:
    return ", ".join(f"{v:g} {k}" for k, v in calls.items()) or "none"


def render(result: dict[str, Any]) -> str:
    cases = result["cases"]
    rows = []
    for key, (title, target) in CASES.items():
        if key not in cases:
            continue
        case = cases[key]
        rows.append([title, _calls_text(case["calls_per_invocation"]),
                     "yes" if case["identical_every_time"] else "no", target, verdict(case["pass"])])
    secrets = result["secrets"]
    rows.append(["Secrets Manager fetches, warm invocations",
                 f"{secrets['warm_invocations_total']} in {secrets['warm_invocations']} invocations", "yes",
                 "0", verdict(secrets["pass"])])
    lat_rows = [[CASES[k][0], v["handler_p50_ms"], v["handler_p99_ms"], v["moto_p50_ms"], v["excl_aws_p50_ms"],
                 v["excl_aws_p99_ms"], v["own_code_p50_ms"], v["own_code_p99_ms"]]
                for k, v in sorted(result["latency"].items(), key=lambda kv: list(CASES).index(kv[0]))]
    api = result["api_create_calls"]
    return "\n".join([
        "## 2. Webhook cost",
        "",
        f"{result['iterations']} jobs, each created through the api handler and then sent signed Freepik webhooks "
        "through the real callback handler; moto in-process (`mock_aws`) with the template's resources. Calls "
        "are counted by `before-call` hooks on every boto3 session (not read from code). The first webhook "
        "of the run hits a cold instance (no clients, no cached secret).",
        "",
        table(["webhook", "AWS calls per invocation", "same every time", "target", "result"], rows,
              "llcll"),
        "",
        f"Creating a job (`POST /v1/jobs`, for reference): {_calls_text(api['calls_per_invocation'])}.",
        "",
        "**Callback handler latency** (in-process, ms). \"excl. AWS\" = handler wall time minus the time moto "
        "spent answering (what the AWS service would take; botocore's client-side work stays in). \"own code\" "
        "also removes botocore's work (the whole `before-call`→`after-call` span), leaving reelhook + "
        "Powertools (logging at the deployed INFO level, written to /dev/null).",
        "",
        table(["webhook", "handler p50", "handler p99", "moto p50", "excl. AWS p50", "excl. AWS p99",
               "own code p50", "own code p99"], lat_rows),
        "",
        f"The first invocation of each kind is left out of these figures: the cold instance's first webhook took "
        f"{result['cold_first_webhook_ms']:.0f} ms (three clients created, the secret fetched) and the first "
        f"completion {result['first_completion_ms']:.0f} ms (the SQS client created).",
        "",
    ])


def summary_rows(result: dict[str, Any]) -> list[list[Any]]:
    cases = result["cases"]
    lat = result["latency"]["non_terminal"]
    return [
        ["webhook IN_PROGRESS", _calls_text(cases["non_terminal"]["calls_per_invocation"]),
         "1 DynamoDB write only", verdict(cases["non_terminal"]["pass"])],
        ["webhook COMPLETED", _calls_text(cases["completion"]["calls_per_invocation"]),
         "≤ 1 DynamoDB write + 1 SQS send", verdict(cases["completion"]["pass"])],
        ["webhook duplicate", _calls_text(cases["duplicate_completion"]["calls_per_invocation"]),
         "no change", verdict(cases["duplicate_completion"]["pass"])],
        ["secret fetches, warm", str(result["secrets"]["warm_invocations_total"]), "0",
         verdict(result["secrets"]["pass"])],
        ["callback latency excl. AWS", f"p50 {lat['excl_aws_p50_ms']:.2f} ms, p99 {lat['excl_aws_p99_ms']:.2f} ms",
         "(no target)", "n/a"],
    ]
