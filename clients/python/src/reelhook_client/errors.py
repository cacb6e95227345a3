"""Every failure the client reports is a ``ReelhookError``.

HTTP refusals carry what reelhook's error body says (``{"error": {"code", "message",
"fields"}}``), or API Gateway's own ``{"message"}`` answer, unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reelhook_client.models import FieldError, Job


class ReelhookError(Exception):
    """Base of every exception this package raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(ReelhookError, ValueError):
    """The client was given something it cannot work with (a URL without a host, ...)."""


class ApiUnreachable(ReelhookError):
    """No answer from the API: refused connection, timeout, broken connection (after retries)."""

    def __init__(self, message: str, *, url: str, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.cause = cause


class UnexpectedResponse(ReelhookError):
    """A success status whose body is not what the API sends: is the URL really reelhook's?"""

    def __init__(self, message: str, *, status: int, body: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ApiError(ReelhookError):
    """The API refused a request. ``code`` and ``body`` are the API's own."""

    def __init__(self, message: str, *, status: int | None, code: str | None = None,
                 body: dict[str, Any] | None = None, method: str = "", path: str = "", url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body or {}
        self.method = method
        self.path = path
        self.url = url

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        label = f" [{self.code}]" if self.code else ""
        return f"{self.message}{label} (HTTP {self.status})"


class ValidationFailed(ApiError):
    """400, 413, 415 or 422: the request is not valid and changed nothing.

    ``fields`` is the error body's ``fields`` list exactly as sent (``{"field", "message",
    "allowed"?}`` each); ``errors`` the same entries as ``FieldError`` models.
    """

    @property
    def fields(self) -> list[dict[str, Any]]:
        error = self.body.get("error")
        fields = error.get("fields") if isinstance(error, dict) else None
        return [f for f in fields if isinstance(f, dict)] if isinstance(fields, list) else []

    @property
    def errors(self) -> list[FieldError]:
        from reelhook_client.models import FieldError

        return [FieldError.model_validate(f) for f in self.fields]

    @property
    def fields_omitted(self) -> int:
        """How many more field errors the API left out of a long answer."""
        error = self.body.get("error")
        omitted = error.get("fields_omitted") if isinstance(error, dict) else None
        return omitted if isinstance(omitted, int) else 0


class NotFound(ApiError):
    """404: no such job (or the API has no such route)."""


class Conflict(ApiError):
    """409: an Idempotency-Key reused with another body (``idempotency_key_reused``), or
    cancelling a job that already finished (``job_finished``)."""


class AuthError(ApiError):
    """401/403 from the API, or (``status`` None) authentication could not be set up:
    no token, no AWS credentials or region, botocore missing."""

    def __init__(self, message: str, *, status: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, status=status, **kwargs)


class RateLimited(ApiError):
    """429 after every retry: the API's throttle kept refusing."""


class ServerError(ApiError):
    """5xx after every retry."""


class JobFailed(ReelhookError):
    """``run`` finished with a job that did not succeed; ``job`` is that job."""

    def __init__(self, job: Job) -> None:
        error = job.error
        reason = f"{error.code}: {error.message}" if error else "no reason given"
        super().__init__(f"job {job.id} {job.status}: {reason}")
        self.job = job


class JobCancelled(JobFailed):
    """``run`` finished with a cancelled job."""


class WaitTimeout(ReelhookError):
    """``wait`` gave up; ``job`` is the last state seen (not terminal)."""

    def __init__(self, job: Job, timeout: float) -> None:
        super().__init__(f"gave up waiting for {job.id} after {timeout:g} s: it is still {job.status}")
        self.job = job
        self.timeout = timeout


class IntegrityError(ReelhookError):
    """A download's SHA-256 (or size) is not the job's: nothing was written at the target."""

    def __init__(self, message: str, *, expected: str | None, received: str, size: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.received = received
        self.size = size


class DownloadFailed(ReelhookError):
    """The output's link answered something other than the video (after retries)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
