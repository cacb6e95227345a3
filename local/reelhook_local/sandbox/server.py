"""The sandbox server: HTTP routing, the status ticker and result files.

Everything runs in background threads of the calling process: a ``ThreadingHTTPServer``
for requests, a ticker that moves tasks on every ``step_seconds``, and the webhook sender's
pool (webhooks.py), which keeps each task's webhooks in order unless faults say otherwise.
Faults (config.Faults) are injected into creates, status GETs, webhooks and downloads;
``fault_counts()``, ``forged_deliveries`` and ``dropped_webhooks`` report what happened.
"""

from __future__ import annotations

import hashlib
import logging
import re
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import cast
from urllib.parse import parse_qsl, urlsplit

from .aihubmax import AihubmaxApi
from .config import ApiRequestKind, DownloadFaultKind, SandboxConfig
from .faults import DroppedWebhook, FaultCounters, ForgedDelivery, choose_download_fault
from .freepik import FreepikApi
from .protocol import AbortResponse, ProviderApi, Request, Response
from .rate_limits import SlidingWindows, retry_after_header
from .tasks import Phase, Task, TaskStore
from .uniall import UniallApi
from .video import TaskVideo
from .webhooks import WebhookSender

log = logging.getLogger("reelhook_local.sandbox")

PROVIDERS = ("freepik", "uniall", "aihubmax")
FILES_PREFIX = "/files/"
FORGED_FILE_PREFIX = "forged-"  # result files only forged webhooks name
REQUEST_LOG_SIZE = 100_000  # the most recent requests kept for inspection (a burst benchmark reads them all)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str  # with the query string
    status: int
    at: float


class ProviderSandbox:
    """A local HTTP double of the Freepik, UniAll and AIHubMax APIs.

    >>> with ProviderSandbox(SandboxConfig(step_seconds=0.05)) as sandbox:
    ...     base = sandbox.base_url("freepik")  # + "/v1/ai/reference-to-video/veo-3-1"
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.counters = FaultCounters()
        self.tasks = TaskStore(on_add=self._count_task)
        self._providers: dict[str, ProviderApi] = {
            "freepik": FreepikApi(self),
            "uniall": UniallApi(self),
            "aihubmax": AihubmaxApi(self),
        }
        self._files = _FileServer(self)
        self._windows = {name: SlidingWindows(self.config.rate_limits.get(name, ())) for name in PROVIDERS}
        self._stopping = threading.Event()
        self._sender = WebhookSender(self, self._stopping)
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._sha256_lock = threading.Lock()
        self._sha256: dict[tuple[str, str | None, int | None], str] = {}
        self._log_lock = threading.Lock()
        self._request_log: deque[LoggedRequest] = deque(maxlen=REQUEST_LOG_SIZE)
        self._clean_downloads: dict[str, int] = {}  # full GETs served without a fault, by task

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ProviderSandbox:
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        self._stopping.clear()
        self._server = _Server((self.config.host, self.config.port), _Handler, self)
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.25},
                             name="sandbox-http", daemon=True),
            threading.Thread(target=self._tick_loop, name="sandbox-ticker", daemon=True),
            *self._sender.threads(),
        ]
        for thread in self._threads:
            thread.start()
        log.info("provider sandbox listening on %s", self.root_url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        self.tasks.changed.set()
        self._sender.wake()
        server.shutdown()
        server.server_close()
        deadline = time.monotonic() + 5
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads = []
        self._sender.close()

    def __enter__(self) -> ProviderSandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        host = self.config.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def base_url(self, provider: str) -> str:
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
        return f"{self.root_url}/{provider}"

    def result_url(self, task: Task) -> str:
        if task.link_expires_at is None:
            raise ValueError(f"task {task.task_id} has not completed: it has no result link")
        return f"{self.root_url}{FILES_PREFIX}{task.task_id}.mp4?expires={int(task.link_expires_at)}"

    @property
    def served_sha256(self) -> str:
        """The SHA-256 of ``config.video_bytes``: what every task gets by default.

        With ``distinct_videos`` or ``video_size_bytes`` each task's file differs: use
        ``sha256_for(task_id)``.
        """
        return hashlib.sha256(self.config.video_bytes).hexdigest()

    def video_for(self, task_id: str) -> TaskVideo:
        """The file served for a task (whether or not the task exists or has completed)."""
        config = self.config
        return TaskVideo(config.video_bytes, task_id if config.distinct_videos else None,
                         config.video_size_bytes)

    def video_bytes_for(self, task_id: str) -> bytes:
        """The bytes served for a task, in memory (stream big ones with ``video_for(id).chunks()``)."""
        return self.video_for(task_id).read()

    def sha256_for(self, task_id: str) -> str:
        """The SHA-256 (hex) of the file served for a task; computed by streaming, then cached."""
        video = self.video_for(task_id)
        if not video.has_box:
            return self.served_sha256
        key = (hashlib.sha256(video.base).hexdigest(), video.label, video.target_size)
        with self._sha256_lock:
            cached = self._sha256.get(key)
        if cached is None:
            cached = video.sha256()
            with self._sha256_lock:
                self._sha256[key] = cached
        return cached

    def now(self) -> float:
        return time.time()

    # -- test helpers --------------------------------------------------------------------------

    def clean_downloads(self, task_id: str) -> int:
        """GETs of the task's result served whole and unfaulted (a copy given one must succeed)."""
        with self._log_lock:
            return self._clean_downloads.get(task_id, 0)

    def download_outcomes(self, task_id: str) -> list[str]:
        """What each GET of the task's result link met, in order: "ok" (served whole, possibly
        after a stall), "link_expired" (past its deadline), or the injected fault's kind."""
        return self._files.outcomes(task_id)

    @property
    def request_log(self) -> list[LoggedRequest]:
        with self._log_lock:
            return list(self._request_log)

    def advance(self, task_id: str) -> Task | None:
        """Move a task one status step on now (sending its webhooks); None if already final."""
        task = self.tasks.advance(task_id, self.now(), self.config.link_ttl_seconds)
        if task is not None:
            self._notify(task)
        return task

    def force_status(self, task_id: str, phase: Phase | str) -> Task:
        """Put a task in any phase, even one it has passed, and send the matching webhooks."""
        task = self.tasks.force(task_id, Phase(phase), self.now(), self.config.link_ttl_seconds)
        self._notify(task)
        return task

    def wait_for(self, task_id: str, until: Callable[[Task], bool] | None = None,
                 timeout: float = 5.0) -> Task:
        """Poll the store until ``until(task)`` (default: the task is final); TimeoutError if not."""
        check = until or (lambda task: task.terminal)
        deadline = time.monotonic() + timeout
        while True:
            task = self.tasks[task_id]
            if check(task):
                return task
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} is still {task.phase} after {timeout} s")
            time.sleep(0.01)

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every queued, held or forged webhook has been sent or given up on."""
        return self._sender.wait_idle(timeout)

    # -- fault reports ----------------------------------------------------------------------------

    def fault_counts(self) -> dict[str, int]:
        """Counters of what was injected and served (see ``faults.COUNTERS``)."""
        return self.counters.snapshot()

    @property
    def forged_deliveries(self) -> list[ForgedDelivery]:
        """Every forged webhook sent so far, with the receiver's answer."""
        return self._sender.forged_deliveries

    @property
    def dropped_webhooks(self) -> list[DroppedWebhook]:
        """Every real webhook that was dropped instead of sent."""
        return self._sender.dropped_webhooks

    def rate_limited(self, provider: str) -> int:
        """How many requests to ``provider`` its rate limits refused so far."""
        return self._windows[provider].refused

    def api_fault(self, request: ApiRequestKind, provider: str | None = None) -> int | None:
        """The status an injected fault answers this create or status GET with, if any."""
        status = self.config.faults.take_api_fault(request, provider)
        if status is not None:
            self.counters.add("api_faults")
        return status

    # -- internals ------------------------------------------------------------------------------

    def _tick_loop(self) -> None:
        while not self._stopping.is_set():
            self.tasks.changed.clear()  # before looking: a change from here on ends the wait below
            step = self.config.step_seconds
            if step is None or not self.tasks.movable():
                # Nothing moves by time alone: sleep until a task is added, read or moved (or
                # a second passes, for a step_seconds set meanwhile), not every tick.
                self.tasks.changed.wait(1.0)
                continue
            for task in self.tasks.due(self.now(), step, self.config.link_ttl_seconds):
                self._notify(task)
            self._stopping.wait(self._tick_interval())

    def _tick_interval(self) -> float:
        step = self.config.step_seconds
        return 0.05 if step is None else min(0.05, max(0.005, step / 5))

    def _notify(self, task: Task) -> None:
        outgoing = self._providers[task.provider].notifications(task)
        if outgoing:
            self.tasks.mark_reported(task.task_id)
            self._sender.enqueue(task, outgoing)

    def _count_task(self, task: Task) -> None:
        for flag, counter in ((task.never_finishes, "tasks_never_finishing"), (task.vanished, "tasks_vanished"),
                              (task.serves_not_video, "tasks_not_video")):
            if flag:
                self.counters.add(counter)

    def _vanished(self, path: str) -> bool:
        """A status GET for a task the provider lost (its id is the path's last segment)."""
        task = self.tasks.get(path.rstrip("/").rpartition("/")[2])
        return task is not None and task.vanished

    def _respond(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Response:
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query))
        if parts.path.startswith(FILES_PREFIX):
            response = self._files.serve(method, parts.path.removeprefix(FILES_PREFIX), query, headers)
        else:
            name, _, rest = parts.path.lstrip("/").partition("/")
            provider = self._providers.get(name)
            vanished = provider is not None and method == "GET" and self._vanished(rest)
            if vanished:
                self.counters.add("task_missing_404s")
            if provider is None or vanished:
                response = Response.json(404, {"message": "Not found"})
            else:
                request = Request(method, "/" + rest, query, headers, body)
                try:
                    wait = self._windows[name].admit(self.now())
                    if wait is not None:
                        self.counters.add("rate_limited")
                        response = provider.refusal(429, retry_after_header(wait))
                    else:
                        response = provider.handle(request)
                except Exception:
                    log.exception("sandbox error on %s %s", method, raw_path)
                    response = Response.json(500, {"message": "sandbox error",
                                                   "detail": traceback.format_exc(limit=3)})
        with self._log_lock:
            self._request_log.append(LoggedRequest(method, raw_path, response.status, self.now()))
        return response


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # listen backlog: a burst of connections waits instead of being refused
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 sandbox: ProviderSandbox) -> None:
        self.sandbox = sandbox
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "reelhook-sandbox/1.0"
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        sandbox = cast(_Server, self.server).sandbox
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._write(Response.json(411, {"message": "send a Content-Length"}), close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._write(Response.json(400, {"message": "bad Content-Length"}), close=True)
            return
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._write(sandbox._respond(self.command, self.path, headers, body))

    def _write(self, response: Response, close: bool = False) -> None:
        self.send_response(response.status)
        headers = {"Content-Length": str(len(response.body)), **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        if response.chunks is None:
            self.wfile.write(response.body)
            return
        try:
            for chunk in response.chunks:
                self.wfile.write(chunk)
        except AbortResponse:  # a truncated download: the client sees the connection close early
            self.wfile.flush()
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):  # the client went away
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        sandbox = cast(_Server, self.server).sandbox
        level = logging.INFO if sandbox.config.log_requests else logging.DEBUG
        log.log(level, "%s %s", self.address_string(), format % args)


def _s3_error(status: int, code: str, text: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{text}</Message></Error>"
    ).encode()
    return Response(status, body, {"Content-Type": "application/xml"})


class _FileServer:
    """Result videos at ``/files/{task_id}.mp4?expires=<ts>``, like a presigned bucket link.

    Bodies are streamed, so padded files of any size cost no memory. GET requests may be
    faulted (expired, cut short, stalled, or an S3 500); HEAD requests never are.
    """

    def __init__(self, sandbox: ProviderSandbox) -> None:
        self.sandbox = sandbox
        self._lock = threading.Lock()
        self._downloads: dict[str, int] = {}  # GETs of a valid link so far, by task
        # What each GET of a live link met, in order: "ok", "link_expired" or the fault's kind.
        self._outcomes: dict[str, list[str]] = {}

    def serve(self, method: str, name: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Response:
        if method not in ("GET", "HEAD"):
            return _s3_error(405, "MethodNotAllowed", "The specified method is not allowed")
        if name.startswith(FORGED_FILE_PREFIX):
            self.sandbox.counters.add("forged_url_fetches")
        task = self.sandbox.tasks.get(name.removesuffix(".mp4")) if name.endswith(".mp4") else None
        if task is None or task.phase is not Phase.COMPLETED or task.link_expires_at is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        if query.get("expires") != str(int(task.link_expires_at)):
            return _s3_error(403, "SignatureDoesNotMatch",
                             "The request signature we calculated does not match the signature you provided.")
        if self.sandbox.now() >= task.link_expires_at:
            self._record(method, task.task_id, "link_expired")
            return _s3_error(403, "AccessDenied", "Request has expired")
        if method != "GET":
            fault = None
        elif task.serves_not_video:
            fault = "not_video"
        else:
            fault = self._choose_fault(task.task_id)
        self._record(method, task.task_id, fault or "ok")
        if fault == "expire":
            self.sandbox.counters.add("expired")
            return _s3_error(403, "AccessDenied", "Request has expired")
        if fault == "error":
            self.sandbox.counters.add("download_errors")
            return _s3_error(500, "InternalError", "We encountered an internal error. Please try again.")
        if fault == "empty":
            self.sandbox.counters.add("empty_bodies")
            return Response(200, b"", {"Content-Type": "video/mp4", "Content-Length": "0"})
        if fault == "html":
            self.sandbox.counters.add("html_answers")
            return Response(200, b"<!doctype html><html><body><h1>Please wait</h1></body></html>",
                            {"Content-Type": "text/html; charset=utf-8"})
        if fault == "not_video":
            self.sandbox.counters.add("not_video_bodies")
            junk = hashlib.sha256(task.task_id.encode()).digest() * 256  # 8 KiB, no container signature
            return Response(200, junk, {"Content-Type": "video/mp4"})

        video = self.sandbox.video_for(task.task_id)
        size = video.size
        etag = self.sandbox.served_sha256 if not video.has_box else hashlib.sha256(
            f"{self.sandbox.served_sha256}:{video.label}:{size}".encode()).hexdigest()
        common = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", "ETag": f'"{etag[:32]}"'}
        wanted = headers.get("range", "").strip()
        if not _RANGE.match(wanted):  # no range, or several: the whole file, as S3 does
            status, start, end = 200, 0, size - 1
        else:
            span = _byte_range(wanted, size)
            if span is None:
                return Response(416, b"", {**common, "Content-Range": f"bytes */{size}"})
            start, end = span
            status = 206
            common["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1
        if fault == "truncate":
            self.sandbox.counters.add("truncated")
        elif fault == "stall":
            self.sandbox.counters.add("stalled")
        elif method == "GET":
            self.sandbox.counters.add("downloads_ok")
        if method == "GET" and status == 200 and fault in (None, "stall"):  # a stalled body still arrives whole
            with self.sandbox._log_lock:
                clean = self.sandbox._clean_downloads
                clean[task.task_id] = clean.get(task.task_id, 0) + 1
        chunks = self._faulty(video.chunks(start, end), length, fault) if length > 0 else iter(())
        return Response(status, headers={**common, "Content-Length": str(length)}, chunks=chunks)

    def _record(self, method: str, task_id: str, outcome: str) -> None:
        if method == "GET":
            with self._lock:
                self._outcomes.setdefault(task_id, []).append(outcome)

    def outcomes(self, task_id: str) -> list[str]:
        with self._lock:
            return list(self._outcomes.get(task_id, ()))

    def _choose_fault(self, task_id: str) -> DownloadFaultKind | None:
        with self._lock:
            earlier = self._downloads.get(task_id, 0)
            self._downloads[task_id] = earlier + 1
        return choose_download_fault(self.sandbox.config.faults, earlier)

    def _faulty(self, chunks: Iterator[bytes], length: int, fault: DownloadFaultKind | None) -> Iterator[bytes]:
        """``chunks``, cut (truncate) or paused (stall) once half of ``length`` bytes went out."""
        if fault not in ("truncate", "stall"):
            yield from chunks
            return
        half = length // 2
        sent = 0
        faulted = False
        for chunk in chunks:
            if not faulted and sent + len(chunk) >= half:
                head, chunk = chunk[: half - sent], chunk[half - sent :]
                if head:
                    yield head
                if fault == "truncate":
                    raise AbortResponse
                self.sandbox._stopping.wait(self.sandbox.config.faults.stall_seconds)
                faulted = True
            sent += len(chunk)
            if chunk:
                yield chunk


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive span of a single ``bytes=`` range, or None when it cannot be satisfied."""
    match = _RANGE.match(header)
    if match is None or size == 0:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return None
    return start, end
