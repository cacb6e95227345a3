"""5. Scale: many jobs through the local stack, mixed providers, webhooks and polling.

Jobs are submitted over HTTP to the local front by 16 client threads in a process of their own (as
every load generator here), a third each to Freepik (signed webhooks), UniAll (polling) and
AIHubMax (polling, the deployed default). The bench watches the jobs table with its own
(uncounted) client until every job is final or progress stops, then reads every job and the
sandbox's task records:

- throughput: jobs / (last job succeeded - first submit);
- provider completion → ``succeeded``: the sandbox task's ``completed_at`` to the job's
  ``succeeded`` event time;
- AWS requests per job: every call the functions and the event source mapping made during the
  run (idle poller passes and the queue's long polls included), divided by the number of jobs;
- lost jobs: jobs not ``succeeded`` (failed, stuck, or in the DLQ).

Where the time goes: the whole stack (moto's server, the front, the handlers, the drivers, the
sandbox) is one Python process on a 2-core machine, so the GIL is the shared resource. py-spy
(when installed) samples which threads hold the GIL, and those samples are sorted into moto's
server, the handlers (split into reelhook, botocore, httpx, Powertools, other), the sandbox
and the bench. The moto request latency seen by the handlers is reported beside it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import (
    METER,
    AwsCalls,
    MotoBusy,
    function_name,
    in_client_process,
    install_handler_wrappers,
    iso_epoch,
    median,
    percentile,
    progress,
    restore_handlers,
    rnd,
    table,
    verdict,
)

NAME = "scale"
IMG = "https://example.com/ref.png"
MIX = (
    ("freepik", {"model": "freepik/veo-3-1-reference-to-video", "prompt": "walk", "reference_images": [IMG]}),
    ("uniall", {"model": "uniall/veo3.1-video-720p", "prompt": "a lighthouse at dusk"}),
    ("aihubmax", {"model": "aihubmax/veo-3.1-reference-to-video", "prompt": "wave", "reference_images": [IMG]}),
)
SUBMITTERS = 16
BURST_CLIENTS = 128  # after the run: this many clients POST one job each, all at once
# Targets on this 2-core machine, judged on a full run (1,000 jobs) only: end-to-end throughput,
# and the p99 of the 128 clients' time to 202.
TARGET_JOBS_PER_SECOND = 15.0
TARGET_FRONT_P99_MS = 2000
FULL_RUN_JOBS = 1000

# ---------------------------------------------------------------------------- prices

PRICES_DATE = "2025 public list prices, assumed unchanged on 2026-11-22 (not fetched live)"
PRICES = {  # us-east-1, USD
    "lambda_gb_second_x86": 0.0000166667,
    "lambda_request": 0.20 / 1e6,
    "http_api_request": 1.00 / 1e6,  # first 300 M requests/month
    "dynamodb_wru": 0.625 / 1e6,  # on-demand, after the November 2024 price cut
    "dynamodb_rru": 0.125 / 1e6,
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk
    "s3_put": 0.005 / 1000,  # PUT, COPY, POST, LIST; each multipart call counts
    "s3_get": 0.0004 / 1000,
    "secretsmanager_call": 0.05 / 10000,
    "xray_trace": 5.00 / 1e6,  # traces recorded (Tracing: Active), before sampling
    "eventbridge_event": 1.00 / 1e6,  # custom events (PutEvents entries, per 64 KB chunk)
    "logs_gb": 0.50,  # CloudWatch Logs ingestion
}
PLATFORM_LOG_BYTES = 350  # Lambda's START, END and REPORT lines per invocation (estimate)
CUSTOM_METRIC_MONTH = 0.30  # CloudWatch custom metric (first 10,000), per metric per month


def bench_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name="us-east-1",
                                          aws_access_key_id="local", aws_secret_access_key="local")


# ---------------------------------------------------------------------------- DynamoDB item size


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's billed item size (attribute names plus values), from the wire format."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        digits = raw.lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(raw) if isinstance(raw, bytes) else len(raw) * 3 // 4
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode()) for v in raw)
    if kind == "NS":
        return sum(math.ceil(len(v) / 2) + 1 for v in raw)
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in raw)
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in raw.items())
    return len(json.dumps(raw))


# ---------------------------------------------------------------------------- py-spy


class Profiler:
    """py-spy on this very process, GIL holders only, for a fixed window."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.available = Path(self.binary).exists()
        self.output = Path(tempfile.gettempdir()) / f"reelhook-bench-{os.getpid()}.raw"
        self.process: subprocess.Popen[str] | None = None
        self.error = ""

    def start(self) -> None:
        if not self.available:
            return
        self.process = subprocess.Popen(
            [self.binary, "record", "--pid", str(os.getpid()), "--duration", str(int(self.seconds)), "--rate", "100",
             "--gil", "--nonblocking", "--threads", "--format", "raw", "--output", str(self.output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def finish(self) -> dict[str, Any] | None:
        if self.process is None:
            return None
        try:
            _, err = self.process.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGINT)
            _, err = self.process.communicate(timeout=30)
        if not self.output.exists():
            self.error = (err or "")[-500:]
            return {"error": self.error}
        shares: Counter[str] = Counter()
        handler_leaf: Counter[str] = Counter()
        for line in self.output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            shares[_category(stack)] += n
            if _category(stack) == "handlers":
                handler_leaf[_leaf(stack)] += n
        self.output.unlink(missing_ok=True)
        total = sum(shares.values()) or 1
        handler_total = sum(handler_leaf.values()) or 1
        return {
            "samples": total,
            "share": {k: rnd(v / total, 3) for k, v in shares.most_common()},
            "handler_share": {k: rnd(v / handler_total, 3) for k, v in handler_leaf.most_common()},
        }


def _category(stack: str) -> str:
    if "moto/" in stack or "werkzeug/" in stack:
        return "moto server (AWS stand-in)"
    if "reelhook_local/sandbox" in stack:
        return "provider sandbox"
    if "reelhook_local/front" in stack or "reelhook/" in stack:
        return "handlers"
    if "bench/" in stack:
        return "bench harness"
    return "other"


def _leaf(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for marker, name in (("reelhook/", "reelhook"), ("botocore/", "botocore + boto3"),
                             ("boto3/", "botocore + boto3"), ("httpx/", "httpx + httpcore"),
                             ("httpcore/", "httpx + httpcore"), ("aws_lambda_powertools/", "powertools"),
                             ("urllib3/", "urllib3"), ("pydantic", "pydantic"), ("bench/", "bench wrappers")):
            if marker in frame:
                return name
    return "stdlib (json, ssl, socket, http...)"


# ---------------------------------------------------------------------------- run


def run(quick: bool) -> dict[str, Any]:
    from reelhook_local.sandbox import SandboxConfig
    from reelhook_local.stack import LocalStack, StackOptions

    jobs_total = int(os.environ.get("BENCH_SCALE_JOBS", 0)) or (50 if quick else FULL_RUN_JOBS)
    options = StackOptions(sandbox=SandboxConfig(step_seconds=2.0), schedule_seconds=1.0, poll_base_seconds=1,
                           poll_max_seconds=2, reconcile_after_seconds=60, transfer_workers=4,
                           aihubmax_callbacks=False)
    recorder = AwsCalls(with_params=False).install()
    install_handler_wrappers(recorder)
    stack = LocalStack(options).start()
    try:
        return _run(stack, recorder, MotoBusy(stack.aws_endpoint), jobs_total, quick, options)
    finally:
        stack.stop()
        restore_handlers()
        recorder.uninstall()
        LocalStack._reset_caches()


def _run(stack: Any, recorder: AwsCalls, busy: MotoBusy, jobs_total: int, quick: bool,
         options: Any) -> dict[str, Any]:
    ddb = bench_client("dynamodb", stack.endpoint_for("dynamodb"))
    sqs = bench_client("sqs", stack.endpoint_for("sqs"))
    table_name = stack.resources.table_name
    submitted: dict[str, dict[str, Any]] = {}
    submit_errors: list[str] = []

    # Warm every function and client before measuring (what a warm fleet looks like); the second
    # round, three jobs at once, gives the uncontended handler durations the cost estimate uses.
    light: dict[str, list[float]] = {}
    for round_ in range(2):
        warm_mark = recorder.snapshot()
        _, _, _, posted, errors = post_jobs(stack.api_url, len(MIX), 1)  # one after another, in this process
        submitted.update(posted)
        submit_errors.extend(errors)
        _wait_all(ddb, table_name, set(submitted), timeout=60, stall=30, advance=None)
        submitted.clear()
        time.sleep(1.5)
        if round_:
            for invocation in recorder.since(warm_mark)[1]:
                if not math.isnan(invocation.seconds):
                    light.setdefault(invocation.function, []).append(invocation.seconds * 1000)

    mark = recorder.snapshot()
    busy_start = busy.snapshot()
    log_start = METER.bytes
    cpu_start = os.times()
    profiler = Profiler(8 if quick else 25)
    with progress(f"scale: {jobs_total} jobs", jobs_total) as advance, ThreadPoolExecutor(1) as runner:
        # The clients post from a process of their own: their HTTP work is not the stack's.
        posting = runner.submit(in_client_process, post_jobs, stack.api_url, jobs_total, SUBMITTERS)
        time.sleep(2.0)  # the client process starting, then its first posts
        profiler.start()
        clients_process, started, submit_done, posted, errors = posting.result()
        submitted.update(posted)
        submit_errors.extend(errors)
        statuses = _wait_all(ddb, table_name, set(submitted), timeout=600 if not quick else 120, stall=60,
                             advance=advance)
    finished = time.time()
    cpu_end = os.times()
    busy_end = busy.snapshot()
    log_bytes = METER.bytes - log_start
    profile = profiler.finish()
    time.sleep(0.5)
    calls, invocations = recorder.since(mark)
    items = _read_items(ddb, table_name, list(submitted))
    dlq = int(sqs.get_queue_attributes(QueueUrl=stack.resources.dlq_url,
                                       AttributeNames=["ApproximateNumberOfMessages"])
              ["Attributes"]["ApproximateNumberOfMessages"])
    result = _summarise(stack, submitted, statuses, items, calls, invocations, started, submit_done, finished,
                        cpu_start, cpu_end, profile, dlq, submit_errors, jobs_total, options)
    result["clients_process"] = clients_process
    result["durations_light_ms"] = {f: {"p50": rnd(median(v), 1), "n": len(v)} for f, v in light.items()}
    result["front_burst"] = in_client_process(front_burst, stack.api_url, BURST_CLIENTS)  # clients apart
    result["moto"] = MotoBusy.between(busy_start, busy_end, finished - started)
    invocations_total = sum(result["invocations"].values())
    result["log_bytes_per_invocation"] = rnd(log_bytes / max(1, invocations_total), 1)
    result["emf_metrics"] = sorted(METER.metrics)
    result["cost"] = cost_estimate(result)
    return result


def post_jobs(api_url: str, count: int, clients: int
              ) -> tuple[int, float, float, dict[str, dict[str, Any]], list[str]]:
    """``clients`` threads POST ``count`` jobs of the mix between them, each over its own
    connection. Returns this process's id, when the first post started and the last answer
    came (wall clock), each job's provider, post and answer times and status, and the errors."""
    import httpx

    posted: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    local = threading.local()

    def post(index: int) -> None:
        provider, body = MIX[index % len(MIX)]
        api = getattr(local, "api", None)
        if api is None:
            api = local.api = httpx.Client(base_url=api_url, timeout=120)
        sent = time.time()
        try:
            answer = api.post("/v1/jobs", json=body)
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")
            return
        job = answer.json()
        with lock:
            posted[job["id"]] = {"provider": provider, "submitted_at": sent, "answered_at": time.time(),
                                 "status": job["status"]}

    started = time.time()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, range(count)))
    return os.getpid(), started, time.time(), posted, errors


def front_burst(api_url: str, clients: int) -> dict[str, Any]:
    """``clients`` threads, each with its own connection, POST one job at the same moment: the
    time each waited for its 202 (connection included). Run in a process apart from the stack's."""
    import httpx

    ready = threading.Barrier(clients)
    waited: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def post(index: int) -> None:
        _, body = MIX[index % len(MIX)]
        with httpx.Client(base_url=api_url, timeout=120) as api:
            ready.wait()
            started = time.perf_counter()
            try:
                answer = api.post("/v1/jobs", json=body)
                ok = answer.status_code == 202
            except httpx.HTTPError as exc:
                ok, answer = False, exc  # type: ignore[assignment]
            spent = time.perf_counter() - started
        with lock:
            if ok:
                waited.append(spent * 1000)
            else:
                errors.append(str(getattr(answer, "status_code", answer)))

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, range(clients)))
    return {"clients": clients, "accepted": len(waited), "errors": errors[:5],
            "p50_ms": rnd(median(waited), 0), "p99_ms": rnd(percentile(waited, 99), 0),
            "max_ms": rnd(max(waited, default=math.nan), 0)}


def _moto_statuses(table_name: str) -> Any:
    """Read job statuses straight from moto's in-process backend: no request to the (serialised)
    server, so watching 1,000 jobs adds no load to what is measured. None if moto's internals moved."""
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.dynamo_type import DynamoType

        table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(table_name)
    except Exception:
        return None

    def read(job_ids: list[str]) -> dict[str, str]:
        found = {}
        for job_id in job_ids:
            item = table.get_item(DynamoType({"S": f"job#{job_id}"}))
            if item is not None:
                found[job_id] = str(item.attrs["status"].value)
        return found

    return read


def _wait_all(ddb: Any, table_name: str, job_ids: set[str], *, timeout: float, stall: float,
              advance: Any) -> dict[str, str]:
    pending = set(job_ids)
    statuses: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    last_progress = time.monotonic()
    peek = _moto_statuses(table_name)
    while pending and time.monotonic() < deadline and time.monotonic() - last_progress < stall:
        done_now = 0
        ids = list(pending)
        if peek is not None:
            seen = peek(ids)
        else:
            seen = {}
            for start in range(0, len(ids), 100):
                keys = [{"pk": {"S": f"job#{j}"}} for j in ids[start:start + 100]]
                answer = ddb.batch_get_item(RequestItems={table_name: {
                    "Keys": keys, "ProjectionExpression": "pk, #s", "ExpressionAttributeNames": {"#s": "status"}}})
                for item in answer["Responses"].get(table_name, []):
                    seen[item["pk"]["S"].removeprefix("job#")] = item["status"]["S"]
        for job_id, status in seen.items():
            statuses[job_id] = status
            if status in ("succeeded", "failed") and job_id in pending:
                pending.discard(job_id)
                done_now += 1
        if done_now:
            last_progress = time.monotonic()
            if advance:
                advance(done_now)
        if pending:
            time.sleep(0.5 if peek is not None else 3.0)
    return statuses


def _read_items(ddb: Any, table_name: str, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    for start in range(0, len(job_ids), 100):
        keys = [{"pk": {"S": f"job#{j}"}} for j in job_ids[start:start + 100]]
        request: dict[str, Any] = {table_name: {"Keys": keys}}
        while request:
            answer = ddb.batch_get_item(RequestItems=request)
            for item in answer["Responses"].get(table_name, []):
                items[item["pk"]["S"].removeprefix("job#")] = item
            request = answer.get("UnprocessedKeys") or {}
    return items



def _summarise(stack: Any, submitted: dict[str, dict[str, Any]], statuses: dict[str, str],
               items: dict[str, dict[str, Any]], calls: list[Any], invocations: list[Any], started: float,
               submit_done: float, finished: float, cpu_start: Any, cpu_end: Any, profile: dict[str, Any] | None,
               dlq: int, submit_errors: list[str], jobs_total: int, options: Any) -> dict[str, Any]:
    from reelhook.adapters.jobs_table import from_dynamo

    latencies: dict[str, list[float]] = {}
    succeeded_at: list[float] = []
    sizes: list[int] = []
    polls: dict[str, list[int]] = {}
    webhook_lag: list[float] = []
    status_gets: Counter[str] = Counter()
    for entry in stack.sandbox.request_log:
        if entry.method == "GET" and "/files/" not in entry.path:
            status_gets[entry.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]] += 1
    final: Counter[str] = Counter()
    for job_id, meta in submitted.items():
        raw = items.get(job_id)
        if raw is None:
            final["missing"] += 1
            continue
        sizes.append(item_size(raw))
        job = from_dynamo(raw)
        final[job["status"]] += 1
        if job["status"] != "succeeded":
            continue
        done = next(e for e in job["events"] if e["status"] == "succeeded")
        succeeded_at.append(iso_epoch(done["at"]))
        task = stack.sandbox.tasks.get(job.get("provider_task_id", ""))
        if task is not None and task.completed_at is not None:
            latencies.setdefault(meta["provider"], []).append((iso_epoch(done["at"]) - task.completed_at) * 1000)
            # The sandbox records a delivery once its POST is answered (one sender thread, in order).
            webhook_lag += [(d.sent_at - task.completed_at) * 1000 for d in task.deliveries
                            if d.status == task.status]
        if task is not None and meta["provider"] != "freepik":
            polls.setdefault(meta["provider"], []).append(status_gets.get(task.task_id, 0))
    n = len(submitted)
    span = (max(succeeded_at) - started) if succeeded_at else math.nan
    lost = jobs_total - final["succeeded"]
    ops: Counter[str] = Counter()
    entries: Counter[str] = Counter()
    idle_receives = receives_with_messages = 0
    for call in calls:
        if call.origin not in ("lambda", "esm"):
            continue
        # From the local event plumbing only what AWS bills: SQS. (Stream reads by a Lambda trigger are free.)
        if call.origin == "esm" and call.service != "sqs":
            continue
        if call.operation == "ReceiveMessage":
            if call.messages:
                receives_with_messages += 1
            else:
                idle_receives += 1  # the local driver's empty polls; counted apart below
                continue
        suffix = " (rate limit)" if call.rate_limit else " (event plumbing)" if (
            call.origin == "esm" and call.operation == "SendMessage") else ""
        ops[call.name + suffix] += 1
        entries[call.name + suffix] += call.entries
    ops_per_job = {k: rnd(v / n, 3) for k, v in sorted(ops.items())}
    runs = Counter(i.function for i in invocations)
    durations = {f: [i.seconds * 1000 for i in invocations if i.function == f and not math.isnan(i.seconds)]
                 for f in runs}
    lambda_calls = [c for c in calls if c.origin == "lambda" and not math.isnan(c.seconds)]
    moto_latency: dict[str, dict[str, float]] = {}
    for name in sorted({c.name for c in lambda_calls}):
        values = [c.seconds * 1000 for c in lambda_calls if c.name == name]
        moto_latency[name] = {"n": len(values), "p50_ms": rnd(percentile(values, 50), 2),
                              "p99_ms": rnd(percentile(values, 99), 2)}
    handler_time = sum(i.seconds for i in invocations if not math.isnan(i.seconds))
    # Only calls on the invocation's own thread: the poller's checks and the part uploads run in pools,
    # and their summed time would exceed the wall time they overlap.
    own_thread = {i.id: i.thread for i in invocations}
    aws_time = sum(c.seconds for c in lambda_calls
                   if c.invocation in own_thread and c.thread == own_thread[c.invocation])
    wall = finished - started
    cpu = (cpu_end.user + cpu_end.system) - (cpu_start.user + cpu_start.system)
    result: dict[str, Any] = {
        "jobs": jobs_total,
        "mix": [p for p, _ in MIX],
        "options": {"sandbox_step_seconds": options.sandbox.step_seconds, "schedule_seconds": options.schedule_seconds,
                    "poll_base_seconds": options.poll_base_seconds, "poll_max_seconds": options.poll_max_seconds,
                    "transfer_workers": options.transfer_workers, "submitters": SUBMITTERS},
        "final_status": dict(final),
        "lost": lost,
        "dlq_messages": dlq,
        "submit_errors": len(submit_errors),
        "submit_error_examples": submit_errors[:3],
        "submit_seconds": rnd(submit_done - started, 2),
        "span_seconds": rnd(span, 2),
        "jobs_per_second": rnd(final["succeeded"] / span, 2) if span == span and span > 0 else math.nan,
        "submit_rate_per_second": rnd(n / (submit_done - started), 2),
        "completion_to_succeeded_ms": {
            p: {"n": len(v), "p50": rnd(percentile(v, 50), 1), "p99": rnd(percentile(v, 99), 1),
                "max": rnd(max(v), 1)} for p, v in sorted(latencies.items())},
        "completion_to_succeeded_all_ms": {
            "p50": rnd(percentile([x for v in latencies.values() for x in v], 50), 1),
            "p99": rnd(percentile([x for v in latencies.values() for x in v], 99), 1)},
        "polls_per_job": {p: rnd(median(v), 1) for p, v in polls.items()},
        "webhook_delivered_after_completion_ms": {"n": len(webhook_lag), "p50": rnd(percentile(webhook_lag, 50), 1),
                                                  "p99": rnd(percentile(webhook_lag, 99), 1)},
        "poller_passes": _poller_passes(invocations),
        "aws_requests_per_job": ops_per_job,
        "batch_entries_per_job": {k: rnd(v / n, 3) for k, v in sorted(entries.items()) if v != ops[k]},
        "dynamodb_per_job": rnd(sum(v for k, v in ops.items() if k.startswith("dynamodb:")) / n, 3),
        "sqs_per_job": rnd(sum(v for k, v in ops.items() if k.startswith("sqs:")) / n, 3),
        "esm_empty_receives": idle_receives,
        "esm_empty_receives_per_job": rnd(idle_receives / n, 3),
        "invocations": dict(runs),
        "invocations_per_job": {f: rnd(c / n, 3) for f, c in runs.items()},
        "durations_ms": {f: {"p50": rnd(percentile(v, 50), 1), "p99": rnd(percentile(v, 99), 1)}
                         for f, v in durations.items()},
        "moto_call_latency": moto_latency,
        "handler_seconds": rnd(handler_time, 1),
        "aws_call_seconds": rnd(aws_time, 1),
        "aws_share_of_handler_time": rnd(aws_time / handler_time, 3) if handler_time else math.nan,
        "process_cpu_cores": rnd(cpu / wall, 2),
        "profile": profile,
        "job_item_bytes_median": int(median(sizes)) if sizes else 0,
        "job_item_bytes_max": max(sizes) if sizes else 0,
    }
    return result


def _poller_passes(invocations: list[Any]) -> dict[str, Any]:
    """The schedule's passes, and the status checks they fanned out to the poll workers
    (one check per job in a worker's batch)."""
    passes = [i for i in invocations if i.function == "poller" and not math.isnan(i.seconds)]
    batches = [i for i in invocations if i.function == "pollworker" and not math.isnan(i.seconds) and i.job_ids]
    checked = sum(len(b.job_ids) for b in batches)
    seconds = sum(b.seconds for b in batches)
    return {"passes": len(passes), "worker_batches": len(batches), "jobs_checked": checked,
            "checks_per_second": rnd(checked / seconds, 2) if seconds else 0.0,
            "longest_batch_s": rnd(max((b.seconds for b in batches), default=0.0), 1)}


# ---------------------------------------------------------------------------- cost


def _memory_sizes() -> dict[str, int]:
    from reelhook_local.template import load_template

    template = load_template()
    default = int(template["Globals"]["Function"].get("MemorySize", 128))
    out = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            out[function_name(logical_id)] = int(resource["Properties"].get("MemorySize", default))
    return out


def _http_functions() -> set[str]:
    from reelhook_local.template import functions

    return {function_name(lid) for lid, fn in functions().items() if fn.routes}


def cost_estimate(result: dict[str, Any]) -> dict[str, Any]:
    """USD per 1,000 jobs on AWS from the measured request counts and handler durations."""
    memory = _memory_sizes()
    per_job = result["aws_requests_per_job"]
    inv = result["invocations_per_job"]
    size_kb = max(1, math.ceil(result["job_item_bytes_median"] / 1024))
    lines: list[dict[str, Any]] = []

    def line(item: str, quantity: float, unit_price: float, basis: str) -> None:
        lines.append({"item": item, "quantity_per_1000_jobs": rnd(quantity * 1000, 1),
                      "usd_per_1000_jobs": rnd(quantity * 1000 * unit_price, 5), "basis": basis})

    durations = {f: v["p50"] for f, v in result["durations_ms"].items()}
    durations |= {f: v["p50"] for f, v in result.get("durations_light_ms", {}).items()}
    lambda_gbs = 0.0
    for function, ms in durations.items():
        gb = memory.get(function, 128) / 1024
        lambda_gbs += inv.get(function, 0) * gb * math.ceil(ms) / 1000
    line("Lambda compute (GB-s)", lambda_gbs, PRICES["lambda_gb_second_x86"],
         "invocations/job × median duration without load (ms, rounded up: " +
         ", ".join(f"{f} {math.ceil(ms)}" for f, ms in sorted(durations.items())) + ") × MemorySize from "
         "template.yaml (" + ", ".join(f"{f} {memory.get(f, 128)} MB" for f in sorted(inv)) + ")")
    line("Lambda requests", sum(inv.values()), PRICES["lambda_request"],
         "every function's invocations: " + ", ".join(f"{f} {v:g}" for f, v in sorted(inv.items())) + " per job")
    http = _http_functions()
    api_requests = sum(v for f, v in inv.items() if f in http)
    line("API Gateway HTTP API requests", api_requests, PRICES["http_api_request"],
         f"invocations of the routed functions ({', '.join(sorted(http))}): POST /v1/jobs + webhooks; client GETs "
         "not included")
    job_writes = sum(v for k, v in per_job.items()
                     if k in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:TransactWriteItems"))
    rate_writes = per_job.get("dynamodb:UpdateItem (rate limit)", 0)
    table_wru = job_writes * size_kb + rate_writes
    line("DynamoDB writes (WRU), table", table_wru, PRICES["dynamodb_wru"],
         f"{job_writes:g} job writes/job at ≈{result['job_item_bytes_median']} B ⇒ {size_kb} WRU each, plus "
         f"{rate_writes:g} rate-limit ADDs at 1 WRU")
    gsi_wru = job_writes * size_kb
    line("DynamoDB writes (WRU), active-index (Projection ALL)", gsi_wru, PRICES["dynamodb_wru"],
         "every job write while the job is active is replicated to the GSI at the item's size (modelled, not "
         "an API call)")
    reads = per_job.get("dynamodb:GetItem", 0) * math.ceil(result["job_item_bytes_median"] / 4096)
    queries = per_job.get("dynamodb:Query", 0) * 0.5
    line("DynamoDB reads (RRU)", reads + queries, PRICES["dynamodb_rru"],
         "GetItem (strongly consistent, 4 KB units) + Query (≥ 0.5 RRU each; more when jobs are due)")
    sqs = sum(v for k, v in per_job.items() if k.startswith("sqs:"))
    line("SQS requests", sqs, PRICES["sqs_request"], "SendMessage + the mapping's receive and delete per message "
         "(idle long polls are a fixed monthly cost, below)")
    s3_puts = sum(v for k, v in per_job.items() if k in ("s3:PutObject", "s3:CreateMultipartUpload",
                                                         "s3:UploadPart", "s3:CompleteMultipartUpload"))
    line("S3 PUT-class requests", s3_puts, PRICES["s3_put"],
         "the sandbox's small sample video: 1 PutObject; a 100 MiB video is 1 + 13 + 1 = 15")
    batch = result.get("batch_entries_per_job", {})
    events = sum(batch.get(k, v) for k, v in per_job.items() if k.startswith("events:PutEvents"))
    if events:
        calls = sum(v for k, v in per_job.items() if k.startswith("events:PutEvents"))
        line("EventBridge custom events", events, PRICES["eventbridge_event"],
             f"PutEvents entries ({events:g}/job in {calls:g} calls/job), billed per entry")
    priced = ("dynamodb:", "sqs:", "s3:", "secretsmanager:", "events:PutEvents")
    unpriced = {k: v for k, v in per_job.items() if not k.startswith(priced)}
    line("Secrets Manager calls", per_job.get("secretsmanager:GetSecretValue", 0), PRICES["secretsmanager_call"],
         "once per instance per 5 minutes")
    line("X-Ray traces (Tracing: Active), upper bound", sum(inv.values()), PRICES["xray_trace"],
         "every invocation traced; default sampling (1/s + 5%) records far fewer")
    log_bytes = result.get("log_bytes_per_invocation", 0) + PLATFORM_LOG_BYTES
    line("CloudWatch Logs ingestion (GB)", sum(inv.values()) * log_bytes / 1024**3, PRICES["logs_gb"],
         f"{result.get('log_bytes_per_invocation', 0):.0f} B of Powertools logs + EMF metrics per invocation "
         f"(measured) + ≈{PLATFORM_LOG_BYTES} B of START/END/REPORT lines")
    total = sum(x["usd_per_1000_jobs"] for x in lines)
    alternatives = {}
    for mb in (128, 256, 512):
        gbs = sum(inv.get(f, 0) * (mb / 1024) * math.ceil(ms) / 1000 for f, ms in durations.items())
        alternatives[str(mb)] = rnd(gbs * 1000 * PRICES["lambda_gb_second_x86"], 5)
    poller_gb = memory.get("poller", 128) / 1024
    fixed_month = {
        "poller (1/min, 4 Query each, ≈100 ms)": rnd(43200 * (PRICES["lambda_request"] + poller_gb * 0.1 * PRICES[
            "lambda_gb_second_x86"]) + 43200 * 4 * 0.5 * PRICES["dynamodb_rru"], 3),
        "SQS event source mapping long polls (≈5 pollers × 3/min)": rnd(5 * 3 * 43200 * PRICES["sqs_request"], 3),
        "Secrets Manager secret": 0.40,
        f"CloudWatch custom metrics ({len(result.get('emf_metrics', []))} EMF metric names seen)":
            rnd(len(result.get("emf_metrics", [])) * CUSTOM_METRIC_MONTH, 2),
    }
    return {"prices": PRICES, "prices_date": PRICES_DATE, "lines": lines, "unpriced_requests_per_job": unpriced,
            "total_usd_per_1000_jobs": rnd(total, 4),
            "lambda_compute_if_all_functions_at_mb": alternatives, "fixed_usd_per_month": fixed_month}


# ---------------------------------------------------------------------------- report


def render(result: dict[str, Any]) -> str:
    opts = result["options"]
    final = result["final_status"]
    out = [
        "## 5. Scale",
        "",
        f"{result['jobs']} jobs through the local stack, a third each Freepik (signed webhooks), UniAll (polling), "
        f"AIHubMax (polling, the deployed default), submitted over HTTP by {opts['submitters']} client threads "
        "in a process of their own. "
        f"Sandbox step {opts['sandbox_step_seconds']} s (a generation = 2 steps), poller every "
        f"{opts['schedule_seconds']} s, poll backoff {opts['poll_base_seconds']}–{opts['poll_max_seconds']} s, "
        f"{opts['transfer_workers']} transfer workers (`StackOptions`). Every job and client is warmed first.",
        "",
    ]
    lat = result["completion_to_succeeded_ms"]
    rows = [
        ["jobs succeeded", f"{final.get('succeeded', 0)} / {result['jobs']}", "all", verdict(result["lost"] == 0)],
        ["lost jobs (not succeeded; DLQ)", f"{result['lost']} ({result['dlq_messages']} in DLQ)", "0",
         verdict(result["lost"] == 0)],
        ["throughput", f"{result['jobs_per_second']:.1f} jobs/s over {result['span_seconds']:.0f} s",
         f"≥ {TARGET_JOBS_PER_SECOND:.0f} jobs/s (full run)", _throughput_verdict(result)],
        ["submission", f"{result['submit_rate_per_second']:.1f} jobs/s ({result['submit_seconds']:.0f} s)",
         "(report)", "n/a"],
        ["provider completion → succeeded, all", f"p50 {result['completion_to_succeeded_all_ms']['p50']:.0f} ms, "
         f"p99 {result['completion_to_succeeded_all_ms']['p99']:.0f} ms", "(report)", "n/a"],
    ]
    for provider, v in lat.items():
        rows.append([f"  … {provider}", f"p50 {v['p50']:.0f} ms, p99 {v['p99']:.0f} ms (n={v['n']})", "(report)",
                     "n/a"])
    hook = result.get("webhook_delivered_after_completion_ms")
    if hook and hook["n"]:
        rows.append(["  … of which Freepik's webhook reached reelhook", f"p50 {hook['p50']:.0f} ms, p99 "
                     f"{hook['p99']:.0f} ms after completion (the sandbox sends them one at a time)", "(report)",
                     "n/a"])
    burst = result.get("front_burst")
    if burst:
        rows.append([f"{burst['clients']} clients POST at once: time to 202",
                     f"p50 {burst['p50_ms']:.0f} ms, p99 {burst['p99_ms']:.0f} ms ({burst['accepted']} / "
                     f"{burst['clients']} accepted)", f"p99 ≤ {TARGET_FRONT_P99_MS} ms", _front_verdict(burst)])
    passes = result.get("poller_passes")
    if passes:
        rows.append(["status checks", f"{passes['jobs_checked']} in {passes.get('worker_batches', 0)} poll-worker "
                     f"batches ({passes['passes']} schedule passes), {passes['checks_per_second']:.1f} checks/s "
                     f"per worker, longest batch {passes.get('longest_batch_s', 0):.1f} s", "(report)", "n/a"])
    rows += [
        ["DynamoDB requests per job", f"{result['dynamodb_per_job']:.2f}", "(report)", "n/a"],
        ["SQS requests per job", f"{result['sqs_per_job']:.2f} (+ {result['esm_empty_receives_per_job']:.2f} empty "
         "receives by the local queue drivers, not counted)", "(report)", "n/a"],
    ]
    out.append(table(["figure", "measured", "target", "result"], rows, "llll"))
    out.append("")
    out.append("AWS requests per job (everything the functions and the queue mapping did during the run, idle poller "
               "passes included): " + ", ".join(f"{k} {v:g}" for k, v in result["aws_requests_per_job"].items())
               + ". Invocations per job: " + ", ".join(f"{k} {v:g}" for k, v in result["invocations_per_job"].items())
               + ". Polls per polled job (median): " + ", ".join(f"{k} {v:g}" for k, v in
                                                                 result["polls_per_job"].items()) + ".")
    out.append("")
    out.append("**Where the time goes.** " + _bottleneck_text(result))
    out.append("")
    lat_rows = [[k, v["n"], v["p50_ms"], v["p99_ms"]] for k, v in result["moto_call_latency"].items()]
    out.append(table(["AWS call (as the handlers saw it)", "n", "p50 ms", "p99 ms"], lat_rows))
    out.append("")
    light = result.get("durations_light_ms", {})
    d_rows = [[f, result["invocations"].get(f, 0), v["p50"], v["p99"], light.get(f, {}).get("p50", math.nan)]
              for f, v in result["durations_ms"].items()]
    out.append(table(["function", "invocations", "duration p50 ms (under load)", "p99 ms (under load)",
                      "p50 ms without load (3 jobs)"], d_rows))
    out.append("")
    out.append(render_cost(result["cost"]))
    return "\n".join(out)


def _bottleneck_text(result: dict[str, Any]) -> str:
    moto = result.get("moto", {})
    parts = [f"The process used {result['process_cpu_cores']:.2f} of the machine's 2 cores on average; the handlers "
             f"spent {result['aws_share_of_handler_time'] * 100:.0f}% of their time inside AWS calls (to moto's "
             f"server)."]
    if moto.get("requests"):
        parts.append(
            f"moto's servers (DynamoDB in one process, the other services in another: one GIL each) answered "
            f"{moto['requests_per_second']:.0f} requests/s at {moto['cpu_ms_per_request']:.1f} ms of CPU each; "
            f"its process used {moto['process_cpu_cores']:.2f} cores. DynamoDB requests take one lock and "
            f"SQS requests another (`AtomicMotoServer`). Its CPU by operation: " + ", ".join(
                f"{k} {v * 100:.0f}%" for k, v in moto["cpu_share_by_operation"].items()) + ".")
    profile = result.get("profile")
    if profile and "share" in profile:
        share = ", ".join(f"{k} {v * 100:.0f}%" for k, v in profile["share"].items())
        handler = ", ".join(f"{k} {v * 100:.0f}%" for k, v in profile["handler_share"].items())
        parts.append(f"py-spy, GIL-holding samples ({profile['samples']}): {share}. Inside the handlers: {handler}.")
    elif profile:
        parts.append(f"(py-spy failed: {profile.get('error', '')})")
    else:
        parts.append("(py-spy not installed: `uv pip install py-spy` for the GIL profile.)")
    return " ".join(parts)


def render_cost(cost: dict[str, Any]) -> str:
    rows = [[x["item"], x["quantity_per_1000_jobs"], f"${x['usd_per_1000_jobs']:.4f}", x["basis"]]
            for x in cost["lines"]]
    rows.append(["**total**", "", f"**${cost['total_usd_per_1000_jobs']:.4f}**", ""])
    prices = cost["prices"]
    alt = cost["lambda_compute_if_all_functions_at_mb"]
    fixed = cost["fixed_usd_per_month"]
    return "\n".join([
        "### Estimated AWS cost per 1,000 jobs (us-east-1)",
        "",
        f"From the request counts and median durations measured above. Prices: {cost['prices_date']}: Lambda "
        f"x86 ${prices['lambda_gb_second_x86']:.10f}/GB-s + $0.20/M requests; HTTP API $1.00/M; DynamoDB "
        "on-demand $0.625/M WRU, $0.125/M RRU; SQS $0.40/M; S3 PUT $0.005/1k, GET $0.0004/1k; Secrets Manager "
        "$0.05/10k calls; X-Ray $5/M traces; EventBridge $1/M events; CloudWatch Logs $0.50/GB, custom metrics "
        "$0.30 each a month. Free tiers ignored."
        + (f" Requests not priced here: {cost['unpriced_requests_per_job']}." if cost.get("unpriced_requests_per_job")
           else ""),
        "",
        table(["item", "quantity / 1,000 jobs", "USD / 1,000 jobs", "basis"], rows, "lrrl"),
        "",
        "Lambda compute if every function had the same memory (durations unchanged; in reality more memory buys "
        "CPU and shortens them): " + ", ".join(f"{mb} MB ${v:.4f}" for mb, v in alt.items()) + " per 1,000 jobs.",
        "",
        "Fixed monthly costs whatever the volume: " + ", ".join(f"{k} ${v:.2f}" for k, v in fixed.items()) + ". "
        "Not included: S3 storage of the videos ($0.023/GB-month), data transfer out to clients, and the "
        "providers' own prices (by far the largest cost of a job).",
        "",
    ])


def _throughput_verdict(result: dict[str, Any]) -> str:
    if result["jobs"] < FULL_RUN_JOBS:
        return "n/a"
    return verdict(result["lost"] == 0 and result["jobs_per_second"] >= TARGET_JOBS_PER_SECOND)


def _front_verdict(burst: dict[str, Any]) -> str:
    return verdict(burst["accepted"] == burst["clients"] and burst["p99_ms"] <= TARGET_FRONT_P99_MS)


def summary_rows(result: dict[str, Any]) -> list[list[Any]]:
    lat = result["completion_to_succeeded_all_ms"]
    burst = result.get("front_burst")
    front = [[f"{burst['clients']} clients POST at once: p99 time to 202", f"{burst['p99_ms']:.0f} ms",
              f"≤ {TARGET_FRONT_P99_MS} ms", _front_verdict(burst)]] if burst else []
    return [
        [f"scale {result['jobs']} jobs: lost", str(result["lost"]), "0", verdict(result["lost"] == 0)],
        [f"scale {result['jobs']} jobs: throughput", f"{result['jobs_per_second']:.1f} jobs/s",
         f"≥ {TARGET_JOBS_PER_SECOND:.0f} jobs/s (full run)", _throughput_verdict(result)],
        *front,
        [f"scale {result['jobs']} jobs: completion → succeeded", f"p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms",
         "(report)", "n/a"],
        [f"scale {result['jobs']} jobs: DynamoDB / SQS requests per job",
         f"{result['dynamodb_per_job']:.2f} / {result['sqs_per_job']:.2f}", "(report)", "n/a"],
        ["cost per 1,000 jobs (AWS, us-east-1)", f"${result['cost']['total_usd_per_1000_jobs']:.3f}", "(report)",
         "n/a"],
    ]

