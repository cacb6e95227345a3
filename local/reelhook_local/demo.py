"""``make demo``: one job per provider through the local stack, and one logical-model job that
fails over from a provider out of credit; every stored video is checked against what the
provider served.

In a terminal the jobs' progress is a live table; piped, it is one plain line per change. The
result table is printed once, then which model each stored object belongs to, then the
failover job's attempts and each provider's health.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import sys
import time
import warnings
from dataclasses import dataclass
from typing import IO, Any

import httpx
from botocore.credentials import ReadOnlyCredentials
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from reelhook_cli.render import print_providers, routing_summary, status_text
from reelhook_client import Client, Job, ReelhookError
from reelhook_client.auth import SigV4Auth
from reelhook_local.emf import METRICS_FILE
from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LOCAL_CREDENTIALS, LocalStack, StackOptions
from reelhook_local.startup import StartSteps

IMAGE = "https://example.com/character.png"
DEMO_JOBS: list[dict[str, Any]] = [
    {"model": "freepik/veo-3-1-reference-to-video", "prompt": "The character walks through a neon city at night",
     "reference_images": [IMAGE], "resolution": "720p", "aspect_ratio": "16:9", "audio": True},
    {"model": "freepik/wan-2-7-reference-to-video", "prompt": "Image 1 dances in a garden",
     "reference_images": [{"url": IMAGE, "voice_url": "https://example.com/voice.wav"}], "duration": 5},
    {"model": "freepik/kling-v3-omni-pro-video-reference", "prompt": "A dancer moving like @Video1",
     "reference_videos": ["https://example.com/motion.mp4"], "duration": 5, "options": {"cfg_scale": 0.5}},
    {"model": "uniall/veo3.1-video-1080p", "prompt": "A drone shot over a fjord at dawn", "duration": 8,
     "aspect_ratio": "16:9"},
    {"model": "aihubmax/veo-3.1-reference-to-video", "prompt": "The character waves at the camera",
     "reference_images": [IMAGE], "duration": 8, "resolution": "1080p"},
]
# Named by its logical model, so reelhook picks the provider: Freepik first (the default order),
# which is out of credit, so the job moves on. One image: UniAll's route (2-3) is skipped.
OUT_OF_CREDIT = "freepik"
FAILOVER_JOB: dict[str, Any] = {"model": "veo-3.1/reference-to-video",
                                "prompt": "The character turns to the camera and smiles", "reference_images": [IMAGE]}
# Piped there is no terminal width to honour, and a model id cut short is no use in a log.
PIPED_WIDTH = 200
POLL_SECONDS = 0.25


@dataclass
class Row:
    """One demo job as it goes."""

    body: dict[str, Any]
    job: Job
    started: float
    seconds: float | None = None
    verified: str = ""
    shown: tuple[Any, ...] = ()  # what the last plain progress line said
    attempts_told: int = 0  # earlier attempts already reported

    @property
    def model(self) -> str:
        return str(self.body["model"])

    @property
    def served_by(self) -> str:
        return self.job.route.provider if self.job.route is not None else self.job.provider


def demo_console(file: IO[str] | None = None) -> Console:
    console = Console(file=file, highlight=False)
    if not console.is_terminal:
        console = Console(file=file, highlight=False, width=PIPED_WIDTH)
    return console


def _progress(job: Job) -> Text:
    text = status_text(job.status)
    if job.status == "running" and job.progress is not None:
        text.append(f" {job.progress}%")
    if job.waiting_for:
        text.append(f" (waiting for {job.waiting_for})", style="dim")
    return text


def _table(rows: list[Row], *, final: bool) -> Table:
    table = Table(title="Result" if final else "Jobs in progress")
    # Never cut short: long headers take two lines, and model ids fold only in a narrow terminal.
    table.add_column("model", overflow="fold")
    table.add_column("served by", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("seconds to stored", justify="right", max_width=9)
    if final:
        table.add_column("bytes", justify="right", no_wrap=True)
        table.add_column("sha256 verified", max_width=8)
    for row in rows:
        seconds = f"{row.seconds:.1f}" if row.seconds is not None else ""
        cells: list[Any] = [row.model, row.served_by, _progress(row.job), seconds]
        if final:
            cells += [str(row.job.outputs[0].bytes) if row.job.outputs else "", row.verified]
        table.add_row(*cells)
    return table


def _plain_progress(console: Console, rows: list[Row], start: float) -> None:
    """Piped: one line for each change of a job's status, progress or provider, and one for each
    provider it moved on from."""
    width = max(len(row.model) for row in rows)
    for row in rows:
        job = row.job
        seen = (job.status, job.progress, job.waiting_for, row.served_by)
        if seen == row.shown:
            continue
        row.shown = seen
        stamp = f"{time.monotonic() - start:6.1f} s  {row.model:<{width}}  "
        earlier = (job.attempts or [])[:-1]  # the current attempt is the last
        for attempt in earlier[row.attempts_told:]:
            console.print(Text.assemble(stamp, (f"{attempt.provider} {attempt.outcome}", "yellow"),
                                        f": {attempt.reason or 'no reason given'}"), soft_wrap=True)
        row.attempts_told = len(earlier)
        line = Text(stamp)
        line.append_text(_progress(job))
        line.append(f"  on {row.served_by}", style="dim")
        console.print(line, soft_wrap=True)


def _follow(api: Client, console: Console, rows: list[Row], timeout: float) -> None:
    start = min(row.started for row in rows)
    deadline = time.monotonic() + timeout
    live = Live(_table(rows, final=False), console=console, refresh_per_second=4, transient=True) \
        if console.is_terminal else None
    with live if live is not None else contextlib.nullcontext():
        while True:
            if live is not None:
                live.update(_table(rows, final=False))
            else:
                _plain_progress(console, rows, start)
            if time.monotonic() >= deadline or all(row.job.done for row in rows):
                return
            time.sleep(POLL_SECONDS)
            for row in rows:
                if row.job.done:
                    continue
                row.job = api.get(row.job.id)
                if row.job.done:
                    row.seconds = time.monotonic() - row.started


def _verify(row: Row, served_sha256: str) -> bool:
    """The stored object, fetched through its presigned URL, is byte for byte what the provider served."""
    if not row.job.succeeded or not row.job.outputs or not row.job.outputs[0].download_url:
        row.verified = "no"
        return False
    output = row.job.outputs[0]
    stored = httpx.get(output.download_url, timeout=30).content
    ok = hashlib.sha256(stored).hexdigest() == output.sha256 == served_sha256 and len(stored) == output.bytes
    row.verified = "yes" if ok else "NO"
    return ok


def failed_over(job: Job) -> bool:
    """Served by another provider, after an attempt that the one out of credit refused."""
    refused = any(a.provider == OUT_OF_CREDIT and a.outcome in ("rejected", "refused", "skipped")
                  for a in job.attempts or [])
    return job.succeeded and job.route is not None and job.route.provider != OUT_OF_CREDIT and refused


def _wait_until_sent(api: Client, rows: list[Row], timeout: float) -> None:
    """Until each of the provider's own jobs has left the queue: the refusal must be the failover job's."""
    deadline = time.monotonic() + timeout
    mine = [row for row in rows if row.job.provider == OUT_OF_CREDIT]
    while any(row.job.status == "queued" for row in mine) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        for row in mine:
            row.job = api.get(row.job.id)


def _stored(console: Console, rows: list[Row]) -> None:
    console.print("[bold]Stored objects[/] (model, then the S3 object that holds its video):")
    for row in rows:
        for output in row.job.outputs:
            served = f" (served by {row.job.route.model})" if row.job.route and row.job.route.model != row.model \
                else ""
            console.print(f"  {row.model}{served}  {output.s3_uri}  {output.bytes} bytes  sha256 {output.sha256}",
                          soft_wrap=True, markup=False)


def _submit(api: Client, body: dict[str, Any], key: str) -> Row:
    fields = {name: value for name, value in body.items() if name != "model"}
    return Row(body, api.submit(body["model"], idempotency_key=key, **fields), time.monotonic())


def run(timeout: float, console: Console | None = None) -> int:
    console = console or demo_console()
    # The functions' own logs stay out of the demo's output unless something is wrong: the
    # failover they would warn about is the point of the demo.
    options = StackOptions(sandbox=SandboxConfig(step_seconds=0.5), enforce_iam=True,
                           extra_env={"POWERTOOLS_LOG_LEVEL": "ERROR"}, metrics_file=METRICS_FILE)
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    # The API checks SigV4 as deployed; the demo signs with the local stack's credentials.
    signer = SigV4Auth(LOCAL_CREDENTIALS["AWS_REGION"], ReadOnlyCredentials(
        LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"], LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], None))
    console.print("[bold]Starting the local stack[/] (moto server, API front, provider sandbox)…")
    with contextlib.ExitStack() as resources:
        steps = StartSteps(console)
        try:
            stack = resources.enter_context(LocalStack(options, steps=steps))
        finally:
            began = steps.close()
        api = resources.enter_context(Client(stack.api_url, auth=signer, max_retries=2))
        console.print(f"Up in {began:.1f} s: API {stack.api_url}   AWS (moto) "
                      f"{stack.aws_endpoint}   providers {stack.sandbox.root_url}", soft_wrap=True)
        try:
            rows = [_submit(api, body, f"demo-{body['model']}") for body in DEMO_JOBS]
            _wait_until_sent(api, rows, timeout)
            # Freepik's account runs out of credit: its next create request is refused with 402.
            stack.sandbox.config.faults.fail_submits_for[OUT_OF_CREDIT] = [402]
            console.print(f"[yellow]{OUT_OF_CREDIT} is now out of credit[/] (the sandbox answers its next create "
                          f"request with 402); submitting {FAILOVER_JOB['model']}, a logical model "
                          f"{OUT_OF_CREDIT} serves first", soft_wrap=True)
            failover = _submit(api, FAILOVER_JOB, "demo-failover")
        except ReelhookError as exc:
            console.print(f"[red]the API refused the demo[/]: {exc}", soft_wrap=True)
            return 1
        rows.append(failover)
        _follow(api, console, rows, timeout)

        failures = sum(0 if _verify(row, stack.sandbox.served_sha256) else 1 for row in rows)
        console.print(_table(rows, final=True))
        _stored(console, rows)
        console.print()
        console.print(f"[bold]Failover[/]: {failover.model} ({failover.job.id})", soft_wrap=True)
        for part in routing_summary(failover.job):
            console.print(part)
        console.print("[bold]Providers[/] (GET /v1/providers: the 402 counts against Freepik's circuit)")
        print_providers(console, api.providers())
        if not failed_over(failover.job):
            failures += 1
            console.print(f"[red]the {failover.model} job was not served past {OUT_OF_CREDIT}[/]")
        if failures:
            console.print(f"[red]{failures} job(s) did not end stored and verified as expected[/]")
            return 1
        console.print(f"[green]Every video is in S3 and matches, byte for byte, what the provider served; "
                      f"{failover.model} went to {failover.served_by} when {OUT_OF_CREDIT} refused it.[/]",
                      soft_wrap=True)
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the jobs")
    sys.exit(run(parser.parse_args().timeout))


if __name__ == "__main__":
    main()
