"""The local stand-in for API Gateway, SQS event source mappings and EventBridge schedules.

- ``LocalFront`` is a real HTTP server: each request becomes an API Gateway HTTP API
  (payload 2.0) event for the handler the template routes it to.
- ``QueueDriver`` long-polls a queue and invokes its handler with SQS events, deleting
  what succeeded and leaving reported failures to come back after the visibility timeout,
  as a Lambda event source mapping does (so the redrive policy sends them to the DLQ).
- ``ScheduleDriver`` invokes scheduled functions on an interval.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from reelhook_local.template import FunctionDef, Route

Handler = Callable[[dict[str, Any], Any], Any]
TEXT_TYPES = ("application/json", "text/", "application/problem+json", "application/x-www-form-urlencoded")


class LambdaContext:
    """What the Lambda runtime hands a handler, enough for Powertools."""

    def __init__(self, function_name: str, timeout_seconds: float = 30.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_loaded: dict[str, Handler] = {}
_load_lock = threading.Lock()


def load_handler(fn: FunctionDef) -> Handler:
    """Import ``functions/<name>/app.py`` under its own module name, once."""
    with _load_lock:
        if fn.logical_id not in _loaded:
            module_file, _, attr = fn.handler.rpartition(".")
            path = fn.code_dir / f"{module_file}.py"
            spec = importlib.util.spec_from_file_location(f"reelhook_fn_{fn.logical_id}", path)
            assert spec is not None and spec.loader is not None
            module: ModuleType = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            _loaded[fn.logical_id] = getattr(module, attr)
        return _loaded[fn.logical_id]


def _route_regex(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(f"^{pattern}$")


class LocalFront:
    def __init__(self, functions: dict[str, FunctionDef], host: str = "127.0.0.1", port: int = 0) -> None:
        self.functions = functions
        self.routes: list[tuple[Route, re.Pattern[str]]] = [
            (route, _route_regex(route.path)) for fn in functions.values() for route in fn.routes
        ]
        front = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                front.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self.server = ThreadingHTTPServer((host, port), RequestHandler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="front", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route, regex in self.routes:
            found = regex.match(path)
            if found and route.method in {method, "ANY"}:
                return route, found.groupdict()
        return None

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length) if length else b""
        parts = urlsplit(request.path)
        matched = self.match(request.command, parts.path)
        if matched is None:
            self._reply(request, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        route, params = matched
        event = self.http_event(request, route, params, parts.query, body)
        try:
            result = load_handler(self.functions[route.function])(event, LambdaContext(route.function))
        except Exception:  # what API Gateway does when the function errors
            import traceback

            traceback.print_exc()
            self._reply(request, 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
            return
        status = int(result.get("statusCode", 200))
        headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        payload = result.get("body") or ""
        raw = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
        self._reply(request, status, headers, raw)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name not in {"content-length", "connection"}:
                request.send_header(name, value)
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def http_event(self, request: BaseHTTPRequestHandler, route: Route, params: dict[str, str],
                   query: str, body: bytes) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        content_type = headers.get("content-type", "")
        is_text = not body or content_type.startswith(TEXT_TYPES)
        now = time.time()
        query_params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            query_params[key] = f"{query_params[key]},{value}" if key in query_params else value
        host = headers.get("host", "localhost")
        return {
            "version": "2.0",
            "routeKey": f"{route.method} {route.path}",
            "rawPath": urlsplit(request.path).path,
            "rawQueryString": query,
            "headers": headers,
            "queryStringParameters": query_params or None,
            "pathParameters": params or None,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": host,
                "domainPrefix": host.split(".")[0],
                "http": {
                    "method": request.command,
                    "path": urlsplit(request.path).path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": request.client_address[0],
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": f"{route.method} {route.path}",
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "body": body.decode() if is_text else base64.b64encode(body).decode(),
            "isBase64Encoded": not is_text,
        }


class QueueDriver:
    """Polls one SQS queue and feeds its function, like an event source mapping."""

    def __init__(self, fn: FunctionDef, queue_url: str, queue_arn: str, batch_size: int, sqs: Any,
                 workers: int = 4) -> None:
        self.fn, self.queue_url, self.queue_arn, self.batch_size, self.sqs = fn, queue_url, queue_arn, batch_size, sqs
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, name=f"sqs-{fn.logical_id}-{i}", daemon=True)
                        for i in range(workers)]
        self.invocations = 0
        self.errors = 0
        self.idle_seconds = 0.1

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        handler = load_handler(self.fn)
        while not self.stopping.is_set():
            try:
                # Short polls: moto answers one request at a time (see AtomicMotoServer), and a
                # long poll would hold everyone else up while it waits.
                answer = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=0,
                    AttributeNames=["All"], MessageAttributeNames=["All"],
                )
            except Exception:
                if self.stopping.is_set():
                    return
                time.sleep(0.2)
                continue
            messages = answer.get("Messages", [])
            if not messages:
                self.stopping.wait(self.idle_seconds)
                continue
            event = {"Records": [self._record(m) for m in messages]}
            self.invocations += 1
            try:
                result = handler(event, LambdaContext(self.fn.logical_id, timeout_seconds=900))
                failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            except Exception:
                self.errors += 1
                failed = {m["MessageId"] for m in messages}
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": "us-east-1",
        }


class ScheduleDriver:
    """Invokes a scheduled function every ``interval`` seconds (EventBridge's role)."""

    def __init__(self, fn: FunctionDef, interval: float) -> None:
        self.fn, self.interval = fn, interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"schedule-{fn.logical_id}", daemon=True)
        self.runs = 0

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)

    def run_once(self) -> Any:
        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.scheduler",
            "account": "123456789012", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": "us-east-1", "resources": [], "detail": {},
        }
        self.runs += 1
        return load_handler(self.fn)(event, LambdaContext(self.fn.logical_id, timeout_seconds=300))

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:
                print(f"scheduled {self.fn.logical_id} failed: {exc!r}", file=sys.stderr)


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
