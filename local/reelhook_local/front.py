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
import datetime as dt
import hashlib
import hmac
import importlib.util
import json
import mimetypes
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import ReadOnlyCredentials

from reelhook_local.template import FunctionDef, Route

# -- IAM (SigV4) authorization, as an HTTP API with ``AWS_IAM`` on a route does it ----------------

IAM_AUTHORIZER = "AWS_IAM"
NO_AUTHORIZER = "NONE"
SIGV4_SERVICE = "execute-api"
SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
SIGV4_MAX_SKEW = dt.timedelta(minutes=5)
LOCAL_ACCOUNT_ID = "123456789012"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
                       "Check your AWS Secret Access Key and signing method.")


class AuthRefused(Exception):
    """Why API Gateway's IAM authorizer answers 403: ``message`` for the body, ``error_type`` for x-amzn-ErrorType."""

    def __init__(self, message: str, error_type: str = "InvalidSignatureException") -> None:
        super().__init__(message)
        self.message, self.error_type = message, error_type


class _Resign(SigV4Auth):
    """botocore's SigV4 over exactly the headers the client says it signed (botocore would pick its own)."""

    def __init__(self, credentials: ReadOnlyCredentials, service: str, region: str, signed: HTTPHeaders) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._signed


def _authorization_fields(header: str) -> dict[str, str]:
    scheme, _, rest = header.strip().partition(" ")
    if scheme != SIGV4_ALGORITHM:
        raise AuthRefused(f"Authorization header requires '{SIGV4_ALGORITHM}' as the algorithm.",
                          "IncompleteSignatureException")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name.strip()] = value.strip()
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if missing:
        raise AuthRefused(" ".join(f"Authorization header requires '{name}' parameter." for name in missing),
                          "IncompleteSignatureException")
    return fields


def _iam_identity(access_key: str) -> dict[str, Any]:
    """What ``requestContext.authorizer.iam`` holds for an IAM user's signed request."""
    user_id = "AIDA" + hashlib.sha256(access_key.encode()).hexdigest()[:17].upper()
    return {
        "accessKey": access_key,
        "accountId": LOCAL_ACCOUNT_ID,
        "callerId": user_id,
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:user/{access_key}",
        "userId": user_id,
    }


def verify_sigv4(method: str, target: str, headers: Message, body: bytes, *, credentials: Mapping[str, str],
                 region: str, service: str = SIGV4_SERVICE, now: dt.datetime | None = None) -> dict[str, Any]:
    """Check a request's SigV4 ``Authorization`` header; answer the caller's IAM identity or raise AuthRefused.

    ``target`` is the request target as received (path and query, still percent-encoded);
    ``credentials`` maps the access keys this API knows to their secret keys.
    """
    authorization = headers.get("authorization")
    if not authorization:
        raise AuthRefused("Forbidden", "ForbiddenException")
    fields = _authorization_fields(authorization)
    scope = fields["Credential"].split("/")
    if len(scope) != 5:
        raise AuthRefused("Credential should be scoped correctly: "
                          f"'<access key>/<YYYYMMDD>/{region}/{service}/aws4_request'.",
                          "IncompleteSignatureException")
    access_key, scope_date, scope_region, scope_service, terminator = scope
    secret = credentials.get(access_key)
    if secret is None:
        raise AuthRefused("The security token included in the request is invalid.", "UnrecognizedClientException")
    amz_date = headers.get("x-amz-date") or ""
    try:
        stamp = dt.datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=dt.UTC)
    except ValueError:
        raise AuthRefused("Authorization header requires existence of a valid 'X-Amz-Date' header "
                          "(YYYYMMDD'T'HHMMSS'Z').", "IncompleteSignatureException") from None
    if scope_date != amz_date[:8]:
        raise AuthRefused("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                          f"from HTTP: '{scope_date}' != '{amz_date[:8]}', from 'X-Amz-Date'.")
    if scope_region != region:
        raise AuthRefused(f"Credential should be scoped to a valid region, not '{scope_region}'.")
    if scope_service != service:
        raise AuthRefused(f"Credential should be scoped to correct service: '{service}'.")
    if terminator != "aws4_request":
        raise AuthRefused(f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'.")
    now = now or dt.datetime.now(dt.UTC)
    if stamp < now - SIGV4_MAX_SKEW:
        raise AuthRefused(f"Signature expired: {amz_date} is now earlier than "
                          f"{(now - SIGV4_MAX_SKEW).strftime(_AMZ_DATE)} ({now.strftime(_AMZ_DATE)} - 5 min.)")
    if stamp > now + SIGV4_MAX_SKEW:
        raise AuthRefused(f"Signature not yet current: {amz_date} is still later than "
                          f"{(now + SIGV4_MAX_SKEW).strftime(_AMZ_DATE)} ({now.strftime(_AMZ_DATE)} + 5 min.)")

    names = sorted({name.strip().lower() for name in fields["SignedHeaders"].split(";") if name.strip()})
    if "host" not in names:
        raise AuthRefused("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
                          "IncompleteSignatureException")
    signed = HTTPHeaders()
    for name in names:
        values = headers.get_all(name)
        if not values:  # signed but not sent: the signature cannot match
            raise AuthRefused(_SIGNATURE_MISMATCH)
        for value in values:
            signed[name] = value
    body_sha256 = hashlib.sha256(body).hexdigest()
    # botocore would take a signed x-amz-content-sha256 on trust; the body must really hash to it.
    if signed.get("x-amz-content-sha256", body_sha256) != body_sha256:
        raise AuthRefused("The provided 'x-amz-content-sha256' header does not match what was computed.")
    parts = urlsplit(target)
    url = f"http://{signed['host']}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
    request = AWSRequest(method=method.upper(), url=url, data=body,
                         headers={name: ",".join(signed.get_all(name)) for name in names})
    request.context["timestamp"] = amz_date
    signer = _Resign(ReadOnlyCredentials(access_key, secret, None), service, region, signed)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, fields["Signature"].lower()):
        raise AuthRefused(_SIGNATURE_MISMATCH)
    return _iam_identity(access_key)


# -- the web console: static files beside this module, served at /console/ --------------------------

CONSOLE_PATH = "/console"
CONSOLE_DIR = Path(__file__).with_name("console")
CONSOLE_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
# The page runs only its own script and style; it may fetch any API (its base URL is a setting)
# and show media from wherever presigned URLs point.
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src *; img-src * data:; "
               "media-src *; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def console_config(enforce_iam: bool, credentials: Mapping[str, str], region: str) -> dict[str, Any]:
    """What the console served here starts with: this origin's API, signed as the front wants."""
    if not enforce_iam or not credentials:
        return {"api_url": "", "auth": "none"}
    # Only the local stack's own well-known keys ever reach a page: they are printed in the banner.
    access_key, secret_key = next(iter(credentials.items()))
    return {"api_url": "", "auth": "iam", "iam": {"access_key": access_key, "secret_key": secret_key,
                                                   "region": region}}


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


class FrontServer(ThreadingHTTPServer):
    """A thread per connection, with a listen backlog for bursts: the default (5) refuses
    connections as soon as a few clients arrive together, which API Gateway never does."""

    request_queue_size = 1024
    daemon_threads = True
    block_on_close = False


class LocalFront:
    """API Gateway in front of the handlers.

    With ``enforce_iam``, routes whose authorizer is ``AWS_IAM`` (template.yaml) want a SigV4
    signature for ``execute-api`` in ``region`` made with one of ``credentials`` (access key
    -> secret key), and refuse anything else with 403 as API Gateway does; routes with
    ``Authorizer: NONE`` stay open. Off, every route is open.
    """

    def __init__(self, functions: dict[str, FunctionDef], host: str = "127.0.0.1", port: int = 0, *,
                 enforce_iam: bool = False, credentials: Mapping[str, str] | None = None,
                 region: str = "us-east-1") -> None:
        self.functions = functions
        self.routes: list[tuple[Route, re.Pattern[str]]] = [
            (route, _route_regex(route.path)) for fn in functions.values() for route in fn.routes
        ]
        self.enforce_iam = enforce_iam
        self.credentials = dict(credentials or {})
        self.region = region
        if enforce_iam:
            unknown = {r.authorizer for r, _ in self.routes} - {IAM_AUTHORIZER, NO_AUTHORIZER}
            if unknown:  # a JWT or Lambda authorizer: not emulated, and not silently left open
                raise NotImplementedError(f"the local front cannot enforce authorizer(s) {sorted(unknown)}")
        front = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                front.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self.server = FrontServer((host, port), RequestHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="front", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():  # shutdown() waits for a serve_forever that never started otherwise
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
        if parts.path == CONSOLE_PATH or parts.path.startswith(CONSOLE_PATH + "/"):
            self.serve_console(request, parts.path)
            return
        matched = self.match(request.command, parts.path)
        if matched is None:
            self._reply(request, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        route, params = matched
        identity: dict[str, Any] | None = None
        if self.enforce_iam and route.authorizer == IAM_AUTHORIZER:
            try:
                identity = verify_sigv4(request.command, request.path, request.headers, body,
                                        credentials=self.credentials, region=self.region)
            except AuthRefused as refused:
                self._reply(request, 403, {"content-type": "application/json", "x-amzn-errortype": refused.error_type},
                            json.dumps({"message": refused.message}, separators=(",", ":")).encode())
                return
        event = self.http_event(request, route, params, parts.query, body)
        if identity is not None:
            event["requestContext"]["authorizer"] = {"iam": identity}
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

    def serve_console(self, request: BaseHTTPRequestHandler, path: str) -> None:
        """The console's files (GET only); ``config.json`` tells the page how this front wants calls signed."""
        if request.command != "GET":
            self._reply(request, 405, {"content-type": "application/json", "allow": "GET"},
                        b'{"message":"Method Not Allowed"}')
            return
        if path == CONSOLE_PATH:  # relative links in the page resolve under /console/
            self._reply(request, 301, {"location": CONSOLE_PATH + "/"}, b"")
            return
        name = path[len(CONSOLE_PATH) + 1:] or "index.html"
        headers = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
        if name == "config.json":
            config = console_config(self.enforce_iam, self.credentials, self.region)
            self._reply(request, 200, headers | {"content-type": "application/json"}, json.dumps(config).encode())
            return
        # Only the files that are there by name: no subfolders, no way out of the folder.
        files = {f.name: f for f in CONSOLE_DIR.iterdir() if f.is_file()} if CONSOLE_DIR.is_dir() else {}
        found = files.get(name)
        if found is None:
            self._reply(request, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        content_type = CONSOLE_TYPES.get(found.suffix) or mimetypes.guess_type(found.name)[0]
        headers |= {"content-type": content_type or "application/octet-stream",
                    "content-security-policy": CONSOLE_CSP, "referrer-policy": "no-referrer"}
        self._reply(request, 200, headers, found.read_bytes())

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name not in {"content-length", "connection"}:
                request.send_header(name, value)
        request.send_header("content-length", str(len(body)))
        try:
            request.end_headers()
            request.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting, as API Gateway's do
            request.close_connection = True

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
                "accountId": LOCAL_ACCOUNT_ID,
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


def _log(message: str) -> None:
    print(message, file=sys.stderr)


class Backoff:
    """Idle waits that double from ``base`` up to ``most`` seconds, back to ``base`` on work."""

    def __init__(self, base: float, most: float = 1.5) -> None:
        self.base, self.most = base, max(base, most)
        self.current = base

    def idle(self) -> float:
        wait, self.current = self.current, min(self.most, self.current * 2)
        return wait

    def busy(self) -> None:
        self.current = self.base


class QueueDriver:
    """Polls one SQS queue and feeds its function, like an event source mapping.

    ``workers`` consumers (the mapping's ``ScalingConfig.MaximumConcurrency`` where the template
    sets one) each long-poll the queue and invoke the handler with what they get, so that many
    batches are in flight at once. What succeeded is deleted; reported failures come back after
    the visibility timeout (so the redrive policy sends them to the DLQ).
    """

    DEFAULT_CONCURRENCY = 5
    LOCAL_MOST = 20  # one process on a small machine: more consumers only queue for the GIL

    def __init__(self, fn: FunctionDef, queue_url: str, queue_arn: str, batch_size: int, sqs: Any,
                 workers: int = DEFAULT_CONCURRENCY, wait_seconds: int = 20) -> None:
        self.fn, self.queue_url, self.queue_arn, self.batch_size, self.sqs = fn, queue_url, queue_arn, batch_size, sqs
        # As the mapping does: 20 s long polls. Each empty answer costs moto a whole request, and
        # with dozens of consumers 1 s polls were a steady load on the local stack's bottleneck.
        self.wait_seconds = wait_seconds
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, name=f"sqs-{fn.logical_id}-{i}", daemon=True)
                        for i in range(max(1, workers))]
        self.invocations = 0
        self.errors = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self._count_lock = threading.Lock()
        # Consumers in a ReceiveMessage call, consumers parked, and batches received (which
        # wake the parked ones): see _park.
        self._activity = threading.Condition()
        self._polling = 0
        self.parked = 0
        self._received = 0

    @classmethod
    def concurrency(cls, fn: FunctionDef, queue: str, default: int | None = None) -> int:
        """Consumers for ``fn``'s mapping on ``queue``: its MaximumConcurrency, else ``default``."""
        most = fn.queue_concurrency.get(queue) or default or cls.DEFAULT_CONCURRENCY
        return max(1, min(int(most), cls.LOCAL_MOST))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Wait for running invocations, not for idle long polls: a consumer still waiting in
        one exits when it ends, without invoking (its messages come back after the visibility
        timeout, as after a crash)."""
        self.stopping.set()
        self.wake()
        deadline = time.monotonic() + timeout
        with self._count_lock:
            busy = self.in_flight
        while busy and time.monotonic() < deadline:
            time.sleep(0.02)
            with self._count_lock:
                busy = self.in_flight
        for thread in self.threads:
            thread.join(timeout=max(0.0, min(0.05, deadline - time.monotonic())))

    def _run(self) -> None:
        backoff = Backoff(0.1, 2.0)
        while not self.stopping.is_set():
            try:
                self.receive_once()
                backoff.busy()
            except Exception as exc:  # moto restarting, a handler's delete failing: log, wait, go on
                if self.stopping.is_set():
                    return
                _log(f"queue driver for {self.fn.logical_id} failed: {exc!r}")
                self.stopping.wait(backoff.idle())

    def _park(self) -> None:
        """With ``_activity`` held, after an empty answer: wait for work unless no other
        consumer is long-polling.

        As the mapping scales its pollers down on an idle queue, one consumer keeps polling
        and the rest wait here until it (or any other) receives messages: an idle queue costs
        one request per long poll, not one per consumer. Deciding under the same hold as the
        count of pollers went down, two answers at once never both park (nor both stay).
        """
        if not self._polling or self.stopping.is_set():
            return
        self.parked += 1
        seen = self._received
        try:
            while self._received == seen and not self.stopping.is_set():
                self._activity.wait()
        finally:
            self.parked -= 1

    def wake(self) -> None:
        """Send the parked consumers back to polling (messages arrived, or stopping)."""
        with self._activity:
            self._received += 1
            self._activity.notify_all()

    def receive_once(self) -> int:
        """One long poll and, if it got messages, one invocation; returns how many messages."""
        with self._activity:
            self._polling += 1
        answer: dict[str, Any] | None = None
        try:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=self.wait_seconds,
                AttributeNames=["All"], MessageAttributeNames=["All"],
            )
        finally:
            with self._activity:
                self._polling -= 1
                if answer is not None and not answer.get("Messages"):
                    self._park()
        messages = answer.get("Messages", [])
        if messages and self.parked:
            self.wake()  # more may be waiting: every consumer polls while the queue has work
        if not messages:
            if not self.wait_seconds:
                self.stopping.wait(0.2)
            return 0
        handler = load_handler(self.fn)
        event = {"Records": [self._record(m) for m in messages]}
        with self._count_lock:
            if self.stopping.is_set():  # stop() has counted what runs: leave these to come back
                return 0
            self.invocations += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            result = handler(event, LambdaContext(self.fn.logical_id, timeout_seconds=900))
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except Exception:
            with self._count_lock:
                self.errors += 1
            failed = {m["MessageId"] for m in messages}
        finally:
            with self._count_lock:
                self.in_flight -= 1
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:  # as the mapping does: one DeleteMessageBatch per batch
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        return len(messages)

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
    """Invokes a scheduled function (EventBridge Scheduler's role): every ``idle_most`` seconds,
    and ``interval`` seconds after the last run when woken (``wake``) before that.

    Locally the schedule's only function is the poller, whose pass dispatches every check due
    before the next pass (``POLLER_PERIOD_SECONDS``, which the stack sets to ``idle_most``): a
    pass every ``idle_most`` seconds misses no check already due, and a wake when the jobs
    table changes (the stream driver sees it) finds new checks at once. An idle stack runs it
    seldom; a busy one every ``interval``. Without ``idle_most`` it runs every ``interval``.
    """

    def __init__(self, fn: FunctionDef, interval: float, idle_most: float | None = None) -> None:
        self.fn, self.interval = fn, interval
        self.idle_most = max(interval, idle_most or interval)
        self._woken = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"schedule-{fn.logical_id}", daemon=True)
        self.runs = 0

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._woken.set()
        self.thread.join(timeout=10)

    def wake(self) -> None:
        """Run soon (``interval`` after the last run at the latest): there may be work."""
        self._woken.set()

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
            # Never sooner than ``interval`` after the last run; then at a wake, or idle_most on.
            self._woken.wait(self.idle_most - self.interval)
            self._woken.clear()
            if self.stopping.is_set():
                return
            try:
                self.run_once()
            except Exception as exc:
                print(f"scheduled {self.fn.logical_id} failed: {exc!r}", file=sys.stderr)


# -- DynamoDB stream and S3 -> EventBridge stand-ins (notifications, the S3 inbox) -----------------

_MISSING = object()


def _value_matches(rules: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for rule in rules:
        if not isinstance(rule, dict):
            if value is not _MISSING and rule in values:
                return True
            continue
        if "exists" in rule:
            if (value is not _MISSING) == bool(rule["exists"]):
                return True
            continue
        if value is _MISSING:
            continue
        if "prefix" in rule:
            if any(isinstance(v, str) and v.startswith(rule["prefix"]) for v in values):
                return True
        elif "anything-but" in rule:
            excluded = rule["anything-but"]
            if isinstance(excluded, dict):
                raise NotImplementedError(f"event pattern rule {rule!r}")
            excluded = excluded if isinstance(excluded, list) else [excluded]
            if any(v not in excluded for v in values):
                return True
        else:
            raise NotImplementedError(f"event pattern rule {rule!r}: extend front.event_matches")
    return False


def event_matches(pattern: dict[str, Any], event: Any) -> bool:
    """EventBridge / Lambda filter-criteria pattern matching: the subset reelhook's template uses
    (value lists, ``prefix``, ``anything-but``, ``exists``); anything else raises."""
    if not isinstance(event, dict):
        return False
    for key, rule in pattern.items():
        value = event.get(key, _MISSING)
        if isinstance(rule, dict):
            if not event_matches(rule, value):
                return False
        elif not _value_matches(rule, value):
            return False
    return True


def function_events(template: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    """``(function logical id, event Properties)`` for every event of ``kind`` in the template."""
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") == kind:
                found.append((logical_id, dict(event.get("Properties", {}))))
    return found


def _epoch(value: Any) -> Any:
    return value.timestamp() if hasattr(value, "timestamp") else value


class RawStreamRecords:
    """A DynamoDB Streams client whose GetRecords skips botocore's response parsing.

    Under load that parsing (every record's old and new image, shape by shape) was the local
    stream driver's largest cost, and the answer's JSON is already the record shape Lambda
    delivers. The request is signed as botocore would sign it; every other call goes to
    ``client``.
    """

    TARGET = "DynamoDBStreams_20120810.GetRecords"

    def __init__(self, client: Any) -> None:
        import urllib3

        self._client = client
        self._url = client.meta.endpoint_url.rstrip("/") + "/"
        self._region = client.meta.region_name
        credentials = client._request_signer._credentials  # the client's own keys, as it signs
        self._credentials = ReadOnlyCredentials(credentials.access_key, credentials.secret_key, credentials.token)
        self._pool = urllib3.PoolManager(maxsize=2, retries=False, timeout=urllib3.Timeout(connect=3, read=30))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_records(self, *, ShardIterator: str, Limit: int) -> dict[str, Any]:
        body = json.dumps({"ShardIterator": ShardIterator, "Limit": Limit}).encode()
        request = AWSRequest("POST", self._url, data=body, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": self.TARGET})
        SigV4Auth(self._credentials, "dynamodb", self._region).add_auth(request)
        answer = self._pool.request("POST", self._url, body=body, headers=dict(request.headers.items()))
        if answer.status != 200:
            raise RuntimeError(f"GetRecords answered {answer.status}: {answer.data[:300]!r}")
        return dict(json.loads(answer.data))


class StreamDriver:
    """Polls a DynamoDB stream and feeds its function, like a stream event source mapping.

    Records come in the event shape Lambda gives (``eventSourceARN`` added, times as epoch
    seconds), only those matching the mapping's filter criteria. A reported
    ``batchItemFailures`` entry is retried from that record on; an error bisects the batch
    (``BisectBatchOnFunctionError``); a record that still fails after ``max_retries`` is
    described on the ``OnFailure`` queue and skipped. ``starting_position`` is the mapping's
    (``TRIM_HORIZON`` or ``LATEST``), taken when the driver starts.
    """

    def __init__(self, fn: FunctionDef, stream_arn: str, streams: Any, *, batch_size: int = 100,
                 filters: list[dict[str, Any]] | None = None, max_retries: int = 10,
                 on_failure: Callable[[dict[str, Any]], None] | None = None, interval: float = 0.5,
                 starting_position: str = "TRIM_HORIZON") -> None:
        self.fn, self.stream_arn, self.streams = fn, stream_arn, streams
        self.starting_position = starting_position
        self.batch_size, self.filters, self.max_retries = batch_size, filters or [], max_retries
        self.on_failure, self.interval = on_failure, interval
        self.iterators: dict[str, str] = {}
        self.last_sequence: dict[str, str] = {}  # shard -> sequence number of the last record read
        self.finished: set[str] = set()  # closed shards read to their end
        self._closed: set[str] = set()
        self._initial: set[str] = set()  # shards positioned at start (at starting_position)
        self._shard_ids: list[str] = []
        self._shards_read_at = float("-inf")
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"stream-{fn.logical_id}", daemon=True)
        self.invocations = 0
        self.errors = 0
        self.given_up: list[dict[str, Any]] = []
        # Called with nothing when a pass read records (the table changed): the stack wakes
        # its schedule with it (see ScheduleDriver).
        self.on_records: list[Callable[[], None]] = []

    @classmethod
    def from_template(cls, fn: FunctionDef, props: dict[str, Any], stream_arn: str, streams: Any,
                      on_failure: Callable[[dict[str, Any]], None] | None = None,
                      starting_position: str | None = None, interval: float = 0.5) -> StreamDriver:
        filters = [json.loads(f["Pattern"]) for f in (props.get("FilterCriteria") or {}).get("Filters", [])]
        # Locally a record is retried a few times, not the deployed count (each retry waits).
        retries = min(3, int(props.get("MaximumRetryAttempts", 3)))
        return cls(fn, stream_arn, streams, batch_size=int(props.get("BatchSize", 100)), filters=filters,
                   max_retries=retries, on_failure=on_failure, interval=interval,
                   starting_position=starting_position or str(props.get("StartingPosition", "TRIM_HORIZON")))

    def start(self) -> None:
        # Positioned now, so nothing written after start() returns is missed.
        for shard in self._shards():
            self.iterators[shard] = self._iterator(shard, self.starting_position)
            self._initial.add(shard)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)

    IDLE_MOST = 1.5  # seconds: an idle stream is read at most this seldom
    SHARDS_EVERY = 5.0  # seconds between DescribeStream calls: shards change rarely

    def _shards(self, refresh: bool = False) -> list[str]:
        if refresh or time.monotonic() - self._shards_read_at > self.SHARDS_EVERY:
            description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
            shards = description.get("Shards", [])
            self._shard_ids = [shard["ShardId"] for shard in shards]
            self._closed = {shard["ShardId"] for shard in shards
                            if (shard.get("SequenceNumberRange") or {}).get("EndingSequenceNumber")}
            self._shards_read_at = time.monotonic()
        return self._shard_ids

    def _iterator(self, shard: str, position: str) -> str:
        """A fresh iterator for ``shard``: after the last record read from it, else at ``position``."""
        last = self.last_sequence.get(shard)
        if last is not None:
            return str(self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard,
                                                       ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                                       SequenceNumber=last)["ShardIterator"])
        return str(self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard,
                                                   ShardIteratorType=position)["ShardIterator"])

    def poll_once(self) -> int:
        """Read each shard once and deliver what matches; returns how many records were read.

        A shard found after start is read from its start (TRIM_HORIZON). An answer without a
        ``NextShardIterator`` ends a shard only if DescribeStream says it is closed; an open one
        (or one whose GetRecords failed, e.g. an expired iterator) gets a new iterator after its
        last record read. Shards are rediscovered every ``SHARDS_EVERY`` seconds.
        """
        read = 0
        for shard in self._shards():
            try:
                read += self._poll_shard(shard)
            except Exception as exc:
                if self.stopping.is_set():
                    return read
                self.errors += 1
                # Re-acquired from the last record read on the next pass.
                self.iterators.pop(shard, None)
                _log(f"stream driver for {self.fn.logical_id}: shard {shard} failed: {exc!r}")
        return read

    def _poll_shard(self, shard: str) -> int:
        if shard in self.finished:
            return 0
        iterator = self.iterators.get(shard)
        if iterator is None:
            # New since start (TRIM_HORIZON), or its iterator was lost: from the last record read.
            position = self.starting_position if shard in self._initial else "TRIM_HORIZON"
            iterator = self.iterators[shard] = self._iterator(shard, position)
        answer = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
        raw = answer.get("Records", [])
        if raw:
            self.last_sequence[shard] = str(raw[-1]["dynamodb"]["SequenceNumber"])
        following = answer.get("NextShardIterator")
        if following:
            self.iterators[shard] = following
        else:
            # Gone: closed (read to its end) if DescribeStream says so; else re-acquired next pass.
            self.iterators.pop(shard, None)
            self._shards(refresh=True)
            if shard in self._closed:
                self.finished.add(shard)
        records = [self._record(r) for r in raw]
        batch = [r for r in records if not self.filters or any(event_matches(f, r) for f in self.filters)]
        if batch:
            self._deliver(shard, batch)
        return len(records)

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        change = dict(record["dynamodb"])
        if "ApproximateCreationDateTime" in change:  # botocore gives a datetime, the raw answer epoch seconds
            change["ApproximateCreationDateTime"] = _epoch(change["ApproximateCreationDateTime"])
        return {**record, "dynamodb": change, "eventSourceARN": self.stream_arn}

    def _deliver(self, shard: str, records: list[dict[str, Any]]) -> None:
        handler = load_handler(self.fn)
        failures = 0
        while records:
            self.invocations += 1
            try:
                result = handler({"Records": records}, LambdaContext(self.fn.logical_id, timeout_seconds=60))
                failed = [f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])]
            except Exception:
                self.errors += 1
                if len(records) > 1:  # BisectBatchOnFunctionError
                    half = len(records) // 2
                    self._deliver(shard, records[:half])
                    self._deliver(shard, records[half:])
                    return
                failed = [records[0]["dynamodb"]["SequenceNumber"]]
            if not failed:
                return
            failures += 1
            sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
            start = min(sequences.index(s) for s in failed if s in sequences) if set(failed) & set(sequences) else 0
            records = records[start:]
            if failures > self.max_retries:
                self._give_up(shard, records[:1])
                records = records[1:]
                failures = 0
                continue
            self.stopping.wait(0.05 * failures)

    def _give_up(self, shard: str, records: list[dict[str, Any]]) -> None:
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        info = {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "requestContext": {"requestId": str(uuid.uuid4()), "condition": "RetryAttemptsExhausted",
                               "functionArn": LambdaContext(self.fn.logical_id).invoked_function_arn,
                               "approximateInvokeCount": self.max_retries + 1},
            "DDBStreamBatchInfo": {"shardId": shard, "streamArn": self.stream_arn, "batchSize": len(records),
                                   "startSequenceNumber": first["SequenceNumber"],
                                   "endSequenceNumber": last["SequenceNumber"]},
        }
        self.given_up.append(info)
        if self.on_failure is not None:
            self.on_failure(info)

    def _run(self) -> None:
        backoff = Backoff(self.interval, self.IDLE_MOST)
        while not self.stopping.is_set():
            try:
                read = self.poll_once()
            except Exception as exc:  # DescribeStream failing, the failure queue refusing: log, wait, go on
                if self.stopping.is_set():
                    return
                self.errors += 1
                _log(f"stream driver for {self.fn.logical_id} failed: {exc!r}")
                read = 0
            if read:
                backoff.busy()
                for listener in self.on_records:
                    listener()
            else:
                self.stopping.wait(backoff.idle())


# Where the local S3 server tells which objects were created (reelhook_local.stack.ObjectCreatedLog).
S3_EVENTS_PATH = "/_reelhook/s3-events"


class S3InboxDriver:
    """The local stand-in for S3 -> EventBridge -> a rule -> the function.

    Locally S3 sends no events. The local S3 server keeps a log of the objects each request
    created (``S3_EVENTS_PATH``); this driver long-polls it and, for each new object under the
    rule's key prefix, reads its size and ETag (HeadObject) and invokes the function with the
    EventBridge "Object Created" event S3 would send, if the rule's pattern matches it,
    ``workers`` invocations at a time. Like an asynchronous invocation, a failure is retried
    twice, then the event goes to the function's dead-letter queue. Objects already there when
    the driver starts made their events before the rule existed: they are not sent.

    Against a server without the log, or when the log dropped entries it had not read, the
    driver lists the bucket under the prefix instead (every ``interval`` seconds, backing off to
    ``IDLE_MOST`` while nothing arrives) and sends an event for each new object or new ETag.
    """

    RETRIES = 2
    IDLE_MOST = 1.5  # seconds: an idle bucket is listed at most this seldom

    def __init__(self, fn: FunctionDef, bucket: str, s3: Any, *, pattern: dict[str, Any], interval: float = 0.3,
                 dead_letter: Callable[[dict[str, Any]], None] | None = None, workers: int = 8) -> None:
        self.fn, self.bucket, self.s3, self.pattern, self.interval = fn, bucket, s3, pattern, interval
        self.dead_letter = dead_letter
        self.prefix = self._prefix(pattern)
        self.seen: dict[str, str] = {}  # key -> ETag handled
        self.attempts: dict[tuple[str, str], int] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"s3-{fn.logical_id}", daemon=True)
        self.invocations = 0
        self.errors = 0
        self.workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._count_lock = threading.Lock()
        self._cursor: int | None = None  # the last log entry read; None: no log, list the bucket

    @staticmethod
    def _prefix(pattern: dict[str, Any]) -> str:
        rules = ((pattern.get("detail") or {}).get("object") or {}).get("key") or []
        prefixes = [r["prefix"] for r in rules if isinstance(r, dict) and "prefix" in r]
        return prefixes[0] if len(prefixes) == 1 else ""

    def start(self) -> None:
        log = self._created_since(0)
        self._cursor = None if log is None else int(log["next"])
        self.seen |= {obj["Key"]: obj["ETag"] for obj in self._listed()}
        self.thread.start()

    def _listed(self) -> Iterator[dict[str, Any]]:
        """Every object under the rule's prefix, as ListObjectsV2 gives it."""
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            yield from page.get("Contents", [])

    def _created_since(self, after: int, wait: float = 0.0) -> dict[str, Any] | None:
        """The server's object-created log after entry ``after``; None if it keeps none."""
        import urllib.error
        import urllib.request

        url = f"{self.s3.meta.endpoint_url.rstrip('/')}{S3_EVENTS_PATH}?after={after}&wait={wait:g}"
        try:
            with urllib.request.urlopen(url, timeout=wait + 10) as answer:  # noqa: S310 (the local S3 server)
                found = json.loads(answer.read())
        except urllib.error.HTTPError:
            return None  # a server without the log (moto's own) answers with an error
        return found if isinstance(found, dict) and "next" in found else None

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def event(self, obj: dict[str, Any], reason: str = "PutObject") -> dict[str, Any]:
        return {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Object Created", "source": "aws.s3",
            "account": LOCAL_ACCOUNT_ID, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": "us-east-1", "resources": [f"arn:aws:s3:::{self.bucket}"],
            "detail": {
                "version": "0", "bucket": {"name": self.bucket},
                "object": {"key": obj["Key"], "size": obj["Size"], "etag": obj["ETag"].strip('"'),
                           "sequencer": f"{int(time.time() * 1e6):018X}"},
                "request-id": uuid.uuid4().hex[:16].upper(), "requester": LOCAL_ACCOUNT_ID,
                "source-ip-address": "127.0.0.1", "reason": reason,
            },
        }

    def scan_once(self) -> int:
        """Invoke for every new object or ETag under the prefix, ``workers`` at a time, and wait
        for those invocations; returns how many there were."""
        due: list[tuple[str, str, dict[str, Any]]] = []
        for obj in self._listed():
            key, etag = obj["Key"], obj["ETag"]
            if self.seen.get(key) == etag:
                continue
            event = self.event(obj)
            if not event_matches(self.pattern, event):
                self.seen[key] = etag
                continue
            due.append((key, etag, event))
        if not due:
            return 0
        for (key, etag, _), handled in zip(due, self._workers().map(self._invoke, due), strict=True):
            if handled:
                self.seen[key] = etag
        return len(due)

    def _invoke(self, item: tuple[str, str, dict[str, Any]]) -> bool:
        """One invocation; True when the object is done with (handled, or sent to the DLQ)."""
        key, etag, event = item
        with self._count_lock:
            self.invocations += 1
        try:
            load_handler(self.fn)(event, LambdaContext(self.fn.logical_id, timeout_seconds=60))
            return True
        except Exception as exc:
            with self._count_lock:
                self.errors += 1
                tries = self.attempts.get((key, etag), 0) + 1
                self.attempts[(key, etag)] = tries
            if tries <= self.RETRIES:
                return False
            _log(f"{self.fn.logical_id} failed on {key}: {exc!r}")
            if self.dead_letter is not None:
                self.dead_letter(event)
            return True

    def _run(self) -> None:
        if self._cursor is None:
            self._list_forever()
        else:
            self._follow_log()

    def _list_forever(self) -> None:
        backoff = Backoff(self.interval, self.IDLE_MOST)
        while not self.stopping.wait(backoff.idle()):
            try:
                if self.scan_once():
                    backoff.busy()
            except Exception as exc:  # moto busy or restarting: log, wait, go on
                if self.stopping.is_set():
                    return
                _log(f"inbox driver for {self.fn.logical_id} failed: {exc!r}")

    def _follow_log(self) -> None:
        """Each object the log says was created is delivered as soon as the log says so, without
        waiting for the deliveries before it."""
        while not self.stopping.is_set():
            try:
                log = self._created_since(self._cursor or 0, wait=1.0)
                if log is None:  # the server no longer keeps one
                    self._cursor = None
                    self._list_forever()
                    return
                listed: set[str] = set()
                if not log["complete"]:
                    _log(f"inbox driver for {self.fn.logical_id} fell behind S3's log: listing the bucket")
                    # Delivered as the log's entries are, so a failed invocation is retried here
                    # too (no later listing would find it again).
                    listed = {obj["Key"] for obj in self._listed() if self.seen.get(obj["Key"]) != obj["ETag"]}
                    for key in listed:
                        self._workers().submit(self._deliver, key, "PutObject")
                self._cursor = int(log["next"])
                for created in log["events"]:
                    key = created["key"]
                    if created["bucket"] == self.bucket and key.startswith(self.prefix) and key not in listed:
                        self._workers().submit(self._deliver, key, created["reason"])
            except Exception as exc:  # moto busy or restarting: log, wait, go on
                if self.stopping.is_set():
                    return
                _log(f"inbox driver for {self.fn.logical_id} failed: {exc!r}")
                self.stopping.wait(self.interval)

    def _deliver(self, key: str, reason: str) -> None:
        """Invoke for one created object (retried as an asynchronous invocation is)."""
        from botocore.exceptions import ClientError

        while True:  # S3 sends the event once the object exists: asked again until S3 answers
            try:
                head = self.s3.head_object(Bucket=self.bucket, Key=key)
                break
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return  # deleted again before it was looked at: nothing to hand on
                _log(f"inbox driver for {self.fn.logical_id} could not read {key}: {exc!r}")
            except Exception as exc:  # moto busy or restarting
                _log(f"inbox driver for {self.fn.logical_id} could not read {key}: {exc!r}")
            if self.stopping.wait(self.interval):
                return
        etag = head["ETag"]
        if self.seen.get(key) == etag:
            return  # already delivered (an overwrite with the same bytes, or a listing got to it first)
        event = self.event({"Key": key, "Size": head["ContentLength"], "ETag": etag}, reason)
        if not event_matches(self.pattern, event):
            self.seen[key] = etag
            return
        while not self._invoke((key, etag, event)):
            if self.stopping.wait(self.interval):
                return
        self.seen[key] = etag

    def _workers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"s3-{self.fn.logical_id}")
        return self._pool
