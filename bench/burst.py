"""6. Burst: a thousand jobs at once, through the API and through the S3 inbox.

Each section starts its own local stack. The sandbox enforces rate limits the way a provider
does (Freepik's documented windows, the same windows for UniAll and AIHubMax, whose documents
give none), and reelhook's governance is set to 9.5 requests/s with a burst of 5 for every
provider. Then:

- **API burst:** the jobs, a third per provider, POSTed by concurrent clients;
- **inbox burst:** the same number of manifests put under ``inbox/`` at once.

Both load generators run in a process of their own (``bench.common.in_client_process``).

Figures: jobs accepted; client latency (API: POST to 202; inbox: put to the job's
``created_at``); jobs failed, and failed for rate or budget reasons (target 0); each provider's
peak requests in any 1 s and any 5 s window, from the sandbox's own request log, against its
limits, and how many the sandbox refused with 429; drain time, the first job accepted to the
last create request the providers received, against the theoretical max over providers of
(jobs - burst) / rate (target ≤ 1.15×); lost: accepted jobs not found or not terminal at
the end (target 0). Polls start after the drain (the first check is due later than the drain takes),
so the create requests have each provider's budget to themselves, as the theory assumes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import in_client_process, iso_epoch, median, percentile, progress, rnd, table, verdict
from bench.scale import MIX  # the same mix of providers as the scale run

NAME = "burst"
PROVIDERS = tuple(provider for provider, _ in MIX)
RATE = 9.5  # requests/s reelhook takes from each provider (Freepik's default)
BURST = 5
DRAIN_TARGET = 1.15
LATENCY_TARGET_S = 2.0
# Codes a job fails with when reelhook could not get a provider's budget.
RATE_FAILURES = {"provider_unavailable", "rate_limited", "submit_outcome_unknown"}
TERMINAL = {"succeeded", "failed", "cancelled"}


def run(quick: bool) -> dict[str, Any]:
    jobs = int(os.environ.get("BENCH_BURST_JOBS", 0)) or (60 if quick else 1000)
    clients = 16 if quick else 64
    return {
        "jobs": jobs,
        "clients": clients,
        "rate": RATE,
        "burst": BURST,
        "api": _section("api", jobs, clients),
        "inbox": _section("inbox", jobs, clients),
    }


def _section(kind: str, jobs: int, clients: int) -> dict[str, Any]:
    from reelhook_local.sandbox import FREEPIK_LIMITS, SandboxConfig
    from reelhook_local.stack import LocalStack, StackOptions

    limits = dict.fromkeys(PROVIDERS, FREEPIK_LIMITS)
    drain_estimate = max(0.0, (jobs / len(MIX) - BURST) / RATE)
    governance = {}
    for provider in PROVIDERS:
        governance[f"{provider.upper()}_REQUESTS_PER_SECOND"] = str(RATE)
        governance[f"{provider.upper()}_BURST"] = str(BURST)
    options = StackOptions(
        sandbox=SandboxConfig(step_seconds=0.5, rate_limits=limits),
        schedule_seconds=1.0,
        poll_base_seconds=int(drain_estimate * 1.5) + 10,
        poll_max_seconds=10,
        reconcile_after_seconds=int(drain_estimate * 1.5) + 60,
        transfer_workers=4,
        aihubmax_callbacks=False,
        extra_env=governance,
    )
    with LocalStack(options) as stack:
        # The clients run in a process of their own, as a real client would.
        if kind == "api":
            started, accepted, latencies, errors = in_client_process(post_jobs, stack.api_url, jobs, clients)
        else:
            started, accepted, latencies, errors = in_client_process(
                put_manifests, stack.endpoint_for("s3"), stack.resources.bucket_name, jobs, clients)
        items = _wait_terminal(stack, jobs, timeout=max(300.0, drain_estimate * 6))
        log = stack.sandbox.request_log
        refused = {p: stack.sandbox.rate_limited(p) for p in PROVIDERS}
    if kind == "inbox":
        latencies = [iso_epoch(item["created_at"]) - started for item in items.values()]
    return _figures(kind, jobs, started, accepted, latencies, errors, items, log, refused, limits)


def post_jobs(api_url: str, jobs: int, clients: int) -> tuple[float, int, list[float], list[str]]:
    """``jobs`` POSTs from ``clients`` threads: when they began, the 202s, their latencies, errors."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    local = threading.local()
    gate = threading.Barrier(clients)

    def client() -> httpx.Client:
        api = getattr(local, "api", None)
        if api is None:
            api = local.api = httpx.Client(base_url=api_url, timeout=60)
            gate.wait()  # every client connected and ready: the burst starts together
        return api

    def post(index: int) -> None:
        api = client()
        t0 = time.perf_counter()
        try:
            answer = api.post("/v1/jobs", json=MIX[index % len(MIX)][1])
        except Exception as exc:  # any failure to get an answer is a dropped request
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
            return
        elapsed = time.perf_counter() - t0
        with lock:
            if answer.status_code == 202:
                latencies.append(elapsed)
            else:
                errors.append(f"HTTP {answer.status_code}: {answer.text[:200]}")

    started = time.time()
    with progress(f"burst (api): {jobs} POSTs, {clients} clients", jobs) as advance, \
            ThreadPoolExecutor(clients) as pool:
        for _ in pool.map(post, range(jobs)):
            advance(1)
    return started, len(latencies), latencies, errors


def put_manifests(s3_endpoint: str, bucket: str, jobs: int, clients: int) -> tuple[float, int, list[float], list[str]]:
    """``jobs`` manifests put under ``inbox/`` by ``clients`` threads: when they began, how many, errors."""
    from bench.scale import bench_client

    s3 = bench_client("s3", s3_endpoint)
    errors: list[str] = []
    lock = threading.Lock()

    def put(index: int) -> None:
        body = json.dumps(MIX[index % len(MIX)][1]).encode()
        try:
            s3.put_object(Bucket=bucket, Key=f"inbox/burst/{index:05d}.json", Body=body)
        except Exception as exc:  # a manifest the bench could not put is not a job lost by reelhook
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    started = time.time()
    with progress(f"burst (inbox): {jobs} manifests", jobs) as advance, ThreadPoolExecutor(clients) as pool:
        for _ in pool.map(put, range(jobs)):
            advance(1)
    return started, jobs - len(errors), [], errors


def _wait_terminal(stack: Any, expected: int, *, timeout: float, stall: float = 90.0) -> dict[str, dict[str, Any]]:
    """Every job item, once all ``expected`` jobs are terminal, or when progress stops."""
    deadline = time.monotonic() + timeout
    last_change, last_done = time.monotonic(), -1
    items: dict[str, dict[str, Any]] = {}
    with progress("burst: waiting for every job to finish", expected) as advance:
        while time.monotonic() < deadline and time.monotonic() - last_change < stall:
            items = _job_items(stack)
            done = sum(1 for item in items.values() if item["status"] in TERMINAL)
            if done != last_done:
                advance(done - max(0, last_done))
                last_change, last_done = time.monotonic(), done
            if done >= expected:
                break
            time.sleep(5.0)  # each look is a Scan, which the stack's moto serves under its DynamoDB lock
    return _job_items(stack, full=True)


def _job_items(stack: Any, *, full: bool = False) -> dict[str, dict[str, Any]]:
    """Every job item (only its status and times unless ``full``)."""
    from boto3.dynamodb.types import TypeDeserializer

    ddb = stack.client("dynamodb")
    plain = TypeDeserializer()
    items: dict[str, dict[str, Any]] = {}
    request: dict[str, Any] = {"TableName": stack.resources.table_name,
                               "FilterExpression": "begins_with(pk, :job)",
                               "ExpressionAttributeValues": {":job": {"S": "job#"}}}
    if not full:
        request |= {"ProjectionExpression": "pk, #status, created_at",
                    "ExpressionAttributeNames": {"#status": "status"}}
    while True:
        page = ddb.scan(**request)
        for raw in page["Items"]:
            item = {name: plain.deserialize(value) for name, value in raw.items()}
            items[str(item["pk"]).removeprefix("job#")] = item
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]



def peak_in_window(times: list[float], window: float) -> int:
    """The most of ``times`` that fall in any half-open window of ``window`` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _figures(kind: str, jobs: int, started: float, accepted: int, latencies: list[float], errors: list[str],
             items: dict[str, dict[str, Any]], log: list[Any], refused: dict[str, int],
             limits: dict[str, Any]) -> dict[str, Any]:
    failed = {job_id: item.get("error", {}).get("code", "?") for job_id, item in items.items()
              if item["status"] == "failed"}
    not_terminal = [job_id for job_id, item in items.items() if item["status"] not in TERMINAL]
    providers: dict[str, Any] = {}
    last_create = started
    for provider in PROVIDERS:
        calls = [r for r in log if r.path.startswith(f"/{provider}/") and r.status != 429]
        creates = [r.at for r in calls if r.method == "POST"]
        if creates:
            last_create = max(last_create, max(creates))
        times = [r.at for r in calls]
        providers[provider] = {
            "creates": len(creates),
            "requests": len(times),
            "peak_1s": peak_in_window(times, 1.0),
            "peak_5s": peak_in_window(times, 5.0),
            "refused_429": refused[provider],
            "limits": [f"{limit.max_requests} per {limit.window_seconds:g} s" for limit in limits[provider]],
            "within_limits": all(peak_in_window(times, limit.window_seconds) <= limit.max_requests
                                 for limit in limits[provider]),
        }
    theory = max(0.0, (jobs / len(MIX) - BURST) / RATE)
    drain = last_create - started
    return {
        "kind": kind,
        "accepted": accepted,
        "errors": errors[:10],
        "errors_total": len(errors),
        "jobs_found": len(items),
        "latency_s": {"p50": rnd(median(latencies), 3) if latencies else None,
                      "p99": rnd(percentile(latencies, 99), 3) if latencies else None},
        "failed": len(failed),
        "failed_by_code": {code: list(failed.values()).count(code) for code in sorted(set(failed.values()))},
        "failed_for_rate": sum(1 for code in failed.values() if code in RATE_FAILURES),
        "succeeded": sum(1 for item in items.values() if item["status"] == "succeeded"),
        # Accepted and never finished (or vanished); undetermined while any is still in flight.
        "lost": max(0, accepted - len(items)) + len(not_terminal),
        "unfinished": len(not_terminal) + max(0, accepted - len(items)),
        "providers": providers,
        "drain_s": rnd(drain, 1),
        "drain_theory_s": rnd(theory, 1),
        "drain_ratio": rnd(drain / theory, 2) if theory else None,
    }


def _section_rows(result: dict[str, Any], section: dict[str, Any]) -> list[list[Any]]:
    name = f"burst {section['kind']} ({result['jobs']} jobs)"
    lat = section["latency_s"]
    latency_text = f"p50 {lat['p50']:.2f} s, p99 {lat['p99']:.2f} s" if lat["p50"] is not None else "none"
    latency_target = f"p99 ≤ {LATENCY_TARGET_S:g} s" if section["kind"] == "api" else "(report)"
    latency_ok = lat["p99"] is not None and lat["p99"] <= LATENCY_TARGET_S if section["kind"] == "api" else None
    peaks = ", ".join(f"{p} {v['peak_1s']}/{v['peak_5s']}" for p, v in section["providers"].items())
    refused = sum(v["refused_429"] for v in section["providers"].values())
    within = all(v["within_limits"] for v in section["providers"].values())
    ratio = section["drain_ratio"]
    return [
        [f"{name}: accepted", f"{section['accepted']} of {result['jobs']}", f"{result['jobs']}",
         verdict(section["accepted"] == result["jobs"])],
        [f"{name}: latency", latency_text, latency_target, verdict(latency_ok) if latency_ok is not None else "n/a"],
        [f"{name}: failed for rate or budget", f"{section['failed_for_rate']} ({section['failed']} failed in all)",
         "0", verdict(section["failed_for_rate"] == 0 and section["failed"] == 0)],
        [f"{name}: provider peak 1 s / 5 s", f"{peaks}; {refused} refused with 429",
         "within 250 per 5 s and 1200 per 120 s", verdict(within and refused == 0)],
        [f"{name}: drain vs (jobs - burst) ÷ rate",
         f"{ratio:.2f}× ({section['drain_s']:.1f} s vs {section['drain_theory_s']:.1f} s)" if ratio else "n/a",
         f"≤ {DRAIN_TARGET}×", verdict(ratio is not None and ratio <= DRAIN_TARGET)],
        _lost_row(name, section),
    ]


def _lost_row(name: str, section: dict[str, Any]) -> list[Any]:
    # Jobs still queued or in flight when the wait ended are not lost, but nor are they proven
    # delivered: with any of them the figure is undetermined, and says how many.
    finished = section["succeeded"] + section["failed"]
    unfinished = max(0, max(section["accepted"], section["jobs_found"]) - finished)
    if unfinished:
        what = "jobs" if section["kind"] == "api" else "manifests"
        found = section["jobs_found"]
        return [f"{name}: lost", f"undetermined: {unfinished} {what} unfinished when the wait ended "
                f"({found} jobs in the table, {finished} finished)", "0", "❌ fail"]
    return [f"{name}: lost", "0", "0", verdict(True)]


def summary_rows(result: dict[str, Any]) -> list[list[Any]]:
    return _section_rows(result, result["api"]) + _section_rows(result, result["inbox"])


def render(result: dict[str, Any]) -> str:
    out = [
        "## Burst",
        "",
        f"{result['jobs']} jobs, a third per provider, with reelhook's governance at {result['rate']:g} "
        f"requests/s and a burst of {result['burst']} for each provider; the sandbox refuses, with 429, "
        "anything beyond 250 requests in 5 s or 1,200 in 120 s per provider (Freepik's documented "
        f"limits). API: {result['clients']} concurrent clients POST the jobs. Inbox: "
        f"{result['clients']} threads put the manifests at once. The clients run in a process of their "
        "own, as real clients would, not in the stack's. Latency for the inbox is the put to "
        "the job's `created_at`. Drain is the first job to the last create request a provider "
        "received; theory is (jobs per provider - burst) ÷ rate.",
        "",
    ]
    rows = []
    for section in (result["api"], result["inbox"]):
        for provider, figures in section["providers"].items():
            rows.append([section["kind"], provider, figures["creates"], figures["requests"], figures["peak_1s"],
                         figures["peak_5s"], figures["refused_429"], "yes" if figures["within_limits"] else "NO"])
    out.append(table(["burst", "provider", "creates", "requests", "peak 1 s", "peak 5 s", "429s", "within limits"],
                     rows, "llrrrrrl"))
    out.append("")
    for section in (result["api"], result["inbox"]):
        out.append(f"- **{section['kind']}:** {section['accepted']} accepted, {section['succeeded']} succeeded, "
                   f"{section['failed']} failed {section['failed_by_code'] or ''}, "
                   f"{section['jobs_found']} jobs in the table at the end; "
                   f"{section['errors_total']} client errors"
                   + (f" (first: {section['errors'][0]})" if section["errors"] else "") + ".")
    out.append("")
    return "\n".join(out)
