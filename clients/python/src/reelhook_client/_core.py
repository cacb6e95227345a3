"""What the sync and async clients share: requests as data, the retry policy, answers turned
into models or exceptions, and the download's temporary file. No I/O happens here."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import mimetypes
import os
import random
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from reelhook_client._version import __version__
from reelhook_client.auth import AuthMode, Token, default_auth_mode, make_auth
from reelhook_client.errors import (
    ApiError,
    ApiUnreachable,
    AuthError,
    ConfigurationError,
    Conflict,
    IntegrityError,
    JobCancelled,
    JobFailed,
    NotFound,
    RateLimited,
    ReelhookError,
    ServerError,
    UnexpectedResponse,
    ValidationFailed,
)
from reelhook_client.models import CANCELLED, Job, JobPage, ModelInfo, Output, ProviderList

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DOWNLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
DEFAULT_POLL_INTERVAL = 2.0
# API Gateway throttling (429) and a Lambda or gateway hiccup (5xx) pass; a 4xx verdict does not.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0  # a longer Retry-After would hang the caller: wait at most this long
MAX_PAGE = 100
CHUNK = 1024 * 1024

Auth = AuthMode | httpx.Auth | Literal["auto"] | None
OnProgress = Callable[[int, int | None], Any]
Parsed = TypeVar("Parsed", Job, JobPage, ProviderList)


class NoOutputs(ReelhookError):
    """``download`` was asked for an output the job does not have (yet)."""

    def __init__(self, message: str, job: Job) -> None:
        super().__init__(message)
        self.job = job


@dataclass(frozen=True)
class Call:
    """One API request. ``retry``: sending it twice does what sending it once does."""

    method: str
    path: str
    params: dict[str, str] | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry: bool = True


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff: float = 0.5  # the first delay; doubled per retry, with jitter
    max_backoff: float = 8.0

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        after = retry_after(response) if response is not None else None
        if after is not None:
            return min(after, MAX_RETRY_AFTER)
        base = min(self.max_backoff, self.backoff * 2 ** attempt)
        return base * (0.5 + random.random() / 2)  # jitter: clients refused together do not retry together


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def iso(value: datetime | str) -> str:
    """A filter time as the API writes its own (UTC, milliseconds, Z); a naive datetime is local time."""
    if isinstance(value, str):
        return value
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_path(job_id: str, suffix: str = "") -> str:
    if not job_id:
        raise ConfigurationError("a job id is needed")
    return f"/v1/jobs/{quote(job_id, safe='')}{suffix}"  # an id can never reach another route


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class Base:
    """Configuration and everything that is the same whether requests are awaited or not."""

    def __init__(self, api_url: str, auth: Auth = "auto", token: Token | None = None, region: str | None = None,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, *, max_retries: int = 3, backoff: float = 0.5,
                 user_agent: str | None = None) -> None:
        try:
            url = httpx.URL(api_url)
        except httpx.InvalidURL as exc:
            raise ConfigurationError(f"{api_url!r} is not a URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigurationError(f"{api_url!r} is not an http(s) URL with a host")
        self.api_url = str(api_url).rstrip("/")
        mode = default_auth_mode(self.api_url) if auth == "auto" else auth
        self.auth_mode: str = mode if isinstance(mode, str) else ("none" if mode is None else "custom")
        self._auth = make_auth(mode, self.api_url, token=token, region=region)
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry_policy = RetryPolicy(max_retries=max_retries, backoff=backoff)
        agent = f"reelhook-client/{__version__}"
        self._headers = {"accept": "application/json", "user-agent": f"{user_agent} {agent}" if user_agent else agent}

    # -- requests ---------------------------------------------------------------------------

    @staticmethod
    def submit_call(model: str | None, idempotency_key: str | None, fields: Mapping[str, Any]) -> Call:
        # None means "not given" (the model's default applies), so it is left out.
        body = {name: value for name, value in {"model": model, **fields}.items() if value is not None}
        # Always a key: a retried POST then gives back the job the first one made, never a second.
        key = idempotency_key or f"rh-{uuid.uuid4().hex}"
        return Call("POST", "/v1/jobs", body=encode(body),
                    headers={"content-type": "application/json", "idempotency-key": key})

    @staticmethod
    def list_call(*, status: str | None, model: str | None, provider: str | None, client_reference: str | None,
                  created_after: datetime | str | None, created_before: datetime | str | None, limit: int | None,
                  cursor: str | None) -> Call:
        if limit is not None and not 1 <= limit <= MAX_PAGE:
            raise ConfigurationError(f"a page holds 1 to {MAX_PAGE} jobs, not {limit}")
        params = {"status": status, "model": model, "provider": provider, "client_reference": client_reference,
                  "created_after": iso(created_after) if created_after is not None else None,
                  "created_before": iso(created_before) if created_before is not None else None,
                  "limit": str(limit) if limit is not None else None, "cursor": cursor}
        return Call("GET", "/v1/jobs", params={k: v for k, v in params.items() if v is not None})

    @staticmethod
    def cancel_call(job_id: str) -> Call:
        # Cancelling twice leaves the job as cancelling once does, so a lost answer may be asked again.
        return Call("POST", job_path(job_id, "/cancel"))

    @staticmethod
    def page_sizes(limit: int | None, page_size: int) -> tuple[int | None, int]:
        if limit is not None and limit < 1:
            raise ConfigurationError(f"limit must be at least 1, not {limit}")
        if not 1 <= page_size <= MAX_PAGE:
            raise ConfigurationError(f"page_size must be 1 to {MAX_PAGE}, not {page_size}")
        return limit, page_size

    def download_options(self) -> dict[str, Any]:
        # No API credentials: a presigned URL carries its own authorization.
        return {"timeout": DOWNLOAD_TIMEOUT, "follow_redirects": True,
                "headers": {"user-agent": self._headers["user-agent"]}}

    def download_delay(self, attempt: int, exc: Exception) -> float:
        return self.retry_policy.delay(attempt, exc.response if isinstance(exc, LinkBusy) else None)

    # -- answers ----------------------------------------------------------------------------

    def unreachable(self, call: Call, exc: Exception) -> ApiUnreachable:
        reason = str(exc).strip() or type(exc).__name__
        if isinstance(exc, httpx.ConnectError):
            message = f"the reelhook API is not reachable at {self.api_url} ({reason})"
        else:
            message = f"{call.method} {self.api_url}{call.path} failed: {reason}"
        return ApiUnreachable(message, url=self.api_url, cause=exc)

    def answer(self, call: Call, response: httpx.Response) -> dict[str, Any]:
        """The JSON object of a 2xx answer; any other answer raised as its exception."""
        if not response.is_success:
            raise error_for(response, call, self.api_url)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise UnexpectedResponse(
                f"the API at {self.api_url} answered {call.method} {call.path} with something that is not a JSON "
                f"object (HTTP {response.status_code}); is the API URL right?",
                status=response.status_code, body=response.text[:1000])
        return body

    def parse(self, kind: type[Parsed], call: Call, body: dict[str, Any]) -> Parsed:
        from pydantic import ValidationError

        try:
            return kind.from_api(body)
        except ValidationError as exc:
            raise UnexpectedResponse(f"{call.method} {call.path}: the answer is not a reelhook {kind.__name__}: "
                                     f"{exc.error_count()} problem(s), first {exc.errors()[0]['msg']}",
                                     status=200, body=json.dumps(body)[:1000]) from None

    def parse_models(self, call: Call, body: dict[str, Any]) -> list[ModelInfo]:
        from pydantic import ValidationError

        entries = body.get("models")
        if not isinstance(entries, list):
            raise UnexpectedResponse(f"{call.method} {call.path}: no models list in the answer", status=200,
                                     body=json.dumps(body)[:1000])
        try:
            return [ModelInfo.from_api(entry) for entry in entries]
        except (ValidationError, TypeError) as exc:
            raise UnexpectedResponse(f"{call.method} {call.path}: a catalogue entry is not valid: {exc}",
                                     status=200, body=json.dumps(body)[:1000]) from None


def finished(job: Job) -> Job:
    """``run``'s verdict: the job if it succeeded, else JobFailed (JobCancelled) carrying it."""
    if job.status == CANCELLED:
        raise JobCancelled(job)
    if not job.succeeded:
        raise JobFailed(job)
    return job


def error_for(response: httpx.Response, call: Call, api_url: str) -> ApiError:
    status = response.status_code
    code, message, body = _error_parts(response)
    kind: type[ApiError]
    if status in (400, 413, 415, 422):
        kind = ValidationFailed
    elif status in (401, 403):
        kind = AuthError
    elif status == 404:
        kind = NotFound
    elif status == 409:
        kind = Conflict
    elif status == 429:
        kind = RateLimited
    elif status >= 500:
        kind = ServerError
    else:
        kind = ApiError
    return kind(message, status=status, code=code, body=body, method=call.method, path=call.path,
                url=f"{api_url}{call.path}")


def _error_parts(response: httpx.Response) -> tuple[str | None, str, dict[str, Any]]:
    """(code, message, body) from reelhook's error body, API Gateway's {"message"} or plain text."""
    fallback = response.text.strip()[:300] or response.reason_phrase
    try:
        body = response.json()
    except ValueError:
        return None, fallback, {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = error.get("code")
        return (str(code) if code is not None else None), str(error.get("message") or response.reason_phrase), body
    if isinstance(body, dict) and "message" in body:  # API Gateway's own answers
        return None, str(body["message"]), body
    return None, fallback, body if isinstance(body, dict) else {}


# -- wait ----------------------------------------------------------------------------------------


class Watch:
    """Tells ``wait`` when a job changed status or progress (the first sight counts as a change)."""

    def __init__(self) -> None:
        self._last: tuple[str, int | None] | None = None

    def changed(self, job: Job) -> bool:
        key = (job.status, job.progress)
        if key == self._last:
            return False
        self._last = key
        return True


# -- download ------------------------------------------------------------------------------------


def pick_output(job: Job, index: int) -> Output:
    if not job.outputs:
        if job.status == CANCELLED:
            raise JobCancelled(job)
        if job.status == "failed":
            raise JobFailed(job)
        raise NoOutputs(f"job {job.id} is {job.status} and has no outputs yet", job)
    if not 0 <= index < len(job.outputs):
        raise NoOutputs(f"job {job.id} has {len(job.outputs)} output(s), no output {index}", job)
    return job.outputs[index]


def default_name(job: Job, index: int, output: Output) -> str:
    extension = mimetypes.guess_extension(output.content_type or "") or ".mp4"
    return f"{job.id}{extension}" if index == 0 else f"{job.id}-{index}{extension}"


def target_path(path_or_dir: str | os.PathLike[str], job: Job, index: int, output: Output) -> Path:
    """A directory (existing, or named with a trailing slash) gets ``<job id>.<ext>`` inside it."""
    text = os.fspath(path_or_dir)
    path = Path(text)
    if path.is_dir() or text.endswith(("/", os.sep)):
        return path / default_name(job, index, output)
    return path


class LinkRefused(Exception):
    """The download link answered with a status other than 200."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"the download link answered HTTP {status}: {text.strip()[:200]}")
        self.status = status


class LinkBusy(Exception):
    """The download link answered 429 or 5xx: worth another try."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"the download link answered HTTP {response.status_code}")
        self.response = response


class Sink:
    """A temporary file beside the target that becomes the target only if size and SHA-256 match."""

    def __init__(self, target: Path, output: Output, total: int | None) -> None:
        self.target = target
        self.output = output
        self.total = total if total is not None else output.bytes
        self.done = 0
        self._digest = hashlib.sha256()
        target.parent.mkdir(parents=True, exist_ok=True)
        # Beside the target, so the rename is atomic; "x" never reuses a name, and unlike mkstemp
        # the file gets the umask's permissions, as the finished video should.
        self._path = target.parent / f".{target.name}.{secrets.token_hex(6)}.part"
        self._file: IO[bytes] = self._path.open("xb")

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._digest.update(chunk)
        self.done += len(chunk)

    def commit(self) -> Path:
        self._file.close()
        received = self._digest.hexdigest()
        if received != self.output.sha256 or self.done != self.output.bytes:
            raise IntegrityError(
                f"the download does not match the job's output (SHA-256 {self.output.sha256}, "
                f"{self.output.bytes} bytes): got {received}, {self.done} bytes; {self.target} was not written",
                expected=self.output.sha256, received=received, size=self.done)
        os.replace(self._path, self.target)
        return self.target

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(OSError):
            self._path.unlink(missing_ok=True)

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()  # after commit the temporary name is gone already


def content_length(response: httpx.Response) -> int | None:
    length = response.headers.get("content-length")
    return int(length) if length and length.isdigit() else None
