"""The sandbox server: HTTP routing, the status ticker, result files and the webhook sender.

Everything runs in background threads of the calling process: a ``ThreadingHTTPServer``
for requests, a ticker that moves tasks on every ``step_seconds``, and one sender thread
that delivers webhooks in order (with retries on connection errors and 5xx answers).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import cast
from urllib.parse import parse_qsl, urlsplit

import httpx

from .aihubmax import AihubmaxApi
from .config import SandboxConfig
from .freepik import FreepikApi
from .protocol import Outgoing, ProviderApi, Request, Response
from .tasks import Phase, Task, TaskStore, WebhookDelivery
from .uniall import UniallApi

log = logging.getLogger("reelhook_local.sandbox")

PROVIDERS = ("freepik", "uniall", "aihubmax")
FILES_PREFIX = "/files/"
REQUEST_LOG_SIZE = 10_000  # the most recent requests kept for inspection
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
        self.tasks = TaskStore()
        self._providers: dict[str, ProviderApi] = {
            "freepik": FreepikApi(self),
            "uniall": UniallApi(self),
            "aihubmax": AihubmaxApi(self),
        }
        self._files = _FileServer(self)
        self._sender = _WebhookSender(self)
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._log_lock = threading.Lock()
        self._request_log: deque[LoggedRequest] = deque(maxlen=REQUEST_LOG_SIZE)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ProviderSandbox:
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        self._stopping.clear()
        self._server = _Server((self.config.host, self.config.port), _Handler, self)
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                             name="sandbox-http", daemon=True),
            threading.Thread(target=self._tick_loop, name="sandbox-ticker", daemon=True),
            threading.Thread(target=self._sender.run, name="sandbox-webhooks", daemon=True),
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
        self._sender.wake()
        server.shutdown()
        server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

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
        return hashlib.sha256(self.config.video_bytes).hexdigest()

    def now(self) -> float:
        return time.time()

    # -- test helpers --------------------------------------------------------------------------

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
        """Wait until every queued webhook has been delivered or given up on."""
        return self._sender.wait_idle(timeout)

    # -- internals ------------------------------------------------------------------------------

    def _tick_loop(self) -> None:
        while not self._stopping.wait(self._tick_interval()):
            step = self.config.step_seconds
            if step is None:
                continue
            for task in self.tasks.due(self.now(), step, self.config.link_ttl_seconds):
                self._notify(task)

    def _tick_interval(self) -> float:
        step = self.config.step_seconds
        return 0.05 if step is None else min(0.05, max(0.005, step / 5))

    def _notify(self, task: Task) -> None:
        outgoing = self._providers[task.provider].notifications(task)
        if outgoing:
            self.tasks.mark_reported(task.task_id)
            self._sender.enqueue(task.task_id, outgoing)

    def _respond(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Response:
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query))
        if parts.path.startswith(FILES_PREFIX):
            response = self._files.serve(method, parts.path.removeprefix(FILES_PREFIX), query, headers)
        else:
            name, _, rest = parts.path.lstrip("/").partition("/")
            provider = self._providers.get(name)
            if provider is None:
                response = Response.json(404, {"message": "Not found"})
            else:
                request = Request(method, "/" + rest, query, headers, body)
                try:
                    response = provider.handle(request)
                except Exception:
                    log.exception("sandbox error on %s %s", method, raw_path)
                    response = Response.json(500, {"message": "sandbox error",
                                                   "detail": traceback.format_exc(limit=3)})
        with self._log_lock:
            self._request_log.append(LoggedRequest(method, raw_path, response.status, self.now()))
        return response


class _Server(ThreadingHTTPServer):
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
        if self.command != "HEAD":
            self.wfile.write(response.body)

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
    """Result videos at ``/files/{task_id}.mp4?expires=<ts>``, like a presigned bucket link."""

    def __init__(self, sandbox: ProviderSandbox) -> None:
        self.sandbox = sandbox

    def serve(self, method: str, name: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Response:
        if method not in ("GET", "HEAD"):
            return _s3_error(405, "MethodNotAllowed", "The specified method is not allowed")
        task = self.sandbox.tasks.get(name.removesuffix(".mp4")) if name.endswith(".mp4") else None
        if task is None or task.phase is not Phase.COMPLETED or task.link_expires_at is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        if query.get("expires") != str(int(task.link_expires_at)):
            return _s3_error(403, "SignatureDoesNotMatch",
                             "The request signature we calculated does not match the signature you provided.")
        if self.sandbox.now() >= task.link_expires_at:
            return _s3_error(403, "AccessDenied", "Request has expired")
        data = self.sandbox.config.video_bytes
        common = {
            "Content-Type": "video/mp4",
            "Accept-Ranges": "bytes",
            "ETag": f'"{self.sandbox.served_sha256[:32]}"',
        }
        wanted = headers.get("range", "").strip()
        if not _RANGE.match(wanted):  # no range, or several: the whole file, as S3 does
            return Response(200, data, common)
        span = _byte_range(wanted, len(data))
        if span is None:
            return Response(416, b"", {**common, "Content-Range": f"bytes */{len(data)}"})
        start, end = span
        return Response(206, data[start : end + 1], {**common, "Content-Range": f"bytes {start}-{end}/{len(data)}"})


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


class _WebhookSender:
    """One thread that delivers webhooks in the order they were queued."""

    def __init__(self, sandbox: ProviderSandbox) -> None:
        self.sandbox = sandbox
        self._queue: queue.Queue[tuple[str, Outgoing] | None] = queue.Queue()  # None: wake up
        self._idle = threading.Condition()
        self._pending = 0

    def enqueue(self, task_id: str, outgoing: list[Outgoing]) -> None:
        with self._idle:
            self._pending += len(outgoing)
        for item in outgoing:
            self._queue.put((task_id, item))

    def wake(self) -> None:
        self._queue.put(None)

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def run(self) -> None:
        client: httpx.Client | None = None  # made on first use: building one takes a while
        try:
            while not self.sandbox._stopping.is_set():
                try:
                    queued = self._queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                if queued is None:
                    continue
                task_id, item = queued
                try:
                    if client is None:
                        client = httpx.Client(timeout=self.sandbox.config.webhook_timeout_seconds, trust_env=False)
                    self.sandbox.tasks.add_delivery(task_id, self._deliver(client, item))
                finally:
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()
        finally:
            if client is not None:
                client.close()
            self._discard_queued()

    def _deliver(self, client: httpx.Client, item: Outgoing) -> WebhookDelivery:
        config = self.sandbox.config
        status: int | None = None
        failure: str | None = None
        attempts = 0
        for attempt in range(max(1, config.webhook_attempts)):
            if attempt and self.sandbox._stopping.wait(config.webhook_backoff_seconds * 2 ** (attempt - 1)):
                break
            attempts += 1
            try:
                status = client.post(item.url, content=item.body, headers=item.headers).status_code
                failure = None if status < 500 else f"HTTP {status}"
            except httpx.HTTPError as exc:
                status, failure = None, f"{type(exc).__name__}: {exc}"
            if failure is None:
                break
        if failure:
            log.warning("webhook %s to %s failed after %d attempts: %s", item.delivery_id, item.url,
                        attempts, failure)
        return WebhookDelivery(
            delivery_id=item.delivery_id,
            url=item.url,
            headers=dict(item.headers),
            body=item.body,
            status=item.status,
            response_status=status,
            attempts=attempts,
            error=failure,
            sent_at=self.sandbox.now(),
        )

    def _discard_queued(self) -> None:
        with self._idle:
            while True:
                try:
                    queued = self._queue.get_nowait()
                except queue.Empty:
                    break
                if queued is not None:
                    self._pending -= 1
            self._idle.notify_all()
