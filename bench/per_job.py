"""3. AWS requests per job: every AWS request from submit to ``succeeded``, by service and operation.

Runs the local stack (moto's server as AWS, the local front, the SQS and schedule drivers, the
provider sandbox) in this process. Every handler the front and the drivers call is wrapped so
each invocation is recorded, and every botocore session gets event hooks, so each AWS call is
known with its operation, the invocation it belongs to and the job ids in its parameters.

A job's cost is the calls of every invocation that touched the job (named it in its event, its
answer or an AWS call's parameters), plus the SQS event source mapping's receive and delete of
its message (billed to the account on AWS), plus part uploads made from the transfer's thread
pool. Jobs run one at a time, so a poller pass's index queries are charged to the job it checked;
passes that found nothing due are reported as the fixed cost of the schedule.

Two runs:

- **fast**: sandbox steps of 0.2 s, the stack's fast polling (1-2 s), one job at a time;
- **deployed cadence**: a 3-minute generation with the deployed schedule (poller every minute,
  poll backoff 15 s doubling to 120 s, reconciler after 900 s) with time compressed 15×
  (schedule 4 s, backoff 1→8 s, reconciler 60 s, sandbox step 6 s ⇒ 12 s for submitted → running
  → completed), to compare with a naive poll-every-10-seconds design.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.common import (
    AwsCalls,
    Call,
    Invocation,
    install_handler_wrappers,
    median,
    progress,
    restore_handlers,
    rnd,
    say,
    table,
)

NAME = "requests"
IMG = "https://example.com/ref.png"
JOBS = {
    "freepik (veo, webhook on completion)": {"model": "freepik/veo-3-1-reference-to-video", "prompt": "walk",
                                             "reference_images": [IMG]},
    "freepik (wan, webhook on every change)": {"model": "freepik/wan-2-7-reference-to-video",
                                               "prompt": "Image 1 walks", "reference_images": [IMG]},
    "uniall (poll only)": {"model": "uniall/veo3.1-video-720p", "prompt": "a lighthouse at dusk"},
    "aihubmax (poll; deployed default)": {"model": "aihubmax/veo-3.1-reference-to-video", "prompt": "wave",
                                          "reference_images": [IMG]},
    # The logical model, served by its first route (Freepik Veo): against the Freepik row above,
    # what routing costs a job that never fails over.
    "logical veo-3.1 (first route: freepik)": {"model": "veo-3.1/reference-to-video", "prompt": "walk",
                                               "reference_images": [IMG]},
}
AIHUBMAX_CALLBACKS = "aihubmax (unsigned callback + confirming GET)"
CADENCE_SCALE = 15


@dataclass
class JobCost:
    label: str
    job_id: str
    task_id: str
    seconds: float
    aws: Counter[str]  # service:operation -> requests (lambda + event source mapping)
    esm: Counter[str]
    invocations: Counter[str]
    durations_ms: dict[str, list[float]]
    provider_requests: Counter[str]
    webhooks: int
    status: str


def bench_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name="us-east-1",
                                          aws_access_key_id="local", aws_secret_access_key="local")


def start_stack(*, fast: bool, aihubmax_callbacks: bool, scale: int = CADENCE_SCALE) -> Any:
    from reelhook_local.sandbox import SandboxConfig
    from reelhook_local.stack import LocalStack, StackOptions

    if fast:
        options = StackOptions(sandbox=SandboxConfig(step_seconds=0.2), schedule_seconds=0.5,
                               poll_base_seconds=1, poll_max_seconds=2, reconcile_after_seconds=60,
                               transfer_workers=2, aihubmax_callbacks=aihubmax_callbacks)
    else:
        options = StackOptions(sandbox=SandboxConfig(step_seconds=180 / 2 / scale), schedule_seconds=60 / scale,
                               poll_base_seconds=max(1, 15 // scale), poll_max_seconds=max(1, 120 // scale),
                               reconcile_after_seconds=900 // scale, transfer_workers=2,
                               aihubmax_callbacks=aihubmax_callbacks)
    return LocalStack(options).start()


def wait_done(ddb: Any, table_name: str, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        item = ddb.get_item(TableName=table_name, Key={"pk": {"S": f"job#{job_id}"}}, ConsistentRead=True)["Item"]
        status = item["status"]["S"]
        if status in ("succeeded", "failed") or time.monotonic() > deadline:
            return {"status": status, "item": item}
        time.sleep(0.05)


def attribute(job_ids: set[str], calls: list[Call], invocations: list[Invocation]) -> dict[str, Any]:
    """Charge calls to jobs: each invocation's calls go to the jobs it touched, split evenly."""
    by_invocation: dict[int, list[Call]] = {}
    for call in calls:
        if call.invocation is not None:
            by_invocation.setdefault(call.invocation, []).append(call)
    charged: dict[str, Counter[str]] = {job: Counter() for job in job_ids}
    fractional: dict[str, dict[str, float]] = {job: {} for job in job_ids}
    runs: dict[str, Counter[str]] = {job: Counter() for job in job_ids}
    durations: dict[str, dict[str, list[float]]] = {job: {} for job in job_ids}
    idle: Counter[str] = Counter()
    idle_runs: Counter[str] = Counter()
    for invocation in invocations:
        touched = invocation.job_ids & job_ids
        own = by_invocation.get(invocation.id, [])
        if not touched:
            idle_runs[invocation.function] += 1
            idle.update(c.name for c in own)
            continue
        share = 1 / len(touched)
        for job in touched:
            runs[job][invocation.function] += 1
            durations[job].setdefault(invocation.function, []).append(invocation.seconds * 1000)
            for call in own:
                fractional[job][call.name] = fractional[job].get(call.name, 0.0) + share
    # Part uploads run on the transfer's own threads, outside the invocation's thread.
    for call in calls:
        if call.invocation is None and call.origin == "lambda":
            for job in call.job_ids & job_ids:
                fractional[job][call.name] = fractional[job].get(call.name, 0.0) + 1
    # The event source mapping: the receive that returned the job's message, and its delete.
    esm: dict[str, Counter[str]] = {job: Counter() for job in job_ids}
    idle_receives = 0
    receive_threads: dict[str, str] = {}
    for call in calls:
        if call.origin != "esm":
            continue
        if call.operation == "ReceiveMessage":
            returned = call.returned_jobs & job_ids
            if not returned:
                idle_receives += 1
            for job in returned:
                esm[job]["sqs:ReceiveMessage"] += 1
                receive_threads[call.thread] = job
        elif call.operation == "DeleteMessage" and call.thread in receive_threads:
            esm[receive_threads[call.thread]]["sqs:DeleteMessage"] += 1
        elif call.operation == "SendMessage":  # the local stand-in for EventBridge -> SQS and the like
            for job in call.job_ids & job_ids:
                esm[job]["sqs:SendMessage (event plumbing)"] += 1
    for job in job_ids:
        charged[job] = Counter({k: round(v, 3) for k, v in fractional[job].items()})
    return {"charged": charged, "esm": esm, "runs": runs, "durations": durations, "idle": idle,
            "idle_runs": idle_runs, "idle_receives": idle_receives}


def run_jobs(stack: Any, recorder: AwsCalls, bodies: dict[str, dict[str, Any]], *, sequential: bool,
             timeout: float, settle: float, advance: Any = None) -> tuple[list[JobCost], dict[str, Any]]:
    import httpx

    ddb = bench_client("dynamodb", stack.endpoint_for("dynamodb"))
    table_name = stack.resources.table_name
    mark = recorder.snapshot()
    log_mark = len(stack.sandbox.request_log)
    started = time.monotonic()
    created: dict[str, tuple[str, dict[str, Any], float]] = {}

    def one(label: str, body: dict[str, Any]) -> None:
        t0 = time.monotonic()
        with httpx.Client(base_url=stack.api_url, timeout=30) as api:
            answer = api.post("/v1/jobs", json=body)
        answer.raise_for_status()
        job = answer.json()
        done = wait_done(ddb, table_name, job["id"], timeout)
        created[label] = (job["id"], done, time.monotonic() - t0)
        if advance:
            advance(1)

    if sequential:
        for label, body in bodies.items():
            one(label, body)
    else:
        with ThreadPoolExecutor(len(bodies)) as pool:
            list(pool.map(lambda kv: one(*kv), bodies.items()))
    time.sleep(settle)  # trailing deletes from the event source mapping
    calls, invocations = recorder.since(mark)
    elapsed = time.monotonic() - started
    job_ids = {job_id for job_id, _, _ in created.values()}
    split = attribute(job_ids, calls, invocations)
    log = stack.sandbox.request_log[log_mark:] if len(stack.sandbox.request_log) > log_mark else []
    results = []
    for label, (job_id, done, seconds) in created.items():
        item = done["item"]
        task_id = item.get("provider_task_id", {}).get("S", "")
        task = stack.sandbox.tasks.get(task_id)
        provider_requests: Counter[str] = Counter()
        creates = []
        for entry in log:
            path = entry.path.split("?")[0]
            if task_id and task_id in path:
                kind = "GET result file" if "/files/" in path else f"{entry.method} status"
                provider_requests[kind] += 1
            elif task and entry.method == "POST" and path == f"/{task.provider}{task.path}":
                creates.append(abs(entry.at - task.created_at))
        if creates and min(creates) < 2.0:
            provider_requests["POST create"] += 1
        results.append(JobCost(
            label=label, job_id=job_id, task_id=task_id, seconds=seconds,
            aws=split["charged"][job_id], esm=split["esm"][job_id], invocations=split["runs"][job_id],
            durations_ms=split["durations"][job_id], provider_requests=provider_requests,
            webhooks=len(task.deliveries) if task else 0, status=done["status"],
        ))
    idle = {"elapsed_s": elapsed, "idle_runs": dict(split["idle_runs"]), "idle_calls": dict(split["idle"]),
            "idle_receives": split["idle_receives"]}
    return results, idle


def _job_dict(cost: JobCost) -> dict[str, Any]:
    aws = Counter(cost.aws)
    aws.update(cost.esm)
    return {
        "status": cost.status,
        "seconds": rnd(cost.seconds, 2),
        "aws": dict(sorted(aws.items())),
        "aws_total": rnd(sum(aws.values()), 2),
        "by_service": _by_service(aws),
        "esm": dict(cost.esm),
        "invocations": dict(cost.invocations),
        "durations_ms": {k: [rnd(v, 1) for v in vs] for k, vs in cost.durations_ms.items()},
        "provider_requests": dict(cost.provider_requests),
        "webhooks_received": cost.webhooks,
    }


def _by_service(aws: Counter[str]) -> dict[str, float]:
    out: Counter[str] = Counter()
    for name, count in aws.items():
        out[name.split(":")[0]] += count
    return {k: rnd(v, 2) for k, v in sorted(out.items())}


def run(quick: bool) -> dict[str, Any]:
    from reelhook_local.stack import LocalStack

    repeats = 1 if quick else 3
    result: dict[str, Any] = {"repeats": repeats, "fast": {}, "cadence": None}
    recorder = AwsCalls().install()
    try:
        install_handler_wrappers(recorder)
        with progress("requests per job (local stack)", repeats * (len(JOBS) + 1)) as advance:
            for callbacks in (False, True):
                stack = start_stack(fast=True, aihubmax_callbacks=callbacks)
                try:
                    bodies = dict(JOBS) if not callbacks else {AIHUBMAX_CALLBACKS: JOBS[
                        "aihubmax (poll; deployed default)"]}
                    run_jobs(stack, recorder, bodies, sequential=True, timeout=30, settle=0.3)  # warm-up
                    for _ in range(repeats):
                        costs, idle = run_jobs(stack, recorder, bodies, sequential=True, timeout=30, settle=1.0,
                                               advance=advance)
                        for cost in costs:
                            result["fast"].setdefault(cost.label, []).append(_job_dict(cost))
                        if not callbacks:
                            result.setdefault("idle_fast", []).append(idle)
                finally:
                    stack.stop()
        if not quick:
            say(f"  deployed cadence, 3-minute generation compressed {CADENCE_SCALE}×...")
            stack = start_stack(fast=False, aihubmax_callbacks=False)
            try:
                bodies = {k: v for k, v in JOBS.items() if "wan" not in k}
                with progress("3-minute generations (compressed)", len(bodies)) as advance:
                    costs, idle = run_jobs(stack, recorder, bodies, sequential=False, timeout=120, settle=1.0,
                                           advance=advance)
                result["cadence"] = {"scale": CADENCE_SCALE, "jobs": {c.label: _job_dict(c) for c in costs},
                                     "idle": idle}
            finally:
                stack.stop()
    finally:
        restore_handlers()
        recorder.uninstall()
        LocalStack._reset_caches()
    result["summary"] = _summary(result)
    return result


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """Median per label of each count across repeats, and median durations per function."""
    summary: dict[str, Any] = {}
    durations: dict[str, list[float]] = {}
    for label, runs in result["fast"].items():
        names = set().union(*(r["aws"] for r in runs))
        summary[label] = {
            "aws": {n: rnd(median(r["aws"].get(n, 0) for r in runs), 2) for n in sorted(names)},
            "invocations": {f: median(r["invocations"].get(f, 0) for r in runs)
                            for f in set().union(*(r["invocations"] for r in runs))},
            "provider_requests": {k: median(r["provider_requests"].get(k, 0) for r in runs)
                                  for k in set().union(*(r["provider_requests"] for r in runs))},
            "webhooks_received": median(r["webhooks_received"] for r in runs),
            "all_succeeded": all(r["status"] == "succeeded" for r in runs),
        }
        summary[label]["aws_total"] = rnd(sum(summary[label]["aws"].values()), 2)
        for r in runs:
            for function, values in r["durations_ms"].items():
                durations.setdefault(function, []).extend(values)
    return {"jobs": summary, "durations_ms_median": {f: rnd(median(v), 1) for f, v in durations.items()},
            "durations_ms_n": {f: len(v) for f, v in durations.items()}}


# ---------------------------------------------------------------------------- naive design

NAIVE = {
    "description": (
        "The naive design polls every job every 10 s from a scheduled Lambda (one invocation per job per "
        "poll) until the provider says it is done: each poll reads the job (GetItem), asks the provider "
        "(GET) and writes the poll's outcome (UpdateItem). The api invocation writes the job (PutItem) and "
        "submits. The poll that sees completion downloads the video to /tmp and uploads it (one PutObject "
        "for a small file; CreateMultipartUpload + parts + Complete for a large one), then writes the "
        "final state (UpdateItem). No webhooks, no queue."),
    "per_job_3min": {
        "lambda_invocations": 1 + 18,
        "dynamodb:PutItem": 1, "dynamodb:GetItem": 18, "dynamodb:UpdateItem": 18 + 1,
        "s3:PutObject": 1, "provider GET status": 18, "provider GET result": 1,
    },
}


def _aws_count(aws: dict[str, float], service: str) -> float:
    return sum(v for k, v in aws.items() if k.startswith(service + ":"))


def render(result: dict[str, Any]) -> str:
    summary = result["summary"]["jobs"]
    out = [
        "## 3. AWS requests per job",
        "",
        f"Local stack (moto server, front, drivers, sandbox with 0.2 s steps), one job at a time, median of "
        f"{result['repeats']} job(s) per row. Counted by botocore hooks and handler wrappers; a job is "
        "charged every call of every invocation that touched it, plus the SQS event source mapping's receive "
        "and delete of its message (billed on AWS), plus part uploads. Client reads of `GET /v1/jobs/{id}` are "
        "not included (they depend on the client; each is 1 api invocation + 1 GetItem).",
        "",
    ]
    ops = sorted(set().union(*(s["aws"] for s in summary.values())))
    rows = []
    for op in ops:
        rows.append([f"`{op}`", *[s["aws"].get(op, 0) for s in summary.values()]])
    rows.append(["**AWS requests, total**", *[f"**{s['aws_total']:g}**" for s in summary.values()]])
    functions = ["api", "callback", "transfer", "poller"]
    functions += sorted(set().union(*(s["invocations"] for s in summary.values())) - set(functions))
    for function in functions:
        rows.append([f"{function} invocations", *[s["invocations"].get(function, 0) for s in summary.values()]])
    kinds = sorted(set().union(*(s["provider_requests"] for s in summary.values())))
    for kind in kinds:
        rows.append([f"provider: {kind}", *[s["provider_requests"].get(kind, 0) for s in summary.values()]])
    rows.append(["webhooks received", *[s["webhooks_received"] for s in summary.values()]])
    rows.append(["succeeded", *["yes" if s["all_succeeded"] else "NO" for s in summary.values()]])
    out.append(table(["per job", *summary.keys()], rows))
    out.append("")
    idle = result.get("idle_fast") or []
    if idle:
        first = idle[0]
        runs = first["idle_runs"].get("poller", 0)
        calls = first["idle_calls"]
        per_run = {k: rnd(v / runs, 2) for k, v in calls.items()} if runs else {}
        out.append(f"Fixed cost of the schedule: a poller pass that finds nothing due makes "
                   f"{', '.join(f'{v:g} `{k}`' for k, v in per_run.items()) or 'no calls'} "
                   f"(one query per active-index shard); deployed, that is every minute whatever the load. "
                   f"The local queue driver's empty receives ({first['idle_receives']} in "
                   f"{first['elapsed_s']:.0f} s here: it short-polls every 0.1 s per worker) stand in for the event "
                   "source mapping's long polls, which AWS bills too (a few per minute per queue).")
        out.append("")
    durations = result["summary"]["durations_ms_median"]
    out.append("Median handler durations in these runs (local, moto server over HTTP): " + ", ".join(
        f"{f} {v:.0f} ms" for f, v in sorted(durations.items())) + ".")
    out.append("")
    cadence = result.get("cadence")
    naive = NAIVE["per_job_3min"]
    out.append("### Against a naive poll-every-10-s design (3-minute generation)")
    out.append("")
    out.append(NAIVE["description"])
    out.append("")
    if cadence:
        jobs = cadence["jobs"]
        header = ["per 3-minute job", "naive (defined above)", *jobs.keys()]
        naive_ddb = naive["dynamodb:PutItem"] + naive["dynamodb:GetItem"] + naive["dynamodb:UpdateItem"]
        measured = list(jobs.values())
        rows = [
            ["Lambda invocations", naive["lambda_invocations"], *[sum(j["invocations"].values()) for j in measured]],
            ["DynamoDB requests", naive_ddb, *[_aws_count(j["aws"], "dynamodb") for j in measured]],
            ["… of which active-index `Query`", 0, *[j["aws"].get("dynamodb:Query", 0) for j in measured]],
            ["SQS requests", 0, *[_aws_count(j["aws"], "sqs") for j in measured]],
            ["S3 requests", naive["s3:PutObject"], *[_aws_count(j["aws"], "s3") for j in measured]],
            ["Secrets Manager requests", "0 (cached)", *[_aws_count(j["aws"], "secretsmanager") for j in measured]],
            ["provider status GETs", naive["provider GET status"],
             *[j["provider_requests"].get("GET status", 0) for j in measured]],
            ["webhooks received", 0, *[j["webhooks_received"] for j in measured]],
            ["total AWS requests", naive_ddb + naive["s3:PutObject"], *[j["aws_total"] for j in measured]],
        ]
        out.append(f"Measured with the deployed cadence (poller every minute; poll backoff 15 s doubling to 120 s; "
                   f"reconciler after 900 s) and time compressed {cadence['scale']}× in the local stack; the three "
                   "jobs ran together, so a poller pass that checked two of them is split between them. A pass's "
                   "`Query` calls (one per active-index shard) are charged to the jobs it checked: with one or two "
                   "jobs in flight that is most of a polled job's DynamoDB count, with many jobs due they are shared. "
                   "The stack starts cold, so the first job also pays the secret fetch.")
        out.append("")
        out.append(table(header, rows))
        out.append("")
    else:
        out.append("(The deployed-cadence comparison runs in the full suite only.)")
        out.append("")
    return "\n".join(out)


def summary_rows(result: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for label, s in result["summary"]["jobs"].items():
        services = _by_service(Counter(s["aws"]))
        rows.append([f"AWS requests/job, {label}",
                     f"{s['aws_total']:g} (" + ", ".join(f"{k} {v:g}" for k, v in services.items()) + ")",
                     "(report)", "✅ succeeded" if s["all_succeeded"] else "❌ not all succeeded"])
    return rows
