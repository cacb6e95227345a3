"""Shared pieces of the benchmark suite: paths, statistics, progress bars, results, AWS call counting.

AWS calls are counted with botocore's own event hooks, not by reading code: every botocore
session created while :class:`AwsCalls` is installed (a ``boto3.session.Session`` makes one too)
gets ``before-parameter-build``, ``before-call``, ``after-call`` and ``before-send`` handlers, so
every client made from it (including the ones ``reelhook.adapters.aws.client`` makes) reports each
API call with its service, operation and parameters, who made the client, and which Lambda
invocation was running.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
FUNCTIONS = ("api", "callback", "transfer", "poller")
LOGICAL_IDS = {"api": "ApiFunction", "callback": "CallbackFunction", "transfer": "TransferFunction",
               "poller": "PollerFunction"}
FUNCTION_BY_LOGICAL_ID = {v: k for k, v in LOGICAL_IDS.items()}

# A function's init, as Lambda runs it: its app.py (argv[1]) executed as module "app".
LOAD_APP = r"""
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
"""


def function_name(logical_id: str) -> str:
    """ApiFunction -> api, NotifierFunction -> notifier."""
    return FUNCTION_BY_LOGICAL_ID.get(logical_id) or logical_id.removesuffix("Function").lower()
MiB = 1024 * 1024


# ---------------------------------------------------------------------------- statistics


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else math.nan


def percentile(values: Iterable[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    data = sorted(values)
    if not data:
        return math.nan
    if len(data) == 1:
        return data[0]
    rank = (len(data) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def iso_epoch(iso: str) -> float:
    """Epoch seconds of an ISO-8601 time as the jobs table stores it (``...Z``)."""
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def rnd(value: float, digits: int = 2) -> float:
    return round(value, digits) if isinstance(value, float) and math.isfinite(value) else value


# ---------------------------------------------------------------------------- progress


@contextlib.contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; silent elsewhere (CI logs stay short)."""
    if not sys.stderr.isatty():
        yield lambda _n=1: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def in_client_process(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a fresh process of its own, for a load generator: its HTTP work
    belongs to the clients, and in the stack's process it would take the GIL from the handlers
    it measures. ``function`` must be importable by name (a module-level function)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- results


def machine_info() -> dict[str, Any]:
    mem_total = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) * 1024
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    git = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        git = {"commit": head, "uncommitted_changes": len(dirty.splitlines())}
    return {
        "git": git,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_total / 1024**3, 1),
    }


@dataclass
class Output:
    """Where results go: bench/results.json + BENCHMARKS.md, or a scratch dir for --quick."""

    results_path: Path
    markdown_path: Path

    def load(self) -> dict[str, Any]:
        if self.results_path.is_file():
            with contextlib.suppress(ValueError):
                return json.loads(self.results_path.read_text())
        return {}

    def save(self, data: dict[str, Any]) -> None:
        self.results_path.parent.mkdir(parents=True, exist_ok=True)
        self.results_path.write_text(json.dumps(data, indent=1, sort_keys=False, default=str) + "\n")


# ---------------------------------------------------------------------------- AWS call counting


@dataclass
class Call:
    service: str  # botocore service name: dynamodb, sqs, s3, secretsmanager
    operation: str  # e.g. UpdateItem
    origin: str  # "lambda" (reelhook.adapters.aws), "esm" (local queue driver), "bench", "other"
    function: str | None  # api / callback / transfer / poller when made inside an invocation
    invocation: int | None
    thread: str
    started: float
    seconds: float = math.nan  # before-call -> after-call (client work + service time)
    attempts: int = 0  # HTTP sends, retries included
    error: str | None = None
    job_ids: frozenset[str] = frozenset()
    returned_jobs: frozenset[str] = frozenset()  # job ids in a ReceiveMessage answer
    messages: int = 0  # messages in a ReceiveMessage answer
    rate_limit: bool = False  # an ADD on a provider's request budget item (pk rate#...)
    entries: int = 1  # items in a batch call (PutEvents Entries, SendMessageBatch, ...)

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass
class Invocation:
    id: int
    function: str
    started: float
    thread: str
    seconds: float = math.nan
    job_ids: set[str] = field(default_factory=set)
    result: Any = None


_current = threading.local()


def _find_job_ids(value: Any, found: set[str], depth: int = 0) -> None:
    if depth > 6:
        return
    if isinstance(value, str):
        index = value.find("job_")
        while index != -1:
            token = value[index:index + 36]
            if len(token) == 36 and all(c in "0123456789abcdef" for c in token[4:]):
                found.add(token)
            index = value.find("job_", index + 4)
    elif isinstance(value, dict):
        for item in value.values():
            _find_job_ids(item, found, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value[:50]:
            _find_job_ids(item, found, depth + 1)


class AwsCalls:
    """Counts every AWS API call made through botocore sessions created while installed."""

    def __init__(self, *, with_params: bool = True) -> None:
        self.calls: list[Call] = []
        self.invocations: list[Invocation] = []
        self.with_params = with_params
        self._lock = threading.Lock()
        self._ids = iter(range(1, 10**12))
        self._original_init: Any = None
        self._original_submit: Any = None

    # -- installation ------------------------------------------------------------------------

    def install(self) -> AwsCalls:
        """Hook every botocore session created from now on (boto3 sessions make one each), so every
        client made from it reports its calls, whoever creates it and however."""
        import botocore.session

        if self._original_init is not None:
            return self
        original = botocore.session.Session.__init__
        recorder = self

        def init(session: Any, *args: Any, **kwargs: Any) -> None:
            original(session, *args, **kwargs)
            recorder.attach(session, recorder._origin())

        self._original_init = original
        botocore.session.Session.__init__ = init  # type: ignore[method-assign]
        self._patch_thread_pools()
        return self

    def _patch_thread_pools(self) -> None:
        """Work a handler hands to a thread pool (the poller's checks, stream_to_s3's part uploads)
        still belongs to the handler's invocation."""
        from concurrent.futures import ThreadPoolExecutor

        original = ThreadPoolExecutor.submit

        def submit(pool: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            invocation = getattr(_current, "invocation", None)
            if invocation is None:
                return original(pool, fn, *args, **kwargs)

            def carried(*a: Any, **k: Any) -> Any:
                previous = getattr(_current, "invocation", None)
                _current.invocation = invocation
                try:
                    return fn(*a, **k)
                finally:
                    _current.invocation = previous

            return original(pool, carried, *args, **kwargs)

        self._original_submit = original
        ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]

    def uninstall(self) -> None:
        import botocore.session

        if self._original_init is not None:
            botocore.session.Session.__init__ = self._original_init  # type: ignore[method-assign]
            self._original_init = None
        if self._original_submit is not None:
            from concurrent.futures import ThreadPoolExecutor

            ThreadPoolExecutor.submit = self._original_submit  # type: ignore[method-assign]
            self._original_submit = None

    def __enter__(self) -> AwsCalls:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    @staticmethod
    def _origin() -> str:
        frame = sys._getframe(2)
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if module.startswith("reelhook.adapters"):
                return "lambda"
            if module.startswith("reelhook_local.front") or module.startswith("reelhook_local.stack"):
                return "esm"
            if module.startswith("bench"):
                return "bench"
            frame = frame.f_back  # type: ignore[assignment]
        return "other"

    def attach(self, botocore_session: Any, origin: str) -> None:
        botocore_session.register("before-parameter-build", self._before_parameter_build)
        botocore_session.register("before-call", lambda **kw: self._before_call(origin, **kw))
        botocore_session.register("after-call", self._after_call)
        botocore_session.register("after-call-error", self._after_call_error)
        botocore_session.register("before-send", self._before_send)

    # -- hooks -------------------------------------------------------------------------------

    def _before_parameter_build(self, *, params: Any, context: dict[str, Any], **_: Any) -> None:
        # The API parameters as the caller gave them (before-call only sees the serialized body).
        key = params.get("Key") if isinstance(params, dict) else None
        if isinstance(params, dict) and isinstance(params.get("Entries"), list):
            context["_bench_entries"] = len(params["Entries"])
        if isinstance(key, dict) and str(key.get("pk", {}).get("S", "")).startswith("rate#"):
            context["_bench_rate"] = True
        if self.with_params:
            jobs: set[str] = set()
            _find_job_ids(params, jobs)
            context["_bench_jobs"] = jobs

    def _before_call(self, origin: str, *, model: Any, context: dict[str, Any], **_: Any) -> None:
        invocation: Invocation | None = getattr(_current, "invocation", None)
        thread = threading.current_thread().name
        function = invocation.function if invocation else _function_from_thread(thread)
        jobs: set[str] = context.get("_bench_jobs", set()) if origin != "bench" else set()
        call = Call(
            service=model.service_model.service_name, operation=model.name, origin=origin,
            function=function, invocation=invocation.id if invocation else None, thread=thread,
            started=time.perf_counter(), job_ids=frozenset(jobs), rate_limit=bool(context.get("_bench_rate")),
            entries=int(context.get("_bench_entries", 1)),
        )
        if invocation is not None:
            invocation.job_ids |= jobs
        context["_bench_call"] = call
        with self._lock:
            self.calls.append(call)

    def _after_call(self, *, context: dict[str, Any], parsed: Any = None, http_response: Any = None,
                    **_: Any) -> None:
        call: Call | None = context.get("_bench_call")
        if call is None:
            return
        call.seconds = time.perf_counter() - call.started
        if isinstance(parsed, dict):
            error = parsed.get("Error", {}).get("Code") if "Error" in parsed else None
            call.error = error
            if call.operation == "ReceiveMessage":
                call.messages = len(parsed.get("Messages", []))
                if self.with_params:
                    jobs: set[str] = set()
                    _find_job_ids([m.get("Body", "") for m in parsed.get("Messages", [])], jobs)
                    call.returned_jobs = frozenset(jobs)

    def _after_call_error(self, *, context: dict[str, Any], exception: Exception, **_: Any) -> None:
        call: Call | None = context.get("_bench_call")
        if call is not None:
            call.seconds = time.perf_counter() - call.started
            call.error = type(exception).__name__

    def _before_send(self, *, request: Any = None, **_: Any) -> None:
        context = getattr(request, "context", None) or {}
        call: Call | None = context.get("_bench_call")
        if call is not None:
            call.attempts += 1

    # -- invocations -------------------------------------------------------------------------

    def wrap(self, function: str, handler: Callable[[Any, Any], Any],
             jobs_of: Callable[[Any, Any], set[str]] | None = None) -> Callable[[Any, Any], Any]:
        """A handler that records its invocations and attributes AWS calls made inside them."""

        def wrapped(event: Any, context: Any) -> Any:
            with self._lock:
                invocation = Invocation(next(self._ids), function, time.perf_counter(),
                                        threading.current_thread().name)
                self.invocations.append(invocation)
            if jobs_of is not None:
                invocation.job_ids |= jobs_of(event, None)
            previous = getattr(_current, "invocation", None)
            _current.invocation = invocation
            try:
                result = handler(event, context)
                invocation.result = result
                if jobs_of is not None:
                    invocation.job_ids |= jobs_of(None, result)
                return result
            finally:
                invocation.seconds = time.perf_counter() - invocation.started
                _current.invocation = previous

        return wrapped

    # -- reading -------------------------------------------------------------------------------

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return len(self.calls), len(self.invocations)

    def since(self, mark: tuple[int, int]) -> tuple[list[Call], list[Invocation]]:
        with self._lock:
            return self.calls[mark[0]:], self.invocations[mark[1]:]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.invocations.clear()


def _function_from_thread(thread: str) -> str | None:
    # stream_to_s3 uploads parts from its own pool: those calls belong to the transfer function.
    if thread.startswith("s3part"):
        return "transfer"
    return None


def count_by_name(calls: Sequence[Call], *, origins: tuple[str, ...] = ("lambda",)) -> Counter[str]:
    return Counter(c.name for c in calls if c.origin in origins)


def job_ids_in_event(event: Any, result: Any) -> set[str]:
    found: set[str] = set()
    if event is not None:
        if isinstance(event, dict) and "Records" in event:
            _find_job_ids([r.get("body", "") for r in event["Records"]], found)
        elif isinstance(event, dict):
            _find_job_ids(event.get("pathParameters") or {}, found)
    if result is not None and isinstance(result, dict) and "body" in result:
        with contextlib.suppress(ValueError, TypeError):
            body = json.loads(result["body"])
            if isinstance(body, dict) and isinstance(body.get("id"), str):
                _find_job_ids(body["id"], found)
    return found


def install_handler_wrappers(recorder: AwsCalls) -> dict[str, Callable[[Any, Any], Any]]:
    """Load every function's handler once and replace the local front's cached copy with a
    recording wrapper, so the front, the queue driver and the schedule driver all call it."""
    from reelhook_local import front
    from reelhook_local.template import functions

    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "reelhook")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "reelhook")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")  # as deployed; the lines are counted, not shown
    wrapped = {}
    for logical_id, fn in functions().items():
        handler = front.load_handler(fn)
        name = function_name(logical_id)
        wrapped[name] = recorder.wrap(name, handler, job_ids_in_event)
        with front._load_lock:
            front._loaded[logical_id] = wrapped[name]
    silence_powertools()
    return wrapped


class OutputMeter:
    """A stdout stand-in that counts what the functions would send to CloudWatch Logs.

    Powertools' Logger lines and Metrics' EMF blobs are what a deployed function writes;
    their bytes are billed as log ingestion and each EMF metric name is a custom metric.
    """

    def __init__(self) -> None:
        self.bytes = 0
        self.writes = 0
        self.metrics: set[str] = set()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        data = len(text.encode())
        names: list[str] = []
        if '"CloudWatchMetrics"' in text:
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                blob = json.loads(text)
                for directive in blob["_aws"]["CloudWatchMetrics"]:
                    names += [f"{directive['Namespace']}/{m['Name']}" for m in directive["Metrics"]]
        with self._lock:
            self.bytes += data
            self.writes += 1
            self.metrics.update(names)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


METER = OutputMeter()


def silence_powertools() -> None:
    """Keep Powertools' log level (its formatting cost is real) but send the lines to METER."""
    import logging

    for name in ("reelhook", "service_undefined"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(METER)  # type: ignore[arg-type]


class MotoBusy:
    """moto's own figures per operation (requests, wall and CPU seconds), read from the local
    stack's moto server (``GET /_reelhook/moto-stats``, ``reelhook_local.stack.MotoStats``)
    wherever it runs: in the stack's process or in its own."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")

    def snapshot(self) -> dict[str, Any]:
        import httpx

        from reelhook_local.stack import MotoStats

        return httpx.get(self.endpoint + MotoStats.PATH, timeout=30).json()

    @staticmethod
    def between(start: dict[str, Any], end: dict[str, Any], wall: float) -> dict[str, Any]:
        """What moto did from ``start`` to ``end`` (two snapshots), over ``wall`` seconds."""
        before = start["operations"]
        rows = {}
        for name, row in end["operations"].items():
            was = before.get(name, {"requests": 0, "wall_seconds": 0.0, "cpu_seconds": 0.0})
            requests = row["requests"] - was["requests"]
            if requests:
                rows[name] = (requests, row["cpu_seconds"] - was["cpu_seconds"])
        requests = sum(r for r, _ in rows.values())
        cpu = sum(c for _, c in rows.values())
        return {
            "requests": requests,
            "requests_per_second": rnd(requests / wall, 1) if wall else None,
            "cpu_ms_per_request": rnd(cpu * 1000 / max(1, requests), 2),
            "request_cpu_cores": rnd(cpu / wall, 3) if wall else None,
            "process_cpu_cores": rnd((end["process_cpu_seconds"] - start["process_cpu_seconds"]) / wall, 3)
            if wall else None,
            "cpu_share_by_operation": {k: rnd(c / cpu, 3) for k, (_, c) in
                                       sorted(rows.items(), key=lambda kv: -kv[1][1]) if cpu and c / cpu >= 0.005},
            "requests_by_operation": {k: r for k, (r, _) in sorted(rows.items(), key=lambda kv: -kv[1][0])},
            "processes": MotoBusy._process_cores(start, end, wall),
        }

    @staticmethod
    def _process_cores(start: dict[str, Any], end: dict[str, Any], wall: float) -> list[dict[str, Any]]:
        """Each moto server process's requests and CPU cores over the span."""
        before = {p["pid"]: p for p in start.get("processes", [])}
        out = []
        for process in end.get("processes", []):
            was = before.get(process["pid"], {"process_cpu_seconds": 0.0, "requests": 0})
            out.append({"requests": process["requests"] - was["requests"],
                        "cpu_cores": rnd((process["process_cpu_seconds"] - was["process_cpu_seconds"]) / wall, 3)
                        if wall else None})
        return out


def restore_handlers() -> None:
    from reelhook_local import front

    with front._load_lock:
        front._loaded.clear()


# ---------------------------------------------------------------------------- moto timing


class MotoTimer:
    """Time spent inside moto's in-process request handling (what AWS itself would do)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._original: Any = None

    def install(self) -> MotoTimer:
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.__call__
        timer = self

        def timed(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(stubber, event_name, request, **kwargs)
            finally:
                timer._local.total = getattr(timer._local, "total", 0.0) + time.perf_counter() - start

        self._original = original
        BotocoreStubber.__call__ = timed  # type: ignore[method-assign]
        return self

    def uninstall(self) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        if self._original is not None:
            BotocoreStubber.__call__ = self._original  # type: ignore[method-assign]
            self._original = None

    def take(self) -> float:
        """Seconds spent in moto by this thread since the last take()."""
        total = getattr(self._local, "total", 0.0)
        self._local.total = 0.0
        return total


# ---------------------------------------------------------------------------- markdown


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            if not math.isfinite(value):
                return "–"
            return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |"]
    spec = align or ("l" + "r" * (len(headers) - 1))
    lines.append("|" + "|".join(":---" if a == "l" else "---:" if a == "r" else ":---:" for a in spec) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "n/a"
    return "✅ pass" if ok else "❌ fail"
