"""``Client``: reelhook's API from synchronous code."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from reelhook_client._core import (
    CHUNK,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    MAX_PAGE,
    RETRY_STATUSES,
    Auth,
    Base,
    Call,
    LinkBusy,
    LinkRefused,
    OnProgress,
    Sink,
    Watch,
    content_length,
    finished,
    job_path,
    pick_output,
    target_path,
)
from reelhook_client.auth import Token
from reelhook_client.errors import DownloadFailed, UnexpectedResponse, WaitTimeout
from reelhook_client.models import Job, JobPage, ModelInfo, Output, ProviderHealth, ProviderList


class Client(Base):
    """A client for one reelhook API.

    ``auth``: ``"iam"`` (SigV4 for ``execute-api``, credentials from botocore's default chain;
    needs the ``[iam]`` extra), ``"jwt"`` (``token``, a string or a callable asked per
    request), ``None``, an ``httpx.Auth``, or ``"auto"`` (IAM for ``*.amazonaws.com``, else none).
    Idempotent requests are retried ``max_retries`` times on connection errors, 429 and 5xx.
    """

    def __init__(self, api_url: str, auth: Auth = "auto", token: Token | None = None, region: str | None = None,
                 timeout: float | httpx.Timeout = DEFAULT_TIMEOUT, *, max_retries: int = 3, backoff: float = 0.5,
                 user_agent: str | None = None, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(api_url, auth, token, region, timeout, max_retries=max_retries, backoff=backoff,
                         user_agent=user_agent)
        self._transport = transport
        self._http = httpx.Client(base_url=self.api_url, auth=self._auth, timeout=self.timeout,
                                  headers=self._headers, transport=transport)
        self._downloads: httpx.Client | None = None

    def close(self) -> None:
        self._http.close()
        if self._downloads is not None:
            self._downloads.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- jobs -------------------------------------------------------------------------------

    def submit(self, model: str, *, idempotency_key: str | None = None, **fields: Any) -> Job:
        """``POST /v1/jobs``: the accepted job (queued or submitted). Fields set to None are left out.

        Without an ``idempotency_key`` one is made up, so a retry never creates a second job;
        pass your own to make a re-run of your code give back the same job.
        """
        call = self.submit_call(model, idempotency_key, fields)
        return self.parse(Job, call, self._json(call))

    def get(self, job_id: str) -> Job:
        call = Call("GET", job_path(job_id))
        return self.parse(Job, call, self._json(call))

    def wait(self, job_or_id: Job | str, *, timeout: float | None = None,
             poll_interval: float = DEFAULT_POLL_INTERVAL, on_update: Callable[[Job], Any] | None = None) -> Job:
        """Poll until the job is succeeded, failed or cancelled, and return it.

        ``on_update(job)`` is called on the first sight of the job and on each change of its
        status or progress. Raises ``WaitTimeout`` (carrying the last job seen) after ``timeout`` s.
        """
        job = job_or_id if isinstance(job_or_id, Job) else self.get(job_or_id)
        deadline = time.monotonic() + timeout if timeout is not None else None
        watch = Watch()
        while True:
            if watch.changed(job) and on_update is not None:
                on_update(job)
            if job.done:
                return job
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise WaitTimeout(job, timeout or 0.0)
            time.sleep(poll_interval if deadline is None else max(0.0, min(poll_interval, deadline - now)))
            job = self.get(job.id)

    def run(self, model: str, *, idempotency_key: str | None = None, timeout: float | None = None,
            poll_interval: float = DEFAULT_POLL_INTERVAL, on_update: Callable[[Job], Any] | None = None,
            **fields: Any) -> Job:
        """Submit and wait: the succeeded job with its outputs, or ``JobFailed`` carrying the job."""
        job = self.submit(model, idempotency_key=idempotency_key, **fields)
        return finished(self.wait(job, timeout=timeout, poll_interval=poll_interval, on_update=on_update))

    def list_page(self, *, status: str | None = None, model: str | None = None, provider: str | None = None,
                  client_reference: str | None = None, created_after: datetime | str | None = None,
                  created_before: datetime | str | None = None, limit: int | None = None,
                  cursor: str | None = None) -> JobPage:
        """One page of ``GET /v1/jobs`` (``limit`` 1-100 jobs); pass its ``next_cursor`` for the next."""
        call = self.list_call(status=status, model=model, provider=provider, client_reference=client_reference,
                              created_after=created_after, created_before=created_before, limit=limit, cursor=cursor)
        return self.parse(JobPage, call, self._json(call))

    def list(self, *, status: str | None = None, model: str | None = None, provider: str | None = None,
             client_reference: str | None = None, created_after: datetime | str | None = None,
             created_before: datetime | str | None = None, limit: int | None = None,
             page_size: int = MAX_PAGE) -> Iterator[Job]:
        """Every matching job, page after page; ``limit`` stops after that many in all."""
        remaining, page_size = self.page_sizes(limit, page_size)
        cursor: str | None = None
        while True:
            size = page_size if remaining is None else min(page_size, remaining)
            page = self.list_page(status=status, model=model, provider=provider, client_reference=client_reference,
                                  created_after=created_after, created_before=created_before, limit=size,
                                  cursor=cursor)
            for job in page.jobs:
                yield job
                if remaining is not None:
                    remaining -= 1
                    if remaining == 0:
                        return
            if not page.next_cursor:
                return
            if page.next_cursor == cursor:
                raise UnexpectedResponse("GET /v1/jobs gave the same cursor twice", status=200, body=cursor)
            cursor = page.next_cursor

    def cancel(self, job_id: str) -> Job:
        """``POST /v1/jobs/{id}/cancel``: the cancelled job. ``Conflict`` (``job_finished``) if it
        already succeeded or failed. The provider's task may still run (and bill)."""
        call = self.cancel_call(job_id)
        return self.parse(Job, call, self._json(call))

    def models(self) -> list[ModelInfo]:
        """``GET /v1/models``: what each model accepts, and its defaults."""
        call = Call("GET", "/v1/models")
        return self.parse_models(call, self._json(call))

    def providers(self) -> list[ProviderHealth]:
        """``GET /v1/providers``: each provider's circuit, request budget and tasks in flight."""
        call = Call("GET", "/v1/providers")
        return self.parse(ProviderList, call, self._json(call)).providers

    # -- download ---------------------------------------------------------------------------

    def download(self, job: Job | str, path_or_dir: str | os.PathLike[str] = ".", *, index: int = 0,
                 on_progress: OnProgress | None = None) -> Path:
        """Stream output ``index`` of a succeeded job to ``path_or_dir`` and return the path written.

        The bytes go to a temporary file beside the target, which replaces the target only if
        its SHA-256 and size are the output's (else ``IntegrityError``, and nothing is left).
        ``on_progress(bytes_done, total)`` follows each chunk. An expired link is renewed once.
        """
        fresh = not isinstance(job, Job)
        current = self.get(job) if isinstance(job, str) else job
        output = pick_output(current, index)
        target = target_path(path_or_dir, current, index, output)
        attempt = 0
        while True:
            try:
                if output.download_url is None:
                    raise LinkRefused(0, "no download_url")
                return self._fetch(output.download_url, target, output, on_progress)
            except LinkRefused as exc:
                # Presigned links last an hour: a job read earlier may hold a dead one.
                if fresh:
                    raise DownloadFailed(str(exc), status=exc.status or None) from None
                current, fresh = self.get(current.id), True
                output = pick_output(current, index)
            except (httpx.TransportError, LinkBusy) as exc:
                if attempt >= self.retry_policy.max_retries:
                    raise DownloadFailed(f"the download failed: {str(exc) or type(exc).__name__}") from None
                time.sleep(self.download_delay(attempt, exc))
                attempt += 1

    def _fetch(self, url: str, target: Path, output: Output, on_progress: OnProgress | None) -> Path:
        if self._downloads is None:
            self._downloads = httpx.Client(transport=self._transport, **self.download_options())
        with self._downloads.stream("GET", url) as response:
            if response.status_code in RETRY_STATUSES:
                raise LinkBusy(response)
            if response.status_code != 200:
                response.read()
                raise LinkRefused(response.status_code, response.text)
            with Sink(target, output, content_length(response)) as sink:
                for chunk in response.iter_bytes(CHUNK):
                    sink.write(chunk)
                    if on_progress is not None:
                        on_progress(sink.done, sink.total)
                return sink.commit()

    # -- plumbing ---------------------------------------------------------------------------

    def _json(self, call: Call) -> dict[str, Any]:
        return self.answer(call, self._send(call))

    def _send(self, call: Call) -> httpx.Response:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                # request(), not send(): one place for a test to see every API call.
                response = self._http.request(call.method, call.path, params=call.params, content=call.body,
                                              headers=call.headers)
            except httpx.UnsupportedProtocol as exc:
                raise self.unreachable(call, exc) from None
            except httpx.TransportError as exc:
                if not call.retry or attempt >= self.retry_policy.max_retries:
                    raise self.unreachable(call, exc) from None
            except httpx.HTTPError as exc:
                raise self.unreachable(call, exc) from None
            else:
                if response.status_code not in RETRY_STATUSES or not call.retry \
                        or attempt >= self.retry_policy.max_retries:
                    return response
            time.sleep(self.retry_policy.delay(attempt, response))
            attempt += 1
