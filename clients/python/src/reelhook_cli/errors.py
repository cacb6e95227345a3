"""How the CLI reports failures: every ``ReelhookError`` becomes a ``CliError`` with an exit code."""

from __future__ import annotations

import contextvars
import json
from typing import Any
from urllib.parse import unquote

import click
import httpx

from reelhook_client import (
    ApiError,
    ApiUnreachable,
    AuthError,
    ConfigurationError,
    DownloadFailed,
    IntegrityError,
    JobFailed,
    ReelhookError,
    WaitTimeout,
)

# Exit codes (documented in `reelhook --help`).
EXIT_FAILED = 1  # the job failed, or the API refused the request
EXIT_USAGE = 2  # click's own code for bad command-line usage
EXIT_UNREACHABLE = 3  # the API cannot be reached, or authentication failed
EXIT_TIMEOUT = 4  # `wait` gave up
EXIT_INTEGRITY = 5  # a download did not match its SHA-256


# Set by any command's --json: its errors are then one JSON object on stderr, as its answers are on stdout.
JSON_ERRORS = contextvars.ContextVar("reelhook_json_errors", default=False)


def want_json_errors(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    """The --json options' callback."""
    if value:
        JSON_ERRORS.set(True)
    return value


class CliError(click.ClickException):
    """An expected failure: a short message (and detail lines) on stderr, no traceback."""

    def __init__(self, message: str, *, details: list[str] | None = None, exit_code: int = EXIT_FAILED,
                 code: str | None = None, status: int | None = None,
                 fields: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.details = details or []
        self.exit_code = exit_code
        self.code, self.status, self.fields = code, status, fields or []

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "exit_code": self.exit_code}
        if self.code:
            error["code"] = self.code
        if self.status is not None:
            error["http_status"] = self.status
        if self.fields:
            error["fields"] = self.fields
        if self.details and not self.fields:
            error["details"] = self.details
        return {"error": error}

    def show(self, file: Any = None) -> None:
        if JSON_ERRORS.get():
            click.echo(json.dumps(self.as_dict(), ensure_ascii=False), err=True)
            return
        click.secho("Error: ", fg="red", bold=True, nl=False, err=True)
        click.echo(self.message, err=True)
        for line in self.details:
            click.echo(f"  {line}", err=True)


def field_lines(fields: list[dict[str, Any]]) -> list[str]:
    lines = []
    for field in fields:
        line = f"{field.get('field', '?')}: {field.get('message', 'is not valid')}"
        allowed = field.get("allowed")
        if isinstance(allowed, dict):  # a range, e.g. {"min": 1, "max": 3}
            line += f" (allowed: {', '.join(f'{k} {v}' for k, v in allowed.items())})"
        elif isinstance(allowed, list) and allowed and not all(str(a) in line for a in allowed):
            line += f" (allowed: {', '.join(str(a) for a in allowed)})"
        lines.append(line)
    return lines


AUTH_HINTS = {
    "none": "the API wants credentials: try --auth iam (AWS credentials) or --auth jwt --token ...",
    "iam": "check the AWS credentials and --region, and that they may call execute-api:Invoke here",
    "jwt": "check the token (--token / REELHOOK_TOKEN): expired, wrong audience or issuer?",
}


def setup_error(exc: ReelhookError) -> CliError:
    """A client that cannot be built (bad --api-url, jwt without a token): bad usage."""
    if isinstance(exc, ConfigurationError):
        return CliError(f"--api-url is not usable: {exc.message}", exit_code=EXIT_USAGE)
    return CliError(exc.message, exit_code=EXIT_USAGE)


def cli_error(exc: ReelhookError, *, api_url: str, auth_mode: str) -> CliError:
    """The message, exit code and JSON fields for a failure the client reported."""
    if isinstance(exc, AuthError):
        if exc.status is None:  # credentials could not be found or used
            return CliError(exc.message, exit_code=EXIT_UNREACHABLE)
        return CliError(f"authentication failed (HTTP {exc.status}, --auth {auth_mode}): {exc.message}",
                        details=[AUTH_HINTS.get(auth_mode, AUTH_HINTS["iam"])], exit_code=EXIT_UNREACHABLE,
                        code=exc.code, status=exc.status)
    if isinstance(exc, ApiError):
        if exc.status == 404 and exc.code == "not_found" and exc.path.startswith("/v1/jobs/"):
            job_id = unquote(exc.path.removeprefix("/v1/jobs/").split("/", 1)[0])
            return CliError(f"no job {job_id} at {api_url}", code=exc.code, status=exc.status)
        fields = [dict(f) for f in getattr(exc, "fields", [])]
        return CliError(str(exc), details=field_lines(fields), code=exc.code, status=exc.status, fields=fields)
    if isinstance(exc, ApiUnreachable):
        details = (["start it locally with `make serve`, or point --api-url / REELHOOK_API_URL elsewhere"]
                   if isinstance(exc.cause, httpx.ConnectError) else [])
        return CliError(exc.message, details=details, exit_code=EXIT_UNREACHABLE)
    if isinstance(exc, WaitTimeout):
        return CliError(exc.message, details=[f"carry on with `reelhook wait {exc.job.id}`"], exit_code=EXIT_TIMEOUT)
    if isinstance(exc, IntegrityError):
        details = [f"expected {exc.expected}", f"received {exc.received} ({exc.size} bytes)"]
        return CliError(exc.message, details=details, exit_code=EXIT_INTEGRITY)
    if isinstance(exc, JobFailed):
        error = exc.job.error
        reason = f"{error.code}: {error.message}" if error else "unknown: "
        verb = "failed" if exc.job.status == "failed" else f"was {exc.job.status}"
        return CliError(f"job {exc.job.id} {verb}: {reason}")
    if isinstance(exc, DownloadFailed):
        if exc.status is None:
            return CliError(exc.message, exit_code=EXIT_UNREACHABLE)
        return CliError(exc.message, details=["links last an hour: `reelhook download` asks for a fresh one each time"])
    return CliError(exc.message)
