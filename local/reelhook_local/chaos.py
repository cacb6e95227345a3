"""``make chaos``: many jobs through the local stack with every fault switched on.

Webhooks arrive 1-3 times, shuffled, some dropped, with forged ones interleaved; provider
APIs answer 429/5xx; result links answer one-off 403s, HTML pages, empty, short or
non-video bodies; some tasks never finish, some answer 404 for ever, some serve non-video
bytes on every GET; the notifier is killed for some jobs. The run then checks that every
job ended where its own history says it must, that every stored video equals what the
sandbox served and parses as a video (PyAV, as the transfer inspects it), that no forged or
replayed delivery changed anything, that S3 holds exactly the outputs (and posters) of the
succeeded jobs, that no job is left non-terminal, and that nothing is lost.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from reelhook.services import media_check
from reelhook.states import TERMINAL
from reelhook_local.emf import METRICS_FILE
from reelhook_local.sandbox import Faults, SandboxConfig, Task
from reelhook_local.sandbox.tasks import NOT_VIDEO_MARKER
from reelhook_local.stack import LocalStack, StackOptions

IMG, IMG2, VID = "https://example.com/a.png", "https://example.com/b.png", "https://example.com/m.mp4"
JOB_SHAPES: list[dict[str, Any]] = [
    {"model": "freepik/veo-3-1-reference-to-video", "reference_images": [IMG]},
    {"model": "freepik/wan-2-7-reference-to-video", "reference_images": [IMG], "reference_videos": [VID]},
    {"model": "freepik/kling-v3-omni-pro-video-reference", "reference_videos": [VID]},
    {"model": "freepik/kling-v3-omni-std-video-reference", "reference_videos": [VID], "first_frame": IMG},
    {"model": "uniall/veo3.1-video-720p"},
    {"model": "uniall/veo3.1-fast-video-4k", "first_frame": IMG, "last_frame": IMG2},
    {"model": "uniall/veo3.1-video-1080p", "reference_images": [IMG, IMG2]},
    {"model": "aihubmax/veo-3.1-reference-to-video", "reference_images": [IMG]},
    {"model": "aihubmax/veo-3.1-fast-reference-to-video", "reference_images": [IMG, IMG2]},
]
FORGED_OK = {400, 401, 404, 413}
# Unsigned callbacks are only a hint: reelhook applies what the provider's own GET says, so a
# forged AIHubMax callback may be answered "applied" without its content mattering.
CONFIRMED_BY_GET = ("/v1/callbacks/aihubmax/",)


@dataclass
class ChaosReport:
    jobs: int = 0
    stored: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    wrong_state: list[str] = field(default_factory=list)
    bad_bytes: list[str] = field(default_factory=list)
    not_video: list[str] = field(default_factory=list)  # stored objects that do not parse as what they claim
    videos_checked: int = 0  # stored videos opened with media_check.inspect (PyAV)
    posters_checked: int = 0  # stored posters decoded as JPEG
    non_terminal: list[str] = field(default_factory=list)  # jobs in the table not succeeded/failed/cancelled
    expected: Counter[str] = field(default_factory=Counter)  # final states the injected faults imply
    forged_effective: list[str] = field(default_factory=list)
    unexpected_objects: list[str] = field(default_factory=list)
    pending_uploads: int = 0
    dlq_unexpected: list[str] = field(default_factory=list)
    # Finished jobs whose event never reached the bus (the notifier is killed for some).
    events_missing: list[str] = field(default_factory=list)
    notifier_records_dropped: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    forged: int = 0
    dropped: int = 0
    deliveries: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.wrong_state or self.bad_bytes or self.not_video or self.forged_effective
                    or self.unexpected_objects or self.pending_uploads or self.dlq_unexpected
                    or self.events_missing or self.non_terminal)

    def table(self) -> Table:
        table = Table(title=f"Chaos run: {self.jobs} jobs in {self.seconds:.0f} s")
        table.add_column("measure")
        table.add_column("value", justify="right")
        faults = self.faults
        rows = [
            ("jobs", self.jobs), ("webhook deliveries (incl. copies)", self.deliveries),
            ("duplicate webhook copies", faults.get("webhook_duplicates", 0)),
            ("webhooks dropped", self.dropped), ("forged deliveries", self.forged),
            ("provider API faults (429/5xx)", faults.get("api_faults", 0)),
            ("result GETs: empty body (200, Content-Length 0)", faults.get("empty_bodies", 0)),
            ("result GETs: short body (cut before Content-Length)", faults.get("truncated", 0)),
            ("result GETs: one-off 403", faults.get("expired", 0)),
            ("result GETs: HTML page", faults.get("html_answers", 0)),
            ("result GETs: non-video bytes", faults.get("not_video_bodies", 0)),
            ("result GETs: stalled", faults.get("stalled", 0)),
            ("tasks non-video on every GET", faults.get("tasks_not_video", 0)),
            ("tasks that never finish", faults.get("tasks_never_finishing", 0)),
            ("tasks 404 for ever", faults.get("tasks_vanished", 0)),
            ("  their status GETs answered 404", faults.get("task_missing_404s", 0)),
            ("notifier killed: stream records dropped", self.notifier_records_dropped),
            ("succeeded (sha256 verified)", self.stored),
        ]
        rows += [(f"failed: {reason}", count) for reason, count in sorted(self.failed.items())]
        rows += [("expected final states", ", ".join(f"{k} {v}" for k, v in sorted(self.expected.items()))),
                 ("wrong final state", len(self.wrong_state)),
                 ("stored videos opened with PyAV", self.videos_checked),
                 ("stored posters decoded as JPEG", self.posters_checked),
                 ("stored objects that are no video (or poster)", len(self.not_video)),
                 ("forged deliveries that changed state", len(self.forged_effective)),
                 ("bytes not as served", len(self.bad_bytes)),
                 ("unexpected S3 objects", len(self.unexpected_objects)),
                 ("unfinished multipart uploads", self.pending_uploads),
                 ("unexpected DLQ messages", len(self.dlq_unexpected)),
                 ("job events missing from the bus", len(self.events_missing)),
                 ("jobs left non-terminal", len(self.non_terminal)), ("LOST", len(self.lost))]
        for name, value in rows:
            table.add_row(name, str(value))
        return table


def chaos_faults(seed: int) -> Faults:
    return Faults(
        seed=seed,
        # Guaranteed once each, whatever the draws: the run must meet every fault it reports.
        fail_submits=[429, 503],
        first_download_faults=["truncate", "stall", "expire", "empty", "html", "not_video"],
        api_fault_rate=0.1,
        retry_after_seconds=0,
        webhook_copies_max=3,
        webhook_shuffle=True,
        webhook_hold_seconds=0.3,
        webhook_drop_rate=0.2,
        forged_rate=0.4,
        truncate_rate=0.15,
        stall_rate=0.05,
        stall_seconds=0.5,
        expire_rate=0.04,
        empty_rate=0.04,
        html_rate=0.03,
        not_video_rate=0.03,
    )


def job_bodies(count: int) -> list[dict[str, Any]]:
    bodies = []
    for index in range(count):
        body = dict(JOB_SHAPES[index % len(JOB_SHAPES)])
        prompt = f"chaos job {index}"
        if index % 9 == 4:
            prompt += " FAIL_ME"  # the provider fails it
        if index % 7 == 3:
            prompt += " NO_WEBHOOK"  # only the reconciler can find out
        if index % 13 == 6:
            prompt += " NEVER_FINISH"  # running for ever: the running deadline ends it
        if index % 13 == 9:
            prompt += " TASK_VANISHES"  # 404 on every status GET: provider_task_missing
        if index % 11 == 5:
            prompt += f" {NOT_VIDEO_MARKER}"  # non-video bytes on every GET: output_invalid
        if index % 5 == 2:
            prompt += f" {KILL_NOTIFIER}"  # its stream records never reach the notifier
        bodies.append(body | {"prompt": prompt})
    return bodies


# The code a transfer fails with when a result GET met this, on its last attempt.
OUTCOME_CODES = {"expire": "output_expired", "link_expired": "output_expired", "html": "output_not_video",
                 "empty": "output_invalid", "truncate": "output_invalid", "not_video": "output_invalid",
                 "error": "transfer_failed"}


def expected_outcome(job: dict[str, Any], task: Task | None, downloads: list[str]) -> tuple[str, str | None]:
    """What a job's injected faults say its end must be: (status, error code).

    ``task`` is the sandbox's task for the job's provider task id (None if it never got one);
    ``downloads`` is what each GET of its result link met, in order (``download_outcomes``).
    """
    if task is None:
        return "failed", "provider_unavailable"  # every submit attempt was refused
    if task.vanished:
        return "failed", "provider_task_missing"
    if task.never_finishes:
        return "failed", "deadline_exceeded"
    if task.will_fail:
        return "failed", "provider_failed"
    if task.serves_not_video:
        return "failed", "output_invalid"
    # One-off link faults (403, HTML, empty, short or non-video bodies) are retried while the
    # link lives: a job given one whole download must succeed; one never given any fails with
    # the code of the last fault it met.
    if any(outcome in ("ok", "stall") for outcome in downloads):
        return "succeeded", None
    if not downloads:
        return "failed", "no result GET was ever made"
    return "failed", OUTCOME_CODES.get(downloads[-1], f"unknown outcome {downloads[-1]}")


def non_terminal_jobs(items: list[dict[str, Any]]) -> list[str]:
    """Job items (DynamoDB's JSON) whose status is not terminal, as "id: status"."""
    terminal = {status.value for status in TERMINAL}
    return sorted(f"{item['pk']['S'].removeprefix('job#')}: {item.get('status', {}).get('S')}" for item in items
                  if item["pk"]["S"].startswith("job#") and item.get("status", {}).get("S") not in terminal)


def check_stored_objects(s3: Any, bucket: str) -> tuple[int, int, list[str]]:
    """Open every object in ``bucket`` as the transfer would: videos with ``media_check.inspect``
    (PyAV parses the container and decodes a frame), posters (``*.poster.jpg``) as one JPEG
    frame. Returns (videos checked, posters checked, keys that failed)."""
    import av

    videos = posters = 0
    failed: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if key.endswith(".poster.jpg"):
                posters += 1
                try:
                    with av.open(io.BytesIO(data), format="image2pipe") as image:
                        stream = image.streams.video[0]
                        frame = next(image.decode(stream), None)
                        if stream.codec_context.name != "mjpeg" or frame is None:
                            failed.append(key)
                except (av.FFmpegError, IndexError):
                    failed.append(key)
                continue
            videos += 1
            try:
                media_check.inspect(io.BytesIO(data))
            except media_check.NotAVideo:
                failed.append(key)
    return videos, posters, failed


KILL_NOTIFIER = "KILL_NOTIFIER"


def kill_notifier(stack: LocalStack) -> Counter[str]:
    """Drop the stream records of jobs marked KILL_NOTIFIER before the notifier sees them, as
    if it raised on every attempt and the mapping gave up: only the poll worker can publish."""
    from reelhook_local.front import StreamDriver

    dropped: Counter[str] = Counter()
    for driver in stack.drivers:
        if isinstance(driver, StreamDriver):
            original = driver._deliver

            def deliver(shard: str, records: list[dict[str, Any]], original: Any = original) -> None:
                kept = [r for r in records if KILL_NOTIFIER not in json.dumps(r["dynamodb"].get("NewImage", {}))]
                dropped["records"] += len(records) - len(kept)
                if kept:
                    original(shard, kept)

            driver._deliver = deliver  # type: ignore[method-assign]
    return dropped


def bus_queue(stack: LocalStack) -> str:
    """An SQS queue a rule on the job bus feeds, as a client would subscribe."""
    assert stack.resources is not None
    sqs, events = stack.client("sqs"), stack.client("events")
    url = sqs.create_queue(QueueName=f"{stack.options.resource_prefix}-chaos-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack.resources.event_bus_name
    events.put_rule(Name="chaos-events", EventBusName=bus, EventPattern=json.dumps({"source": ["reelhook"]}))
    events.put_targets(Rule="chaos-events", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def drain_bus_queue(stack: LocalStack, url: str, seen: set[tuple[str, str]]) -> None:
    sqs = stack.client("sqs")
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            detail = json.loads(message["Body"])["detail"]
            seen.add((detail["id"], detail["status"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def run(jobs: int, seed: int = 7, timeout: float = 300.0, console: Console | None = None) -> ChaosReport:
    console = console or Console(stderr=True)
    options = StackOptions(
        sandbox=SandboxConfig(step_seconds=0.2, distinct_videos=True, aihubmax_early_completed=True,
                              faults=chaos_faults(seed)),
        # A visibility timeout longer than any copy here, as in the deployed stack (5400 s for a
        # 900 s function): attempts never overlap, so every job has one clear history. A copy
        # that meets a fault on every try takes 3 GETs and 5 s of backoff, hence 10 s.
        schedule_seconds=0.5, reconcile_after_seconds=3, queue_visibility_seconds=10, transfer_workers=6,
        # Every injected fault would log a traceback. Short deadlines, so stuck tasks end in the run.
        extra_env={"POWERTOOLS_LOG_LEVEL": "CRITICAL", "RUNNING_MAX_AGE_SECONDS": "45",
                   "TASK_MISSING_POLLS": "3", "EVENT_REPUBLISH_AFTER_SECONDS": "5"},
        metrics_file=METRICS_FILE,  # the functions' metric lines: kept there, not on the terminal
    )
    report = ChaosReport(jobs=jobs)
    started = time.monotonic()
    with LocalStack(options) as stack, httpx.Client(base_url=stack.api_url, timeout=30) as api:
        dropped = kill_notifier(stack)
        events_url = bus_queue(stack)
        bodies = job_bodies(jobs)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda b: api.post("/v1/jobs", json=b), bodies))
        ids = [a.json()["id"] for a in answers if a.status_code == 202]
        assert len(ids) == jobs, [a.text for a in answers if a.status_code != 202]
        finished: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task("jobs finished", total=jobs)
            while time.monotonic() < deadline and len(finished) < jobs:
                for job_id in ids:
                    if job_id not in finished:
                        job = api.get(f"/v1/jobs/{job_id}").json()
                        if job["status"] in {"succeeded", "failed"}:
                            finished[job_id] = job
                progress.update(bar, completed=len(finished))
                time.sleep(0.3)
        stack.sandbox.wait_for_webhooks(timeout=10)
        # Every finished job's event arrives: from the notifier, or from the poll worker once
        # EVENT_REPUBLISH_AFTER_SECONDS have passed for the killed ones.
        seen: set[tuple[str, str]] = set()
        wanted = {(job_id, job["status"]) for job_id, job in finished.items()}
        events_by = time.monotonic() + 60
        while time.monotonic() < events_by:
            drain_bus_queue(stack, events_url, seen)
            if wanted <= seen:
                break
            time.sleep(0.5)
        report.events_missing = sorted(f"{job_id}/{status}" for job_id, status in wanted - seen)
        report.notifier_records_dropped = dropped["records"]
        report.seconds = time.monotonic() - started
        report.lost = [job_id for job_id in ids if job_id not in finished]
        s3 = stack.client("s3")
        assert stack.resources is not None
        bucket = stack.resources.bucket_name
        expected_keys = set()
        for job in finished.values():
            task_id = job.get("provider_task_id")
            task = stack.sandbox.tasks.get(task_id) if task_id else None
            if task_id and task is None:  # a task id the sandbox never handed out: say where it came from
                report.wrong_state.append(f"{job['id']}: provider task {task_id} unknown to the sandbox: "
                                          + json.dumps({k: v for k, v in job.items() if k != "outputs"})[:3000])
                continue
            want_status, want_code = expected_outcome(job, task, stack.sandbox.download_outcomes(task_id or ""))
            report.expected[want_code or want_status] += 1
            got_code = (job.get("error") or {}).get("code")
            if (job["status"], got_code) != (want_status, want_code):
                # With the job's own history, so a wrong end can be traced from the report alone.
                history = [{k: e.get(k) for k in ("status", "source", "reason", "provider_status") if e.get(k)}
                           for e in job.get("events", [])]
                report.wrong_state.append(f"{job['id']}: {job['status']}/{got_code}, expected {want_status}/"
                                          f"{want_code}; task {task_id}; history {json.dumps(history)[:1500]}")
            if job["status"] == "failed":
                report.failed[got_code or "?"] += 1
                continue
            for output in job["outputs"]:
                key = output["s3_uri"].split("/", 3)[3]
                expected_keys.add(key)
                data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                served = stack.sandbox.sha256_for(job["provider_task_id"])
                if not (hashlib.sha256(data).hexdigest() == output["sha256"] == served):
                    report.bad_bytes.append(job["id"])
                if output.get("poster_url"):
                    expected_keys.add(key.rsplit(".", 1)[0] + ".poster.jpg")
            report.stored += 1
        # Every stored object, not only the ones jobs name, proven independently of the jobs' word.
        report.videos_checked, report.posters_checked, report.not_video = check_stored_objects(s3, bucket)
        stored_keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                       for o in page.get("Contents", [])}
        report.unexpected_objects = sorted(stored_keys - expected_keys)
        report.pending_uploads = len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
        broken = {job_id for job_id, job in finished.items()
                  if (job.get("error") or {}).get("code") == "transfer_failed"}
        dlq = stack.client("sqs").receive_message(QueueUrl=stack.resources.dlq_url, MaxNumberOfMessages=10)
        report.dlq_unexpected = [m["Body"] for m in dlq.get("Messages", [])
                                 if json.loads(m["Body"])["job_id"] not in broken]
        for forged in stack.sandbox.forged_deliveries:
            answer = forged.response_json() if forged.response_status == 200 else None
            confirmed = any(marker in forged.url for marker in CONFIRMED_BY_GET) and forged.response_status == 200
            ignored = isinstance(answer, dict) and not answer.get("applied")
            if forged.response_status not in FORGED_OK and not ignored and not confirmed:
                report.forged_effective.append(f"{forged.kind} -> {forged.response_status}")
        counts = stack.sandbox.fault_counts()
        report.faults = counts
        report.forged = len(stack.sandbox.forged_deliveries)
        report.dropped = len(stack.sandbox.dropped_webhooks)
        report.deliveries = counts.get("webhooks_sent", 0)
        if counts.get("forged_url_fetches"):
            report.forged_effective.append(f"{counts['forged_url_fetches']} forged result links were fetched")
        items = [item for page in stack.client("dynamodb").get_paginator("scan").paginate(
            TableName=stack.resources.table_name) for item in page["Items"]]
        report.non_terminal = non_terminal_jobs(items)
        for item in items:
            if "/files/forged-" in json.dumps(item.get("result_urls", {})):
                report.forged_effective.append(item["pk"]["S"])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    # Powertools' warning that a pass published no metric (an idle poller's) is no news here.
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    console = Console()
    report = run(args.jobs, args.seed, args.timeout, console)
    console.print(report.table())
    for name in ("lost", "wrong_state", "bad_bytes", "not_video", "forged_effective", "unexpected_objects",
                 "dlq_unexpected", "events_missing", "non_terminal"):
        for item in getattr(report, name)[:20]:
            console.print(f"[red]{name}[/]: {item}")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
