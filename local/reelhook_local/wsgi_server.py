"""A small HTTP/1.1 server for a WSGI app whose every request carries its whole body.

moto's own choice, werkzeug's development server, parses each request with ``http.server``
(its headers through the ``email`` package), writes the status and each header with
separate calls and spends about a millisecond of CPU per request before moto sees it: as
much as moto's whole ``GetItem``. The DynamoDB server answers every request of the local
stack's hottest path, one at a time, so that millisecond caps the stack's throughput; the
other server answers every queue message.

The local stack's moto servers use it. It keeps what the AWS SDKs use: keep-alive connections (one thread each),
``Content-Length`` and chunked request bodies, ``Expect: 100-continue``, ``HEAD``. It reads
a request with one buffered ``readline`` per line, builds the WSGI environ werkzeug would (the
raw request target in ``RAW_URI``, as moto expects), and writes the status, headers and body
with one ``sendall``. Anything it cannot read is answered 400 and the connection closed.
"""

from __future__ import annotations

import contextlib
import io
import socketserver
import sys
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote_to_bytes

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

MAX_LINE = 65536
MAX_HEADERS = 200


class BadRequest(Exception):
    """The bytes on the connection are not an HTTP/1.x request this server reads."""


class _Handler(socketserver.StreamRequestHandler):
    server: KeepAliveWSGIServer
    rbufsize = 65536
    disable_nagle_algorithm = True  # the 100-continue and the answer go out at once

    def handle(self) -> None:
        while True:
            try:
                keep_alive = self._one_request()
            except BadRequest as exc:
                self._send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                self.server.log(f"bad request from {self.client_address[0]}: {exc}")
                return
            except (ConnectionError, TimeoutError, OSError):
                return
            if not keep_alive:
                return

    def _send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):  # the client went away: nothing to tell it
            self.connection.sendall(data)

    def _one_request(self) -> bool:
        line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return False  # the client closed the connection
        if len(line) > MAX_LINE:
            raise BadRequest("request line too long")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest(f"not an HTTP/1.x request line: {line[:80]!r}")
        method, target, protocol = parts
        headers, raw = self._headers()
        environ = self._environ(method, target, protocol, headers)
        if self.server.environ_hook is not None:
            self.server.environ_hook(environ, raw)
        connection = headers.get("CONNECTION", "").lower()
        keep_alive = connection != "close" if protocol == "HTTP/1.1" else connection == "keep-alive"
        if headers.get("EXPECT", "").lower() == "100-continue":
            self._send(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ["wsgi.input"] = io.BytesIO(self._body(headers))
        self._send(self.server.respond(environ, head=method == "HEAD", keep_alive=keep_alive))
        return keep_alive

    def _headers(self) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """Header names upper-cased (repeated ones comma-joined), and the headers as sent."""
        headers: dict[str, str] = {}
        raw: list[tuple[str, str]] = []
        for _ in range(MAX_HEADERS):
            line = self.rfile.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                raise BadRequest("header line too long")
            if line in (b"\r\n", b"\n"):
                return headers, raw
            if not line:
                raise ConnectionError("connection closed in the headers")
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or not name or name != name.strip():
                raise BadRequest(f"malformed header line: {line[:80]!r}")
            key, value = name.upper(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
            raw.append((name, value))
        raise BadRequest("too many headers")

    def _body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("TRANSFER-ENCODING", "").lower():
            return self._chunked()
        length = headers.get("CONTENT-LENGTH", "0") or "0"
        if not length.isdigit():
            raise BadRequest(f"bad Content-Length: {length!r}")
        body = self.rfile.read(int(length))
        if len(body) != int(length):
            raise ConnectionError("connection closed in the body")
        return body

    def _chunked(self) -> bytes:
        chunks = []
        while True:
            size_line = self.rfile.readline(MAX_LINE + 1).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise BadRequest(f"bad chunk size: {size_line[:20]!r}") from None
            if size == 0:
                while self.rfile.readline(MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: none that the app reads
                return b"".join(chunks)
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise ConnectionError("connection closed in a chunk")
            chunks.append(chunk)
            self.rfile.readline(MAX_LINE + 1)  # the CRLF after the chunk

    def _environ(self, method: str, target: str, protocol: str, headers: dict[str, str]) -> dict[str, Any]:
        path, _, query = target.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            # WSGI's PATH_INFO is the decoded path as latin-1 text of its bytes.
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": target,
            "REQUEST_URI": target,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": protocol,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in headers.items():
            key = name.replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            elif "_" not in name:  # as werkzeug: X_Foo must not stand in for X-Foo
                environ["HTTP_" + key] = value
            else:
                environ.setdefault("HTTP_" + key, value)
        if "HTTP_TRANSFER_ENCODING" in environ:
            environ.pop("HTTP_TRANSFER_ENCODING")  # the body is already de-chunked
            environ["CONTENT_LENGTH"] = ""
        return environ


class KeepAliveWSGIServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Serve ``app`` on ``(host, port)``; the socketserver API (serve_forever, shutdown...)."""

    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a burst of new connections overflows it, and the
    # kernel drops their handshakes (retried 1 s, 3 s later) or resets them.
    request_queue_size = 1024
    block_on_close = False

    def __init__(self, host: str, port: int, app: WSGIApp, *, log: Callable[[str], None] | None = None,
                 environ_hook: Callable[[dict[str, Any], list[tuple[str, str]]], None] | None = None) -> None:
        self.app = app
        self.environ_hook = environ_hook  # sees each environ and the headers as sent
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self._date = (0, "")
        super().__init__((host, port), _Handler)

    def _http_date(self) -> str:
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, formatdate(second, usegmt=True))
        return self._date[1]

    def respond(self, environ: dict[str, Any], *, head: bool, keep_alive: bool) -> bytes:
        """The app's whole answer to one request, as the bytes to send."""
        status_headers: list[Any] = []
        written: list[bytes] = []  # WSGI's legacy write(): sent before the iterable's chunks

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            status_headers[:] = [status, headers]
            return written.append

        try:
            result = self.app(environ, start_response)
            try:
                chunks = list(result)  # an app may write() while its iterable is read
                body = b"".join(written + chunks)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            status, headers = status_headers
        except Exception as exc:  # the app's bug: answer 500, keep serving
            self.log(f"{environ.get('REQUEST_METHOD')} {environ.get('RAW_URI')} failed: {exc!r}")
            status, headers, body = "500 Internal Server Error", [("Content-Type", "text/plain")], b"internal error"
        names = {name.lower() for name, _ in headers}
        lines = [f"HTTP/1.1 {status}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if "content-length" not in names and not status.startswith(("1", "204", "304")):
            lines.append(f"Content-Length: {len(body)}")
        if "date" not in names:
            lines.append(f"Date: {self._http_date()}")
        if not keep_alive:
            lines.append("Connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head_bytes if head else head_bytes + body
