"""The whole of reelhook on one machine, every part talking real HTTP.

- moto's server plays AWS (DynamoDB, S3, SQS, Secrets Manager), with the resources that
  ``template.yaml`` declares;
- ``LocalFront`` plays API Gateway and feeds the real handlers, and the queue and schedule
  drivers play the SQS event source mapping and EventBridge Scheduler;
- the provider sandbox plays Freepik, UniAll and AIHubMax, unless environment variables
  point a provider elsewhere (``FREEPIK_BASE_URL``, ``FREEPIK_API_KEY``,
  ``FREEPIK_WEBHOOK_SECRET``, and likewise ``UNIALL_*`` and ``AIHUBMAX_*``).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from reelhook_local import emf
from reelhook_local.aws_resources import StackResources, create_stack_resources, resolve_value, template_env
from reelhook_local.emf import MetricLines
from reelhook_local.front import (
    S3_EVENTS_PATH,
    LocalFront,
    QueueDriver,
    RawStreamRecords,
    S3InboxDriver,
    ScheduleDriver,
    StreamDriver,
    function_events,
)
from reelhook_local.sandbox import ProviderSandbox, SandboxConfig
from reelhook_local.template import functions, load_template

PROVIDERS = ("freepik", "uniall", "aihubmax")
# EventBridge invokes the inbox function asynchronously, as many at once as events arrive; locally
# this many run at once (as many as the API's concurrent clients in a burst benchmark).
INBOX_WORKERS = 32
# Every function's events run in this one process, each in a thread with the same clients: the
# front's connections, the inbox workers, the queue consumers' batches and the poll workers can
# all call AWS at once. A pool smaller than that makes urllib3 open and close a connection per
# request beyond it (366 to 507 times in a 1,000-job API burst, with Lambda's 16).
LOCAL_POOL_CONNECTIONS = 256
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",  # moto accepts any credentials
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@dataclass
class StackOptions:
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    schedule_seconds: float = 1.0
    # The schedule runs this seldom while nothing happens (ScheduleDriver); it is also the
    # poller's period, so each pass dispatches every check due before the next.
    schedule_idle_seconds: float = 5.0
    queue_visibility_seconds: int = 3
    poll_base_seconds: int = 1
    poll_max_seconds: int = 2
    reconcile_after_seconds: int = 60
    transfer_workers: int = 4
    front_port: int = 0
    moto_port: int = 0
    aihubmax_callbacks: bool = True
    # moto's server in a child process (a core of its own); False keeps it in this process,
    # where a benchmark can look inside it.
    moto_process: bool = True
    # With moto_process: DynamoDB (and its streams) in a second process, the other services'
    # requests no longer queue behind its lock for one GIL.
    dynamodb_process: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    # Where the functions' EMF metric lines go instead of stdout (reelhook_local.emf), as
    # CloudWatch Logs takes them on Lambda: `make serve`, `make demo` and `make chaos` keep them
    # off the terminal. None leaves them on stdout, where a benchmark counts them.
    metrics_file: Path | None = None
    # Settings (the template's parameters and defaults, and the options above) set in the
    # environment when the stack starts win over the stack's own values, as for `make serve`.
    # Off for tests and benchmarks, which must not change with the shell they run in.
    settings_from_environment: bool = False
    # Check SigV4 on the template's AWS_IAM routes, as deployed, against LOCAL_CREDENTIALS.
    # Off by default so tests can post unsigned; `make serve` and `make demo` turn it on.
    enforce_iam: bool = False
    # More IAM users the front knows (access key: secret key), beside LOCAL_CREDENTIALS's: each
    # is its own owner, so two of them see each other's jobs as an API on AWS would.
    iam_users: dict[str, str] = field(default_factory=dict)
    # moto keeps its state per process, not per server: each stack gets its own resource
    # names so that stacks started one after another in a process never see each other's data.
    resource_prefix: str = field(default_factory=lambda: f"reelhook-{secrets.token_hex(3)}")


# moto's backends do not lock between request threads. Which services need it:
# - DynamoDB: a conditional write reads then writes, so two concurrent webhooks could both pass
#   a condition; and a Query/Scan iterates the table's dicts, which a concurrent PutItem resizes
#   ("dictionary changed size during iteration"). Every DynamoDB operation takes one lock.
# - SQS: ReceiveMessage checks visibility then marks a message received (two threads can both
#   get it), DeleteMessage rebuilds the message list (a concurrent send is lost). Every SQS
#   operation takes its own lock; a long poll waits outside it (see _sqs_long_poll).
# - S3 iterates copies of its key store and locks each key; DynamoDB Streams slices a list that
#   only DynamoDB writes (under their lock) append to; Secrets Manager and EventBridge (a bus
#   without rules here) only read or append: these run concurrently.
DYNAMODB_TARGET = "DynamoDB_20120810."
STREAMS_TARGET = "DynamoDBStreams_20120810."
SQS_TARGET = "AmazonSQS."
SQS_WAKERS = {"SendMessage", "SendMessageBatch", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"}


# Values the stack must set itself whatever the environment says: callbacks must reach the
# local front, and the sandbox's result links are plain HTTP on 127.0.0.1.
STACK_OWNED = frozenset({"CALLBACK_BASE_URL", "REELHOOK_ALLOW_INSECURE_FETCH"})


def user_settings(env: dict[str, str], environment: Mapping[str, str]) -> dict[str, str]:
    """``env`` with each setting a person set in ``environment`` taking the place of the
    stack's value; resource names, queue URLs and what the stack owns are never replaced."""
    from reelhook_local.template import resource_wired

    fixed = resource_wired() | STACK_OWNED
    return {name: environment[name] if name in environment and name not in fixed
            and not name.endswith("_DOWNLOAD_HOSTS") else value for name, value in env.items()}


# The services the DynamoDB server holds: boto3's name -> botocore's endpoint variable for it.
DYNAMODB_SERVICES = {"dynamodb": "AWS_ENDPOINT_URL_DYNAMODB", "dynamodbstreams": "AWS_ENDPOINT_URL_DYNAMODB_STREAMS"}


def moto_lock_key(environ: dict[str, Any]) -> str | None:
    """Which lock a request to moto's server takes: ``dynamodb``, ``sqs``, or none."""
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    # Streams too: a cancelled transaction cuts its records back out of the stream, and a read
    # between the write and the cut would hand on a record of a write that never happened.
    if target.startswith((DYNAMODB_TARGET, STREAMS_TARGET)):
        return "dynamodb"
    if target.startswith(SQS_TARGET):
        return "sqs"
    scope = str(environ.get("HTTP_AUTHORIZATION") or "").partition("Credential=")[2].split(",")[0].split("/")
    if not target and len(scope) == 5 and scope[3] == "sqs":  # SQS's query protocol (older clients)
        return "sqs"
    return None


def _moto_queue(params: dict[str, Any]) -> Any:
    """moto's own queue object for a request's QueueUrl (``.../<account>/<name>``), or None."""
    try:
        from moto.sqs.models import sqs_backends

        account, name = str(params["QueueUrl"]).rstrip("/").split("/")[-2:]
        for region in ("us-east-1", *sqs_backends[account].regions):
            queue = sqs_backends[account][region].queues.get(name)
            if queue is not None:
                return queue
    except Exception:  # moto's internals moved: poll instead
        return None
    return None


def _due_in(queue: Any) -> float | None:
    """Seconds until a message of moto's ``queue`` can be received (0 if one can now), None if empty."""
    try:
        from moto.core.utils import unix_time_millis

        now = unix_time_millis()
        due = min((max(m.visible_at, m.delayed_until) for m in list(queue._messages)), default=None)
    except Exception:
        return 0.0  # unknown: ask moto
    return None if due is None else max(0.0, (due - now) / 1000)


_clock_lock = threading.Lock()
_clock_users = 0
_moto_clock: Any = None


def _fast_sqs_clock(on: bool) -> None:
    """moto's SQS asks the time twice per message per receive (visible? delayed?) through
    datetime arithmetic, which with hundreds of delayed messages made every ReceiveMessage cost
    milliseconds; while a server runs, it reads ``time.time()`` instead (the same value)."""
    global _clock_users, _moto_clock
    from moto.sqs import models

    with _clock_lock:
        if on:
            _clock_users += 1
            if _clock_users == 1:
                _moto_clock = models.unix_time_millis

                def unix_time_millis(dt: Any = None) -> float:
                    return time.time() * 1000.0 if dt is None else float(_moto_clock(dt))

                models.unix_time_millis = unix_time_millis
        elif _clock_users:
            _clock_users -= 1
            if not _clock_users:
                models.unix_time_millis = _moto_clock


def _has_messages(body: bytes) -> bool:
    try:
        return bool(json.loads(body or b"{}").get("Messages"))
    except (ValueError, AttributeError):
        return True  # not ours to judge: hand it back


class FairLock:
    """A lock granted in the order it was asked for.

    ``threading.Lock`` lets whichever thread runs next take it, so under a burst a request can
    lose the race for seconds while later ones go ahead (the long tail of client latency). Here
    a waiting thread is handed the lock by the one releasing it, oldest first, as a service's
    queue would serve it.
    """

    def __init__(self) -> None:
        self._state = threading.Lock()
        self._held = False
        self._waiters: collections.deque[threading.Lock] = collections.deque()

    def acquire(self) -> None:
        with self._state:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by the thread handing the lock over: it is ours now

    def release(self) -> None:
        with self._state:
            if self._waiters:
                self._waiters.popleft().release()  # still held: ownership passes on
            else:
                self._held = False

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class MotoStats:
    """Requests, wall seconds and CPU seconds per operation, for the benchmarks: moto runs in a
    process of its own, so they read these from ``GET /_reelhook/moto-stats``."""

    PATH = "/_reelhook/moto-stats"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_operation: dict[str, list[float]] = {}

    @staticmethod
    def operation(environ: dict[str, Any]) -> str:
        target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
        if target:
            return target.rpartition(".")[2]
        return f"s3:{environ.get('REQUEST_METHOD', '')}"

    @contextlib.contextmanager
    def measure(self, environ: dict[str, Any]) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            spent_wall, spent_cpu = time.perf_counter() - wall, time.thread_time() - cpu
            name = self.operation(environ)
            with self._lock:
                row = self._by_operation.setdefault(name, [0, 0.0, 0.0])
                row[0] += 1
                row[1] += spent_wall
                row[2] += spent_cpu

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            rows = {name: {"requests": int(r[0]), "wall_seconds": r[1], "cpu_seconds": r[2]}
                    for name, r in self._by_operation.items()}
        cpu = time.process_time()
        return {"process_cpu_seconds": cpu, "operations": rows,
                "processes": [{"pid": os.getpid(), "process_cpu_seconds": cpu,
                               "requests": sum(r["requests"] for r in rows.values())}]}

    @staticmethod
    def merge(*snapshots: dict[str, Any]) -> dict[str, Any]:
        """One snapshot of several servers: their processes' CPU summed, operations added up."""
        rows: dict[str, dict[str, Any]] = {}
        for snapshot in snapshots:
            for name, row in snapshot["operations"].items():
                into = rows.setdefault(name, {"requests": 0, "wall_seconds": 0.0, "cpu_seconds": 0.0})
                for field_name in into:
                    into[field_name] += row[field_name]
        return {"process_cpu_seconds": sum(s["process_cpu_seconds"] for s in snapshots), "operations": rows,
                "processes": [p for s in snapshots for p in s.get("processes", [])]}


class DynamoForwarder:
    """Hands DynamoDB requests on to the moto server that holds DynamoDB, one kept-alive
    connection per request thread."""

    HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self._local = threading.local()

    def _connection(self) -> Any:
        import http.client

        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(*self.address, timeout=120)
        return connection

    def _request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, Any, bytes]:
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request(method, path, body=body, headers=headers)
                answer = connection.getresponse()
                return answer.status, answer.reason, answer.getheaders(), answer.read()
            except OSError:  # the kept-alive connection went stale: one new one
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def forward(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {key[5:].replace("_", "-").title(): str(value) for key, value in environ.items()
                   if key.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = str(environ["CONTENT_TYPE"])
        path = str(environ.get("PATH_INFO") or "/")
        if environ.get("QUERY_STRING"):
            path += "?" + str(environ["QUERY_STRING"])
        status, reason, answer_headers, answer = self._request(str(environ["REQUEST_METHOD"]), path, body, headers)
        start_response(f"{status} {reason}", [(k, v) for k, v in answer_headers if k.lower() not in self.HOP_BY_HOP]
                       + [("Content-Length", str(len(answer)))])
        return [answer]

    def stats(self) -> dict[str, Any]:
        status, _, _, answer = self._request("GET", MotoStats.PATH, b"", {})
        if status != 200:
            raise RuntimeError(f"the DynamoDB server's stats answered HTTP {status}")
        return json.loads(answer)


def _moto_header_names(environ: dict[str, Any], headers: list[tuple[str, str]]) -> None:
    """As moto's own request handler: S3 metadata names keep their underscores, and an
    underscored header never stands in for a dashed one (``moto_server.werkzeug_app``)."""
    from moto.core.request import (
        PRESERVED_HEADER_NAMES_ENVIRON_KEY,
        environ_key_for_header,
        should_preserve_original_header_name,
    )

    dashed = {environ_key_for_header(name) for name, _ in headers if "_" not in name}
    names: dict[str, str] = {}
    for name, _ in headers:
        key = environ_key_for_header(name)
        if should_preserve_original_header_name(name) and key not in dashed:
            names.setdefault(key, name)
    environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = names


# S3 requests that create an object, by method and the query words that tell them apart.
_SUBRESOURCES = frozenset({"acl", "tagging", "retention", "legal-hold", "torrent", "restore", "select", "attributes",
                           "uploads", "partNumber", "uploadId", "versionId", "delete"})


def object_created(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """``(bucket, key, reason)`` if this path-style S3 request creates an object when it succeeds:
    PutObject, CopyObject or CompleteMultipartUpload; None for anything else."""
    from urllib.parse import parse_qs

    method = environ.get("REQUEST_METHOD")
    if method not in ("PUT", "POST") or environ.get("HTTP_X_AMZ_TARGET"):  # JSON protocols post to "/"
        return None
    bucket, _, key = str(environ.get("PATH_INFO") or "").lstrip("/").partition("/")
    if not bucket or not key:
        return None
    words = set(parse_qs(str(environ.get("QUERY_STRING") or ""), keep_blank_values=True))
    if method == "POST":
        reason = "CompleteMultipartUpload" if words == {"uploadId"} else None
    elif words & _SUBRESOURCES:
        reason = None
    else:
        reason = "CopyObject" if environ.get("HTTP_X_AMZ_COPY_SOURCE") else "PutObject"
    if reason is None:
        return None
    return bucket, key.encode("latin-1").decode("utf-8", "replace"), reason


class ObjectCreatedLog:
    """The objects S3 requests to this server created, in order: what S3 would send to
    EventBridge. ``GET PATH?after=N&wait=S`` answers the entries after sequence number ``N``
    (waiting up to ``S`` seconds for one) as ``{"next": M, "events": [...], "complete": bool}``;
    ``complete`` is false when entries after ``N`` were already dropped (only the newest
    ``keep`` are kept) or ``N`` is from before the server started, and the reader must then
    look at the bucket itself."""

    PATH = S3_EVENTS_PATH

    def __init__(self, keep: int = 10_000) -> None:
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self._last = 0
        self._changed = threading.Condition()

    def record(self, bucket: str, key: str, reason: str) -> None:
        with self._changed:
            self._last += 1
            self._events.append({"sequence": self._last, "bucket": bucket, "key": key, "reason": reason})
            self._changed.notify_all()

    def since(self, after: int, wait: float = 0.0) -> dict[str, Any]:
        with self._changed:
            if self._last == after and wait > 0:
                self._changed.wait_for(lambda: self._last > after, timeout=min(wait, 20.0))
            oldest = self._events[0]["sequence"] if self._events else self._last + 1
            events = [event for event in self._events if event["sequence"] > after]
            # A reader ahead of the log read another server's (this one started since): it too
            # must look at the bucket.
            return {"next": self._last, "events": events, "complete": oldest - 1 <= after <= self._last}

    def serve(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        from urllib.parse import parse_qs

        query = parse_qs(str(environ.get("QUERY_STRING") or ""))
        try:
            after = int(query.get("after", ["0"])[0])
            wait = float(query.get("wait", ["0"])[0])
        except ValueError:
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [b'{"error": "after must be an integer and wait a number"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(self.since(after, wait)).encode()]


class AtomicMotoServer:
    """moto's server, serialised only where DynamoDB's and SQS's guarantees need it.

    DynamoDB applies each conditional write atomically and SQS hands a message to one receiver
    within its visibility timeout; moto's backends do not lock between request threads, so each
    of those services gets one lock (``moto_lock_key``); DynamoDB Streams reads share DynamoDB's.
    S3, Secrets Manager and EventBridge requests run concurrently. A long-polling
    ReceiveMessage does not hold the SQS lock while it waits: it is answered by short receives
    under the lock, waiting between them (outside it) until a message is sent, made visible or
    due, or the wait ends; an empty queue is not looked at in between. (moto's own long poll
    looks again every second.) Only a queue it cannot find is looked at every ``poll_interval``.
    """

    poll_interval = 0.25

    def __init__(self, port: int = 0, *, dynamodb_at: tuple[str, int] | None = None) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from reelhook_local import moto_speedups
        from reelhook_local.wsgi_server import KeepAliveWSGIServer

        moto_speedups.install()
        self._backend = DomainDispatcherApplication(moto_speedups.without_debug(create_backend_app))
        self.locks = {"dynamodb": FairLock(), "sqs": FairLock()}
        self.stats = MotoStats()
        self.objects_created = ObjectCreatedLog()
        self._sqs_changed = threading.Condition()
        # Not werkzeug's development server: a millisecond of parsing per request (wsgi_server).
        self._server = KeepAliveWSGIServer("127.0.0.1", port, self.app, environ_hook=_moto_header_names)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        # DynamoDB (with its streams) may live in a server of its own: requests for it that
        # arrive here (a person's ``aws dynamodb`` with the one endpoint) are handed on.
        self._dynamodb = DynamoForwarder(dynamodb_at) if dynamodb_at else None

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == MotoStats.PATH:
            start_response("200 OK", [("Content-Type", "application/json")])
            snapshot = self.stats.snapshot()
            if self._dynamodb is not None:
                snapshot = MotoStats.merge(snapshot, self._dynamodb.stats())
            return [json.dumps(snapshot).encode()]
        if environ.get("PATH_INFO") == ObjectCreatedLog.PATH:
            return self.objects_created.serve(environ, start_response)
        if self._dynamodb is not None and moto_lock_key(environ) == "dynamodb":
            return self._dynamodb.forward(environ, start_response)
        with self.stats.measure(environ):
            return self._dispatch(environ, start_response)

    def _dispatch(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        key = moto_lock_key(environ)
        if key is None:
            created = object_created(environ)
            if created is None:
                return list(self._backend(environ, start_response))
            statuses: list[str] = []

            def seen(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                statuses.append(status)
                return start_response(status, headers, exc_info)

            answer = list(self._backend(environ, seen))
            # CompleteMultipartUpload can fail inside a 200 (an <Error> body): look before telling.
            if statuses and statuses[-1].startswith("200") and b"<Error>" not in b"".join(answer)[:512]:
                self.objects_created.record(*created)
            return answer
        target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
        if target == SQS_TARGET + "ReceiveMessage":
            return self._sqs_long_poll(environ, start_response)
        wakes = key == "sqs" and target.removeprefix(SQS_TARGET) in SQS_WAKERS
        raw = b""
        if wakes:  # read here: which queue to wake is in the body
            import io

            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            environ = dict(environ, **{"wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw))})
        with self.locks[key]:
            answer = list(self._backend(environ, start_response))
        if wakes:
            self._wake_sqs_receivers(raw)
        return answer

    def _wake_sqs_receivers(self, raw: bytes) -> None:
        """A send or a visibility change may have made a message receivable: long polls on that
        queue wait on its condition (moto notifies it on a send, not on a visibility change),
        the others on ``_sqs_changed``."""
        with self._sqs_changed:
            self._sqs_changed.notify_all()
        try:
            queue = _moto_queue(json.loads(raw or b"{}"))
        except (ValueError, TypeError, AttributeError):
            queue = None
        if queue is not None:
            with queue._messages_lock:
                queue._messages_lock.notify_all()

    def _sqs_long_poll(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        """ReceiveMessage: with a wait, short receives under the lock while the queue (read in
        moto's process, without a request) has a message due, waiting outside the lock otherwise."""
        import io

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            params = json.loads(raw or b"{}")
            wait = float(params.get("WaitTimeSeconds") or 0)
        except (ValueError, TypeError, AttributeError):
            params, wait = None, 0.0
        if params is not None and wait > 0:
            raw = json.dumps(params | {"WaitTimeSeconds": 0}).encode()
        queue = _moto_queue(params) if params is not None and wait > 0 else None
        deadline = time.monotonic() + (wait if params is not None else 0.0)
        answered: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered[:] = [status, headers, exc_info]
            return lambda _data: None

        body = b""
        while True:
            with self.locks["sqs"]:
                # Other receivers woke too: only one of them need ask moto for what is due.
                ask = queue is None or not answered or _due_in(queue) == 0.0 or time.monotonic() >= deadline
                if ask:
                    attempt = dict(environ, **{"wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw))})
                    body = b"".join(self._backend(attempt, capture))
            remaining = deadline - time.monotonic()
            if ask and (not answered[0].startswith("200") or remaining <= 0 or _has_messages(body)):
                break
            if queue is None:
                with self._sqs_changed:
                    self._sqs_changed.wait(min(remaining, self.poll_interval))
                continue
            # Until the next message is due, or one is sent or made visible (its condition is
            # notified): an empty queue is not looked at again before the wait ends.
            due = _due_in(queue)
            pause = remaining if due is None else min(remaining, max(0.01, due))
            with queue._messages_lock:
                queue._messages_lock.wait(pause)
        start_response(*answered)
        return [body]

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        _fast_sqs_clock(True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        _fast_sqs_clock(False)


class StartListener(Protocol):
    """Told of each step of ``LocalStack.start`` (``reelhook_local.startup.StartSteps``)."""

    def begin(self, step: str) -> None: ...

    def end(self, step: str, seconds: float) -> None: ...


class LocalStack:
    def __init__(self, options: StackOptions | None = None, *, steps: StartListener | None = None) -> None:
        self.options = options or StackOptions()
        self.steps = steps  # told of each start step as it begins and ends (reelhook_local.startup)
        self.sandbox = ProviderSandbox(self.options.sandbox)
        self.front: LocalFront | None = None
        self.drivers: list[Any] = []
        self.resources: StackResources | None = None
        self._moto: Any = None
        self._motos: list[Any] = []
        self.aws_endpoints: dict[str, str] = {}  # services served apart from aws_endpoint
        self._saved_env: dict[str, str | None] = {}
        self._pool_connections_before: int | None = None
        self._environment_at_start: dict[str, str] = {}
        self.aws_endpoint = ""
        self.metric_lines: MetricLines | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> LocalStack:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._environment_at_start = dict(os.environ)
        if self.options.metrics_file is not None:
            self.metric_lines = emf.divert(self.options.metrics_file)
        try:
            self._start_steps()
        except BaseException:
            if self.metric_lines is not None:
                emf.restore(self.metric_lines)
            raise
        return self

    def _start_steps(self) -> None:
        with self._step("moto's servers up (DynamoDB; S3, SQS and the rest)"):
            self._start_moto()
        with self._step("provider sandbox up (Freepik, UniAll, AIHubMax)"):
            self.sandbox.start()
        fns = functions()
        with self._step("resources created from template.yaml"):
            self.resources = create_stack_resources(
                self.client,
                prefix=self.options.resource_prefix,
                secret_values=self._secret_values(),
                visibility_timeout=self.options.queue_visibility_seconds,
            )
        with self._step("API front up"):
            self.front = LocalFront(fns, port=self.options.front_port, enforce_iam=self.options.enforce_iam,
                                    credentials={LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]:
                                                 LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]} | self.options.iam_users,
                                    region=LOCAL_CREDENTIALS["AWS_REGION"])
            self._set_env(self._function_env())
            self._reset_caches()
            from reelhook.adapters import aws as aws_clients

            self._pool_connections_before = aws_clients.set_pool_connections(LOCAL_POOL_CONNECTIONS)
            self.front.start()
        with self._step("event sources running (queues, stream, inbox, schedule)"):
            self._start_drivers(fns)

    @contextlib.contextmanager
    def _step(self, name: str) -> Iterator[None]:
        if self.steps is not None:
            self.steps.begin(name)
        began = time.monotonic()
        yield
        if self.steps is not None:
            self.steps.end(name, time.monotonic() - began)

    def _start_moto(self) -> None:
        endpoints = {}
        if self.options.moto_process and self.options.dynamodb_process:
            from reelhook_local.moto_process import MotoProcess

            # DynamoDB, whose writes take one lock, gets a process (a core) of its own.
            dynamodb = MotoProcess()
            self._motos.append(dynamodb)
            dynamodb.start()
            self._moto = MotoProcess(port=self.options.moto_port, dynamodb_at=dynamodb.address)
            endpoints = dict.fromkeys(DYNAMODB_SERVICES, "http://{}:{}".format(*dynamodb.address))
        elif self.options.moto_process:
            from reelhook_local.moto_process import MotoProcess

            self._moto = MotoProcess(port=self.options.moto_port)
        else:
            self._moto = AtomicMotoServer(port=self.options.moto_port)
        self._motos.append(self._moto)
        self._moto.start()
        host, port = self._moto.address
        self.aws_endpoint = f"http://{host}:{port}"
        self.aws_endpoints = endpoints
        # botocore's service-specific endpoint variables send the functions straight there.
        self._set_env(LOCAL_CREDENTIALS | {"AWS_ENDPOINT_URL": self.aws_endpoint}
                      | {DYNAMODB_SERVICES[service]: url for service, url in endpoints.items()})

    def _start_drivers(self, fns: dict[str, Any]) -> None:
        assert self.resources is not None
        queue_urls = {"TransferQueue": self.resources.queue_url, "NotifyQueue": self.resources.notify_queue_url,
                      "SubmitQueue": self.resources.submit_queue_url, "PollQueue": self.resources.poll_queue_url}
        for fn in fns.values():
            for queue, batch in fn.queues:
                queue_url = queue_urls[queue]
                arn = self.client("sqs").get_queue_attributes(
                    QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                # As many consumers as the mapping's MaximumConcurrency (or transfer_workers for
                # the transfer queue), each long-polling with its own connection.
                workers = QueueDriver.concurrency(
                    fn, queue, self.options.transfer_workers if queue == "TransferQueue" else None)
                self.drivers.append(QueueDriver(fn, queue_url, arn, batch,
                                                self.client("sqs", connections=workers + 2), workers=workers))
            if fn.scheduled:
                self.drivers.append(ScheduleDriver(fn, self.options.schedule_seconds, self._schedule_period()))
        # The DynamoDB stream mapping and the S3 -> EventBridge rule, as the template declares them.
        template, sqs = load_template(), self.client("sqs")
        resources = self.resources

        def send_to(queue_url: str) -> Callable[[dict[str, Any]], None]:
            return lambda body: sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))

        stream_arn = self.client("dynamodb").describe_table(
            TableName=resources.table_name)["Table"].get("LatestStreamArn", "")
        for fid, props in function_events(template, "DynamoDB"):
            # LATEST, not the template's TRIM_HORIZON: moto's state outlives a LocalStack in one
            # process, so the table's stream may hold earlier stacks' jobs; on AWS the mapping
            # starts with the stream.
            self.drivers.append(StreamDriver.from_template(  # type: ignore[arg-type]
                fns[fid], props, stream_arn, RawStreamRecords(self.client("dynamodbstreams")),
                on_failure=send_to(resources.notifier_failure_queue_url), starting_position="LATEST",
                interval=0.1))
        for fid, props in function_events(template, "EventBridgeRule"):
            pattern = resolve_value(props["Pattern"], resources)
            if pattern.get("source") != ["aws.s3"]:
                raise NotImplementedError(f"{fid}: only S3 object rules are driven locally")
            self.drivers.append(S3InboxDriver(  # type: ignore[arg-type]
                fns[fid], resources.bucket_name, self.client("s3", connections=10), pattern=pattern,
                interval=0.2, dead_letter=send_to(resources.inbox_dlq_url), workers=INBOX_WORKERS))
        schedules = [driver for driver in self.drivers if isinstance(driver, ScheduleDriver)]
        for driver in self.drivers:
            if isinstance(driver, StreamDriver):  # a jobs-table write may bring a check due soon
                driver.on_records += [schedule.wake for schedule in schedules]
        for driver in self.drivers:
            driver.start()

    def stop(self) -> None:
        for driver in self.drivers:  # all at once: each may be in a long poll
            driver.stopping.set()
        for driver in self.drivers:
            driver.stop()
        self.drivers = []
        if self.front is not None:
            self.front.stop()
        self.sandbox.stop()
        for moto in reversed(self._motos):
            moto.stop()
        self._motos, self._moto = [], None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}
        self._reset_caches()
        if self._pool_connections_before is not None:
            from reelhook.adapters import aws as aws_clients

            aws_clients.set_pool_connections(self._pool_connections_before)
            self._pool_connections_before = None
        if self.metric_lines is not None:  # last: a handler still finishing prints no metrics
            emf.restore(self.metric_lines)
            self.metric_lines = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        assert self.front is not None
        return self.front.url

    def endpoint_for(self, service: str) -> str:
        """Where moto serves ``service`` (boto3's name); ``aws_endpoint`` answers for all of them."""
        return self.aws_endpoints.get(service, self.aws_endpoint)

    def client(self, service: str, connections: int = 10) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            service, endpoint_url=self.endpoint_for(service), region_name="us-east-1",
            aws_access_key_id="local", aws_secret_access_key="local",
            config=Config(max_pool_connections=max(10, connections)),
        )

    def provider_base_url(self, provider: str) -> str:
        return os.environ.get(f"{provider.upper()}_BASE_URL") or self.sandbox.base_url(provider)

    def _secret_values(self) -> dict[str, str]:
        sandbox = self.options.sandbox
        defaults = {
            "freepik_api_key": sandbox.freepik_api_key,
            "uniall_api_key": sandbox.uniall_api_key,
            "aihubmax_api_key": sandbox.aihubmax_api_key,
            "freepik_webhook_secret": sandbox.freepik_webhook_secret,
        }
        values = {"callback_token_key": secrets.token_urlsafe(48)}
        for name, default in defaults.items():
            values[name] = os.environ.get(name.upper()) or default
        return values

    def _function_env(self) -> dict[str, str]:
        assert self.resources is not None and self.front is not None
        env = template_env(self.resources)
        # Every function's own variables too (one process runs them all); the HttpApi URL some
        # of them would get is the front's.
        for fid in functions():
            env |= template_env(self.resources, function=fid, parameters={"CallbackBaseUrl": self.front.url})
        for provider in PROVIDERS:
            env[f"{provider.upper()}_BASE_URL"] = self.provider_base_url(provider)
            env[f"{provider.upper()}_DOWNLOAD_HOSTS"] = ""
        env |= {
            "CALLBACK_BASE_URL": self.front.url,
            "REELHOOK_ALLOW_INSECURE_FETCH": "true",
            "POLL_BASE_SECONDS": str(self.options.poll_base_seconds),
            "POLL_MAX_SECONDS": str(self.options.poll_max_seconds),
            "RECONCILE_AFTER_SECONDS": str(self.options.reconcile_after_seconds),
            "POLLER_PERIOD_SECONDS": str(self._schedule_period()),
            "AIHUBMAX_CALLBACKS": "true" if self.options.aihubmax_callbacks else "false",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            "POWERTOOLS_METRICS_NAMESPACE": "reelhook",
            "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
            "POWERTOOLS_SERVICE_NAME": "reelhook",
        }
        if self.options.settings_from_environment:
            env = user_settings(env, self._environment_at_start)
        return env | self.options.extra_env

    def _schedule_period(self) -> int:
        """Seconds between the schedule's runs while idle, the poller's dispatch horizon."""
        return max(1, math.ceil(max(self.options.schedule_seconds, self.options.schedule_idle_seconds)))

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    @staticmethod
    def _reset_caches() -> None:
        from reelhook import config, routing
        from reelhook.adapters import aws, circuit
        from reelhook.adapters import secrets as secret_cache
        from reelhook.providers import all_models, get_provider

        config.settings.cache_clear()
        aws.reset_clients()
        secret_cache.clear_cache()
        get_provider.cache_clear()
        config._provider_settings.cache_clear()
        all_models.cache_clear()
        routing.logical_routes.cache_clear()
        circuit.forget()
