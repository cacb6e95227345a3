"""A small client for reelhook's HTTP API, turning every expected failure into ``CliError``."""

from __future__ import annotations

import contextvars
import json
import time
import uuid
from typing import Any

import click
import httpx

from reelhook_cli.auth import AuthError, AuthMode, make_auth

USER_AGENT = "reelhook-cli/0.1"
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
RETRY_STATUSES = {502, 503, 504}
# Transport failures after which the request may or may not have arrived. Retrying them is
# safe: GETs are idempotent and every POST carries an Idempotency-Key. A refused connection
# is not retried: the API is simply not there.
RETRY_ERRORS = (httpx.TimeoutException, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)

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


def _error_parts(response: httpx.Response) -> tuple[str | None, str, list[dict[str, Any]]]:
    """(code, message, fields) from reelhook's error body, API Gateway's {"message"} or plain text."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text.strip()[:300] or response.reason_phrase, []
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        fields = [f for f in error.get("fields") or [] if isinstance(f, dict)]
        return error.get("code"), str(error.get("message") or response.reason_phrase), fields
    if isinstance(body, dict) and "message" in body:  # API Gateway's own answers
        return None, str(body["message"]), []
    return None, response.text.strip()[:300] or response.reason_phrase, []


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


class ApiClient:
    def __init__(self, api_url: str, auth_mode: AuthMode, *, token: str | None = None,
                 region: str | None = None, retries: int = 2) -> None:
        self.api_url = api_url.rstrip("/")
        self.auth_mode = auth_mode
        self.retries = retries
        try:
            auth = make_auth(auth_mode, self.api_url, token=token, region=region)
        except AuthError as exc:
            raise CliError(str(exc), exit_code=EXIT_USAGE) from None
        try:
            self._http = httpx.Client(base_url=self.api_url, auth=auth, timeout=TIMEOUT,
                                      headers={"user-agent": USER_AGENT, "accept": "application/json"})
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise CliError(f"--api-url {api_url!r} is not a usable URL: {exc}", exit_code=EXIT_USAGE) from None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API ---------------------------------------------------------------------------

    def models(self) -> dict[str, Any]:
        return self._json("GET", "/v1/models")

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/jobs/{job_id}", job_id=job_id)

    def submit(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        # Without a key of the caller's, one per invocation still makes our own retries safe.
        key = idempotency_key or f"cli-{uuid.uuid4().hex}"
        return self._json("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": key})

    # -- plumbing --------------------------------------------------------------------------

    def _json(self, method: str, path: str, *, job_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        if response.is_success:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise CliError(f"the API at {self.api_url} answered {method} {path} with something that is not "
                               f"a JSON object (HTTP {response.status_code}); is --api-url right?")
            return body
        raise self._refusal(response, method, path, job_id)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.ConnectError as exc:
                raise CliError(
                    f"the reelhook API is not reachable at {self.api_url} ({_reason(exc)})",
                    details=["start it locally with `make serve`, or point --api-url / REELHOOK_API_URL elsewhere"],
                    exit_code=EXIT_UNREACHABLE,
                ) from None
            except RETRY_ERRORS as exc:
                if attempt >= self.retries:
                    raise CliError(f"{method} {self.api_url}{path} failed: {_reason(exc)}",
                                   exit_code=EXIT_UNREACHABLE) from None
            except AuthError as exc:
                raise CliError(str(exc), exit_code=EXIT_UNREACHABLE) from None
            except httpx.HTTPError as exc:
                raise CliError(f"{method} {self.api_url}{path} failed: {_reason(exc)}",
                               exit_code=EXIT_UNREACHABLE) from None
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    return response
            attempt += 1
            time.sleep(0.5 * 2 ** (attempt - 1))

    def _refusal(self, response: httpx.Response, method: str, path: str, job_id: str | None) -> CliError:
        status = response.status_code
        code, message, fields = _error_parts(response)
        if status in (401, 403):
            hint = {
                "none": "the API wants credentials: try --auth iam (AWS credentials) or --auth jwt --token ...",
                "iam": "check the AWS credentials and --region, and that they may call execute-api:Invoke here",
                "jwt": "check the token (--token / REELHOOK_TOKEN): expired, wrong audience or issuer?",
            }[self.auth_mode]
            return CliError(f"authentication failed (HTTP {status}, --auth {self.auth_mode}): {message}",
                            details=[hint], exit_code=EXIT_UNREACHABLE)
        if status == 404 and job_id is not None and code == "not_found":
            return CliError(f"no job {job_id} at {self.api_url}")
        label = f" [{code}]" if code else ""
        return CliError(f"{message}{label} (HTTP {status})", details=field_lines(fields), code=code, status=status,
                        fields=fields)


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
