"""The transfer's download over real sockets: bytes stored whole, framing enforced, headers as sent."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from reelhook.adapters.s3_stream import Truncated
from reelhook.services import transfer

BODY = os.urandom(3 * 1024 * 1024 + 17)
JOB = "job_" + "c" * 32


class _Source(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        kind = self.path.strip("/").split(".")[0]
        if kind == "error":
            self.send_response(503)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", "video/mp4")
        if kind.startswith("chunked"):
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            half = BODY[: len(BODY) // 2]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half))
            if kind == "chunked":
                rest = BODY[len(half):]
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
            self.wfile.flush()
            self.close_connection = True  # "chunked-cut": the terminating chunk never comes
            return
        self.send_header("content-length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY[: len(BODY) // 2] if kind == "cut" else BODY)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def source(monkeypatch) -> Iterator[str]:
    """``cdn.test:PORT``, a name only the SSRF check's resolver knows (it answers 127.0.0.1)."""
    _Source.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real_check = transfer.check_url

    def check(url, **kwargs):
        return real_check(url, resolver=lambda host, port: ["127.0.0.1"] if host == "cdn.test" else [], **kwargs)

    monkeypatch.setattr(transfer, "check_url", check)
    yield f"cdn.test:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def stored_keys(aws) -> list[str]:
    return [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=aws.bucket_name).get("Contents", [])]


def pending(aws) -> list[dict]:
    return boto3.client("s3").list_multipart_uploads(Bucket=aws.bucket_name).get("Uploads", [])


@pytest.mark.parametrize("kind", ["whole", "chunked"], ids=["content-length", "chunked-length-unknown"])
def test_a_link_is_stored_whole_with_its_sha256(aws, source, kind):
    stored = transfer.copy_output(f"http://{source}/{kind}.mp4", provider="freepik", job_id=JOB, index=0)
    assert (stored.bytes, stored.sha256) == (len(BODY), hashlib.sha256(BODY).hexdigest())
    got = boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=stored.key)
    assert got["Body"].read() == BODY and got["ContentType"] == "video/mp4"
    assert pending(aws) == []


def test_the_request_names_the_links_host_and_asks_for_the_bytes_as_served(aws, source):
    transfer.copy_output(f"http://{source}/whole.mp4", provider="freepik", job_id=JOB, index=0)
    [headers] = _Source.seen
    # Connected to the checked address (127.0.0.1: no other resolver knows cdn.test), while
    # Host keeps the URL's name.
    assert headers["host"] == source
    assert headers["accept-encoding"] == "identity"
    assert headers["user-agent"] == transfer.USER_AGENT


@pytest.mark.parametrize("kind", ["cut", "chunked-cut"], ids=["short-of-content-length", "chunked-never-ended"])
def test_a_body_cut_short_is_truncated_and_nothing_is_stored(aws, source, kind):
    with pytest.raises(Truncated):
        transfer.copy_output(f"http://{source}/{kind}.mp4", provider="freepik", job_id=JOB, index=0)
    assert stored_keys(aws) == [] and pending(aws) == []


def test_a_server_error_is_retried_not_failed(aws, source):
    with pytest.raises(transfer.DownloadFailed):
        transfer.copy_output(f"http://{source}/error.mp4", provider="freepik", job_id=JOB, index=0)
    assert stored_keys(aws) == []


def test_the_checked_address_is_the_one_connected_to(aws, source, monkeypatch):
    # The connection goes to the address the check resolved; nothing resolves the name again.
    connected: list[tuple[str, int]] = []
    real = transfer.socket.create_connection

    def spy(address, *args, **kwargs):
        connected.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(transfer.socket, "create_connection", spy)
    transfer.copy_output(f"http://{source}/whole.mp4", provider="freepik", job_id=JOB, index=0)
    assert [host for host, _ in connected] == ["127.0.0.1"]
