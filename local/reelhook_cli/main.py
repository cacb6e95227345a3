"""``reelhook``: the command line for reelhook's HTTP API.

    reelhook models
    reelhook submit --model freepik/veo-3-1-reference-to-video --prompt "..." --image URL --wait
    reelhook status JOB_ID
    reelhook wait JOB_ID
    reelhook download JOB_ID -o video.mp4
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import mimetypes
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import click
import httpx
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

from reelhook_cli.api import (
    EXIT_INTEGRITY,
    EXIT_TIMEOUT,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    JSON_ERRORS,
    ApiClient,
    CliError,
    want_json_errors,
)
from reelhook_cli.auth import AUTH_MODES, AuthMode, default_auth_mode
from reelhook_cli.render import human_bytes, print_job, print_models, status_text

DEFAULT_API_URL = "http://127.0.0.1:3000"
TERMINAL = ("succeeded", "failed")
DEFAULT_WAIT_TIMEOUT = 1800.0
DEFAULT_INTERVAL = 2.0
MAX_POLL_FAILURES = 5
CHUNK = 1024 * 1024

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

    def client(self, ctx: click.Context) -> ApiClient:
        return ctx.with_resource(ApiClient(self.api_url, self.auth, token=self.token, region=self.region))


def _settings(ctx: click.Context) -> Settings:
    return cast(Settings, ctx.find_object(Settings))


def _stdout() -> Console:
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--api-url", envvar="REELHOOK_API_URL", default=DEFAULT_API_URL, show_default=True,
              metavar="URL", help="Where the API lives (`make serve` listens on the default).")
@click.option("--auth", type=click.Choice(AUTH_MODES, case_sensitive=False), envvar="REELHOOK_AUTH",
              help="How to authenticate [default: iam for *.amazonaws.com, else none].")
@click.option("--token", envvar="REELHOOK_TOKEN", metavar="TOKEN",
              help="Bearer token for --auth jwt.")
@click.option("--region", metavar="REGION",
              help="AWS region for --auth iam [default: from the execute-api host, else AWS_REGION].")
@click.version_option(package_name="reelhook", prog_name="reelhook")
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
    catalog = _settings(ctx).client(ctx).models()
    if as_json:
        _print_json(catalog)
        return
    print_models(_stdout(), catalog)


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
    job = build_job(base, fields=fields, images=images, videos=videos, options=options)
    client = _settings(ctx).client(ctx)
    created = client.submit(job, idempotency_key)
    if not wait_:
        if as_json:
            _print_json(created)
        else:
            click.echo(created["id"])
        return
    if not as_json:
        click.echo(created["id"])
    finish(follow(client, created["id"], timeout=timeout, interval=interval, first=created), as_json=as_json)


# -- status and wait ----------------------------------------------------------------------------


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, callback=want_json_errors, help="Print GET /v1/jobs/{id} as it came.")
@click.pass_context
def status(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Show a job: status, provider task, error, outputs and events."""
    job = _settings(ctx).client(ctx).job(job_id)
    if as_json:
        _print_json(job)
        return
    print_job(_stdout(), job)


@cli.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, callback=want_json_errors, help="Print the finished job as JSON.")
@wait_options
@click.pass_context
def wait(ctx: click.Context, job_id: str, as_json: bool, timeout: float, interval: float) -> None:
    """Follow a job until it succeeds (exit 0) or fails (exit 1)."""
    finish(follow(_settings(ctx).client(ctx), job_id, timeout=timeout, interval=interval), as_json=as_json)


def _describe(job: dict[str, Any]) -> tuple[str, float | None, float]:
    """(description, total, completed) for the progress bar; no total means a pulsing bar."""
    state = job.get("status", "?")
    text = f"[bold]{job.get('id', '?')}[/bold] {status_text(state).markup}"
    progress = job.get("progress")
    if state == "succeeded":
        return text, 100, 100
    if state == "running" and isinstance(progress, int | float):
        return f"{text} {progress:.0f}%", 100, float(progress)
    if state == "storing":
        return f"{text} (copying to S3)", None, 0
    return text, None, 0


def follow(client: ApiClient, job_id: str, *, timeout: float, interval: float,
           first: dict[str, Any] | None = None) -> dict[str, Any]:
    """Poll the job, showing a live status on stderr, until it is succeeded or failed."""
    console = _stderr()
    deadline = time.monotonic() + timeout if timeout else None
    job = first if first is not None else client.job(job_id)
    shown = 0
    failures = 0
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(job_id, total=None)
        while True:
            events = job.get("events") or []
            for event in events[shown if shown <= len(events) else 0:]:
                reason = f" ({event['reason']})" if event.get("reason") else ""
                state = status_text(event.get("status", "?")).markup
                progress.console.print(f"[dim]{event.get('at', '')}[/dim] {state} "
                                       f"[dim]via {event.get('source', '?')}{reason}[/dim]")
            shown = len(events)
            description, total, completed = _describe(job)
            progress.update(task, description=description, total=total, completed=completed)
            if job.get("status") in TERMINAL:
                return job
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise CliError(f"gave up waiting for {job_id} after {timeout:g} s: it is still {job.get('status')}",
                               details=[f"carry on with `reelhook wait {job_id}`"], exit_code=EXIT_TIMEOUT)
            time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - now)))
            try:
                job = client.job(job_id)
                failures = 0
            except CliError as exc:
                failures += 1
                if exc.exit_code != EXIT_UNREACHABLE or failures >= MAX_POLL_FAILURES:
                    raise
                progress.update(task, description=f"{description} [yellow](retrying: {exc.message})[/yellow]")


def finish(job: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        _print_json(job)
    if job.get("status") == "failed":
        error = job.get("error") or {}
        raise CliError(f"job {job.get('id')} failed: {error.get('code', 'unknown')}: {error.get('message', '')}")
    if as_json:
        return
    outputs = job.get("outputs") or []
    size = human_bytes(sum(o.get("bytes") or 0 for o in outputs))
    where = ", ".join(o.get("s3_uri", "?") for o in outputs)
    console = _stdout()
    console.print(f"{status_text('succeeded').markup} {job.get('id')}: {len(outputs)} output(s), {size} {where}",
                  soft_wrap=True)
    console.print(f"[dim]fetch it with: reelhook download {job.get('id')}[/dim]", soft_wrap=True)


# -- download -----------------------------------------------------------------------------------


def _default_name(job_id: str, index: int, content_type: str | None) -> Path:
    extension = (mimetypes.guess_extension(content_type or "") if content_type else None) or ".mp4"
    return Path(f"{job_id}{extension}" if index == 0 else f"{job_id}-{index}{extension}")


@cli.command()
@click.argument("job_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), metavar="FILE",
              help="Where to write [default: <job id>.mp4].")
@click.option("--index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which of the job's outputs.")
@click.pass_context
def download(ctx: click.Context, job_id: str, output: Path | None, index: int) -> None:
    """Download a finished job's video and check its SHA-256."""
    job = _settings(ctx).client(ctx).job(job_id)
    outputs = job.get("outputs") or []
    if not outputs:
        if job.get("status") == "failed":
            error = job.get("error") or {}
            raise CliError(f"job {job_id} failed, there is nothing to download: "
                           f"{error.get('code', 'unknown')}: {error.get('message', '')}")
        raise CliError(f"job {job_id} is {job.get('status')} and has no outputs yet",
                       details=[f"wait for it with `reelhook wait {job_id}`"])
    if index >= len(outputs):
        raise CliError(f"job {job_id} has {len(outputs)} output(s): --index must be below {len(outputs)}",
                       exit_code=EXIT_USAGE)
    item = outputs[index]
    url = item.get("download_url")
    if not url:
        raise CliError(f"output {index} of {job_id} has no download_url (stored at {item.get('s3_uri')})")
    target = output or _default_name(job_id, index, item.get("content_type"))
    expected = item.get("sha256")
    digest, size = fetch(url, target, expected_bytes=item.get("bytes"), expected_sha256=expected)
    _stdout().print(f"wrote {target} ({human_bytes(size)}, sha256 {digest} {'verified' if expected else 'unchecked'})",
                    soft_wrap=True, markup=False)


def fetch(url: str, target: Path, *, expected_bytes: int | None, expected_sha256: str | None) -> tuple[str, int]:
    """Stream ``url`` into a temporary file beside ``target``; returns (sha256 hex, size).

    Only a file whose SHA-256 matches replaces ``target``. The presigned URL carries its own
    authorization, so no API credentials are sent with it.
    """
    partial = target.with_name(f".{target.name}.part")
    digest = hashlib.sha256()
    size = 0
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    try:
        with httpx.stream("GET", url, timeout=httpx.Timeout(60.0, connect=10.0), follow_redirects=True) as response:
            if response.status_code != 200:
                response.read()
                raise CliError(f"the download link answered HTTP {response.status_code}: {response.text.strip()[:200]}",
                               details=["links last an hour: `reelhook download` asks for a fresh one each time"])
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else expected_bytes
            with Progress(*columns, console=_stderr(), transient=True) as progress, partial.open("wb") as out:
                task = progress.add_task(target.name, total=total)
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    progress.update(task, completed=size)
        if expected_sha256 and digest.hexdigest() != expected_sha256:
            raise CliError(f"the download does not match the job's SHA-256; {target} was not written",
                           details=[f"expected {expected_sha256}", f"received {digest.hexdigest()} ({size} bytes)"],
                           exit_code=EXIT_INTEGRITY)
        os.replace(partial, target)
    except httpx.HTTPError as exc:
        raise CliError(f"the download failed: {exc or type(exc).__name__}", exit_code=EXIT_UNREACHABLE) from None
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return digest.hexdigest(), size
