"""``reelhook``: the command line for reelhook's HTTP API, built on ``reelhook_client``.

    reelhook models
    reelhook submit --model freepik/veo-3-1-reference-to-video --prompt "..." --image URL --wait
    reelhook status JOB_ID
    reelhook wait JOB_ID
    reelhook download JOB_ID -o video.mp4
    reelhook jobs --status failed
    reelhook cancel JOB_ID
    reelhook providers
    reelhook doctor --stack-name reelhook
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from reelhook_cli.doctor import doctor
from reelhook_cli.errors import (
    EXIT_USAGE,
    JSON_ERRORS,
    CliError,
    cli_error,
    setup_error,
    want_json_errors,
)
from reelhook_cli.render import (
    human_bytes,
    print_job,
    print_jobs,
    print_models,
    print_providers,
    routed,
    routing_summary,
    status_text,
    when,
)
from reelhook_client import ApiUnreachable, Client, Job, NotFound, ReelhookError, WaitTimeout
from reelhook_client.auth import AUTH_MODES, AuthMode, default_auth_mode

DEFAULT_API_URL = "http://127.0.0.1:3000"
DEFAULT_WAIT_TIMEOUT = 1800.0
DEFAULT_INTERVAL = 2.0
DEFAULT_LIST_LIMIT = 20
PAGE_SIZE = 100  # the API's largest page
MAX_POLL_FAILURES = 5  # a wait rides out this many unreachable spells in a row (each after the client's retries)
RETRIES = 2
USER_AGENT = "reelhook-cli"

EPILOG = """\b
Environment: REELHOOK_API_URL, REELHOOK_AUTH, REELHOOK_TOKEN (and the usual AWS_* for --auth iam).
\b
Exit codes: 0 ok; 1 the job failed or the API refused the request; 2 bad usage;
3 API not reachable or authentication failed; 4 `wait` timed out; 5 download checksum mismatch.
"""


@dataclass
class Settings:
    api_url: str
    auth: AuthMode
    token: str | None
    region: str | None

    def client(self, ctx: click.Context) -> Client:
        try:
            client = Client(self.api_url, auth=None if self.auth == "none" else self.auth, token=self.token,
                            region=self.region, max_retries=RETRIES, user_agent=USER_AGENT)
        except ReelhookError as exc:
            raise setup_error(exc) from None
        return ctx.with_resource(client)


def _settings(ctx: click.Context) -> Settings:
    return cast(Settings, ctx.find_object(Settings))


def _stdout() -> Console:
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


class ReelhookGroup(click.Group):
    """Turns what the client raises into one CliError, whichever command it came from."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ReelhookError as exc:
            settings = ctx.find_object(Settings)
            api_url, mode = (settings.api_url, settings.auth) if settings else ("?", "none")
            raise cli_error(exc, api_url=api_url, auth_mode=mode) from None


@click.group(cls=ReelhookGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--api-url", envvar="REELHOOK_API_URL", default=DEFAULT_API_URL, show_default=True,
              metavar="URL", help="Where the API lives (`make serve` listens on the default).")
@click.option("--auth", type=click.Choice(AUTH_MODES, case_sensitive=False), envvar="REELHOOK_AUTH",
              help="How to authenticate [default: iam for *.amazonaws.com, else none].")
@click.option("--token", envvar="REELHOOK_TOKEN", metavar="TOKEN",
              help="Bearer token for --auth jwt.")
@click.option("--region", metavar="REGION",
              help="AWS region for --auth iam [default: from the execute-api host, else AWS_REGION].")
@click.version_option(package_name="reelhook-client", prog_name="reelhook")
@click.pass_context
def cli(ctx: click.Context, api_url: str, auth: str | None, token: str | None, region: str | None) -> None:
    """Submit video generation jobs to reelhook, follow them and download the results."""
    JSON_ERRORS.set(False)  # until a command's --json says otherwise
    mode = cast(AuthMode, auth.lower() if auth else default_auth_mode(api_url))
    ctx.obj = Settings(api_url=api_url, auth=mode, token=token, region=region)


# -- models -------------------------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, callback=want_json_errors, help="Print GET /v1/models as it came.")
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List the models, what each accepts and how its status arrives."""
    catalog = {"models": [entry.to_dict() for entry in _settings(ctx).client(ctx).models()]}
    if as_json:
        _print_json(catalog)
        return
    print_models(_stdout(), catalog)


@cli.command()
@click.option("--json", "as_json", is_flag=True, callback=want_json_errors,
              help="Print GET /v1/providers as it came.")
@click.pass_context
def providers(ctx: click.Context, as_json: bool) -> None:
    """Show each provider's circuit, request budget and tasks in flight."""
    found = _settings(ctx).client(ctx).providers()
    if as_json:
        _print_json({"providers": [provider.to_dict() for provider in found]})
        return
    print_providers(_stdout(), found)


# -- submit -------------------------------------------------------------------------------------


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value``: the value as JSON when it parses (true, 3, 0.5, "x"), else the string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r} is not key=value", param_hint="--option")
    try:
        value = json.loads(raw)
    except ValueError:
        return key.strip(), raw
    if isinstance(value, float) and not math.isfinite(value):
        return key.strip(), raw
    return key.strip(), value


def parse_reference(text: str, flag: str) -> str | dict[str, Any]:
    """A URL, or a JSON object such as ``{"url": "...", "voice_url": "..."}``."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is neither a URL nor a JSON object ({exc})", param_hint=flag) from None
    if not isinstance(value, dict) or "url" not in value:
        raise click.BadParameter(f"{text!r} must be a URL or an object with url (and voice_url)", param_hint=flag)
    return value


def load_job_file(stream: IO[str]) -> dict[str, Any]:
    try:
        data = json.load(stream)
    except ValueError as exc:
        raise click.BadParameter(f"{stream.name} is not JSON: {exc}", param_hint="--file") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{stream.name} must hold a JSON object (a job)", param_hint="--file")
    return data


def build_job(base: dict[str, Any], *, fields: dict[str, Any], images: tuple[str, ...], videos: tuple[str, ...],
              options: tuple[str, ...]) -> dict[str, Any]:
    """The file's job with the flags on top: given flags replace fields, --option keys merge into options."""
    job = dict(base)
    job.update({name: value for name, value in fields.items() if value is not None})
    if images:
        job["reference_images"] = [parse_reference(url, "--image") for url in images]
    if videos:
        job["reference_videos"] = [parse_reference(url, "--video") for url in videos]
    if options:
        merged = dict(job.get("options") or {})
        merged.update(parse_option(text) for text in options)
        job["options"] = merged
    return job


def wait_options(fn: Any) -> Any:
    fn = click.option("--interval", type=click.FloatRange(min=0.1), default=DEFAULT_INTERVAL, show_default=True,
                      metavar="SECONDS", help="Time between status checks.")(fn)
    return click.option("--timeout", type=click.FloatRange(min=0), default=DEFAULT_WAIT_TIMEOUT, show_default=True,
                        metavar="SECONDS", help="Give up waiting (exit 4) after this long; 0 waits forever.")(fn)


@cli.command(epilog="Flags override the fields of --file; --option keys are merged into its options.")
@click.option("--file", "job_file", type=click.File("r"), metavar="JOB.json",
              help="A job as JSON (the POST /v1/jobs body); '-' reads stdin.")
@click.option("--model", metavar="ID", help="A model id from `reelhook models`.")
@click.option("--prompt", metavar="TEXT")
@click.option("--negative-prompt", metavar="TEXT")
@click.option("--image", "images", multiple=True, metavar="URL",
              help='Reference image (repeatable): a URL or {"url": ..., "voice_url": ...}.')
@click.option("--video", "videos", multiple=True, metavar="URL",
              help='Reference video (repeatable): a URL or {"url": ..., "voice_url": ...}.')
@click.option("--first-frame", metavar="URL")
@click.option("--last-frame", metavar="URL")
@click.option("--source-video", metavar="URL", help="A video to extend.")
@click.option("--duration", type=int, metavar="SECONDS")
@click.option("--aspect-ratio", metavar="W:H")
@click.option("--resolution", metavar="RES", help="e.g. 720p, 1080p, 4k.")
@click.option("--audio/--no-audio", default=None, help="Generate sound (where the model can).")
@click.option("--seed", type=int)
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="A model option (repeatable); VALUE is JSON when it parses (true, 2, 0.5), else a string.")
@click.option("--client-reference", metavar="TEXT", help="Your own reference, stored with the job.")
@click.option("--notify-url", metavar="URL", help="An https URL that gets the job's final status, signed.")
@click.option("--idempotency-key", metavar="KEY",
              help="Same key and same body return the same job [default: a fresh key per invocation].")
@click.option("--json", "as_json", is_flag=True, callback=want_json_errors,
              help="Print the job as JSON instead of its id.")
@click.option("--wait", "wait_", is_flag=True, help="Then wait for the job like `reelhook wait`.")
@wait_options
@click.pass_context
def submit(ctx: click.Context, job_file: IO[str] | None, images: tuple[str, ...], videos: tuple[str, ...],
           options: tuple[str, ...], idempotency_key: str | None, as_json: bool, wait_: bool, timeout: float,
           interval: float, **fields: Any) -> None:
    """Create a job (POST /v1/jobs) and print its id."""
    base = load_job_file(job_file) if job_file is not None else {}
    body = build_job(base, fields=fields, images=images, videos=videos, options=options)
    client = _settings(ctx).client(ctx)
    # A body without a model is sent as it is: the API's answer names what is missing.
    model = cast(str, body.pop("model", None))
    created = client.submit(model, idempotency_key=idempotency_key, **body)
    if not wait_:
        if as_json:
            _print_json(created.to_dict())
        else:
            click.echo(created.id)
        return
    if not as_json:
        click.echo(created.id)
    finish(follow(client, created, timeout=timeout, interval=interval), as_json=as_json)


# -- status and wait ----------------------------------------------------------------------------


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, callback=want_json_errors, help="Print GET /v1/jobs/{id} as it came.")
@click.pass_context
def status(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Show a job: status, provider task, error, outputs, events, and the routes tried and skipped."""
    job = _settings(ctx).client(ctx).get(job_id)
    if as_json:
        _print_json(job.to_dict())
        return
    print_job(_stdout(), job)


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, callback=want_json_errors, help="Print the finished job as JSON.")
@wait_options
@click.pass_context
def wait(ctx: click.Context, job_id: str, as_json: bool, timeout: float, interval: float) -> None:
    """Follow a job until it succeeds (exit 0), or fails or is cancelled (exit 1)."""
    finish(follow(_settings(ctx).client(ctx), job_id, timeout=timeout, interval=interval), as_json=as_json)


def _describe(job: Job) -> tuple[str, float | None, float]:
    """(description, total, completed) for the progress bar; no total means a pulsing bar."""
    text = f"[bold]{job.id}[/bold] {status_text(job.status).markup}"
    if job.status == "succeeded":
        return text, 100, 100
    if job.status == "running" and job.progress is not None:
        return f"{text} {job.progress:.0f}%", 100, float(job.progress)
    if job.status == "storing":
        return f"{text} (copying to S3)", None, 0
    return text, None, 0


def follow(client: Client, job: Job | str, *, timeout: float, interval: float) -> Job:
    """``client.wait`` with a live status on stderr: each event as it comes, and a progress bar."""
    job_id = job.id if isinstance(job, Job) else job
    deadline = time.monotonic() + timeout if timeout else None
    shown = 0
    failures = 0
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_stderr(), transient=True) as progress:
        task = progress.add_task(job_id, total=None)

        def update(current: Job) -> None:
            nonlocal shown, failures
            failures = 0
            events = current.events
            for event in events[shown if shown <= len(events) else 0:]:
                reason = f" ({event.reason})" if event.reason else ""
                progress.console.print(f"[dim]{when(event.at)}[/dim] {status_text(event.status).markup} "
                                       f"[dim]via {event.source or '?'}{reason}[/dim]")
            shown = len(events)
            description, total, completed = _describe(current)
            progress.update(task, description=description, total=total, completed=completed)

        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return client.wait(job, timeout=left, poll_interval=interval, on_update=update)
            except WaitTimeout as exc:
                raise WaitTimeout(exc.job, timeout) from None  # the whole wait's timeout, not the last leg's
            except ApiUnreachable as exc:
                # The client already retried; a longer outage is ridden out here, as a person would.
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    raise
                progress.update(task, description=f"{job_id} [yellow](retrying: {exc.message})[/yellow]")
                time.sleep(interval)
                job = job_id


def finish(job: Job, *, as_json: bool) -> None:
    if as_json:
        _print_json(job.to_dict())
    if job.status != "succeeded":
        if not as_json and routed(job):
            # Which providers were tried, and why each let the job go, before the one-line verdict.
            stderr = _stderr()
            for part in routing_summary(job):
                stderr.print(part)
        error = job.error
        reason = f"{error.code}: {error.message}" if error else "unknown: "
        verb = "failed" if job.status == "failed" else f"was {job.status}"
        raise CliError(f"job {job.id} {verb}: {reason}")
    if as_json:
        return
    size = human_bytes(sum(o.bytes for o in job.outputs))
    where = ", ".join(o.s3_uri for o in job.outputs)
    console = _stdout()
    console.print(f"{status_text('succeeded').markup} {job.id}: {len(job.outputs)} output(s), {size} {where}",
                  soft_wrap=True)
    if routed(job):
        for part in routing_summary(job):
            console.print(part)
    console.print(f"[dim]fetch it with: reelhook download {job.id}[/dim]", soft_wrap=True)


# -- download -----------------------------------------------------------------------------------


@cli.command()
@click.argument("job_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), metavar="FILE",
              help="Where to write [default: <job id>.mp4].")
@click.option("--index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which of the job's outputs.")
@click.pass_context
def download(ctx: click.Context, job_id: str, output: Path | None, index: int) -> None:
    """Download a finished job's video and check its SHA-256."""
    client = _settings(ctx).client(ctx)
    job = client.get(job_id)
    if not job.outputs:
        if job.status in ("failed", "cancelled"):
            reason = f"{job.error.code}: {job.error.message}" if job.error else "no reason given"
            raise CliError(f"job {job_id} {job.status}, there is nothing to download: {reason}")
        raise CliError(f"job {job_id} is {job.status} and has no outputs yet",
                       details=[f"wait for it with `reelhook wait {job_id}`"])
    if index >= len(job.outputs):
        raise CliError(f"job {job_id} has {len(job.outputs)} output(s): --index must be below {len(job.outputs)}",
                       exit_code=EXIT_USAGE)
    item = job.outputs[index]
    if not item.download_url:
        raise CliError(f"output {index} of {job_id} has no download_url (stored at {item.s3_uri})")
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=_stderr(), transient=True) as progress:
        task = progress.add_task(output.name if output else job_id, total=item.bytes)

        def advance(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        try:
            target = client.download(job, output or Path.cwd(), index=index, on_progress=advance)
        except OSError as exc:
            raise CliError(f"cannot write {output or Path.cwd()}: {exc.strerror or exc}") from None
    _stdout().print(f"wrote {target} ({human_bytes(item.bytes)}, sha256 {item.sha256} verified)",
                    soft_wrap=True, markup=False)


# -- jobs and cancel ----------------------------------------------------------------------------


def _iso_time(_ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time (2026-05-01 or 2026-05-01T12:00:00Z)") from None
    # A time without a zone is UTC, as the API's own times are.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@cli.command()
@click.option("--status", metavar="STATUS", help="queued, submitted, running, storing, succeeded, failed, cancelled.")
@click.option("--model", metavar="ID")
@click.option("--provider", metavar="NAME")
@click.option("--client-reference", metavar="TEXT")
@click.option("--created-after", metavar="TIME", callback=_iso_time, help="ISO 8601; without a zone, UTC.")
@click.option("--created-before", metavar="TIME", callback=_iso_time, help="ISO 8601; without a zone, UTC.")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIST_LIMIT, show_default=True,
              help="At most this many jobs.")
@click.option("--all", "all_", is_flag=True, help="Every matching job, however many pages (ignores --limit).")
@click.option("--cursor", metavar="CURSOR", help="Carry on from an earlier --json answer's next_cursor.")
@click.option("--json", "as_json", is_flag=True, callback=want_json_errors,
              help='Print {"jobs": [...], "next_cursor": ...} (pass next_cursor to --cursor for more).')
@click.pass_context
def jobs(ctx: click.Context, limit: int, all_: bool, cursor: str | None, as_json: bool, **filters: Any) -> None:
    """List jobs, in the order the API gives them, with filters."""
    client = _settings(ctx).client(ctx)
    found: list[Job] = []
    remaining: int | None = None if all_ else limit
    try:
        while True:
            # Pages sized so the last ends exactly at --limit: its next_cursor then carries on from there.
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            page = client.list_page(limit=size, cursor=cursor, **filters)
            found += page.jobs
            cursor = page.next_cursor
            if remaining is not None:
                remaining -= len(page.jobs)
            if not cursor or remaining == 0 or not page.jobs:
                break
    except NotFound as exc:  # filters never make a 404: the route itself is missing
        raise CliError(f"the API at {_settings(ctx).api_url} cannot list jobs (GET /v1/jobs answered 404)",
                       details=["it predates job listing: update the stack"], code=exc.code, status=404) from None
    if as_json:
        _print_json({"jobs": [job.to_dict() for job in found], "next_cursor": cursor})
        return
    console = _stdout()
    print_jobs(console, found)
    if cursor:
        console.print(f"[dim]more: reelhook jobs --cursor {cursor}{'' if all_ else f' --limit {limit}'}[/dim]",
                      soft_wrap=True)


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, callback=want_json_errors, help="Print the cancelled job as JSON.")
@click.pass_context
def cancel(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Cancel a job that has not finished; a succeeded or failed job stays as it is (exit 1)."""
    job = _settings(ctx).client(ctx).cancel(job_id)
    if as_json:
        _print_json(job.to_dict())
        return
    note = ""
    if job.cancellation is not None and job.cancellation.provider_task_may_continue:
        note = " (the provider's task may still run, and be billed)"
    _stdout().print(f"{status_text(job.status).markup} {job.id}{note}", soft_wrap=True)



cli.add_command(doctor)
