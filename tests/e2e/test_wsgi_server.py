"""The buffered HTTP server in front of moto's DynamoDB: what the SDKs send, read as werkzeug would."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from reelhook_local.wsgi_server import KeepAliveWSGIServer


def _echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers with what the server handed the app."""
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("the app's own bug")
    body = environ["wsgi.input"].read()
    seen = {key: value for key, value in environ.items() if isinstance(value, str)}
    answer = json.dumps({"environ": seen, "body": body.decode("latin-1")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]


@pytest.fixture
def server() -> Iterator[KeepAliveWSGIServer]:
    logged: list[str] = []
    running = KeepAliveWSGIServer("127.0.0.1", 0, _echo, log=logged.append)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    running.logged = logged  # type: ignore[attr-defined]
    yield running
    running.shutdown()
    running.server_close()
    thread.join(timeout=5)


def _raw(server: KeepAliveWSGIServer, data: bytes) -> bytes:
    with socket.create_connection(server.server_address[:2], timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_one_connection_carries_many_requests_and_each_gets_its_own_body(server: KeepAliveWSGIServer) -> None:
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    for index in range(3):
        connection.request("POST", f"/a%20b?x={index}", body=f'{{"n": {index}}}',
                           headers={"X-Amz-Target": "DynamoDB_20120810.GetItem", "Content-Type": "application/json"})
        answer = connection.getresponse()
        assert answer.status == 200 and answer.getheader("Date")
        echoed = json.loads(answer.read())
        environ = echoed["environ"]
        assert echoed["body"] == f'{{"n": {index}}}'
        assert environ["PATH_INFO"] == "/a b" and environ["RAW_URI"] == f"/a%20b?x={index}"
        assert environ["QUERY_STRING"] == f"x={index}" and environ["REQUEST_METHOD"] == "POST"
        assert environ["HTTP_X_AMZ_TARGET"] == "DynamoDB_20120810.GetItem"
        assert environ["CONTENT_TYPE"] == "application/json" and environ["CONTENT_LENGTH"] == str(len(echoed["body"]))
    connection.close()


def test_a_chunked_body_after_100_continue_reaches_the_app_whole(server: KeepAliveWSGIServer) -> None:
    answer = _raw(server, b"PUT /object HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n"
                          b"Connection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    echoed = json.loads(answer.split(b"\r\n\r\n", 2)[2])
    assert echoed["body"] == "hello world" and "HTTP_TRANSFER_ENCODING" not in echoed["environ"]


def test_an_underscored_header_never_stands_in_for_a_dashed_one(server: KeepAliveWSGIServer) -> None:
    answer = _raw(server, b"GET / HTTP/1.1\r\nX_Amz_Target: forged\r\nX-Amz-Target: real\r\nConnection: close\r\n\r\n")
    environ = json.loads(answer.split(b"\r\n\r\n", 1)[1])["environ"]
    assert environ["HTTP_X_AMZ_TARGET"] == "real"


def test_head_answers_headers_only_and_close_is_honoured(server: KeepAliveWSGIServer) -> None:
    answer = _raw(server, b"HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: " in head and b"Connection: close" in head
    assert body == b""  # and the server closed the connection, or _raw would not have returned


@pytest.mark.parametrize("request_bytes", [
    b"NOT HTTP\r\n\r\n",
    b"GET / HTTP/2.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
])
def test_what_it_cannot_read_is_a_400_and_the_connection_closes(server: KeepAliveWSGIServer,
                                                                request_bytes: bytes) -> None:
    answer = _raw(server, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close" in answer
    assert server.logged  # type: ignore[attr-defined]


def test_a_burst_of_new_connections_is_served_without_a_reset(server: KeepAliveWSGIServer) -> None:
    assert server.request_queue_size >= 128  # socketserver's own 5 drops handshakes under a burst
    connections = [socket.create_connection(server.server_address[:2], timeout=10) for _ in range(200)]
    try:
        for sock in connections:  # every connection opened before any is served
            sock.sendall(b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n")
        for sock in connections:
            assert sock.recv(64).startswith(b"HTTP/1.1 200 OK")
    finally:
        for sock in connections:
            sock.close()


def test_an_app_error_is_a_500_and_the_connection_serves_on(server: KeepAliveWSGIServer) -> None:
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    connection.request("GET", "/boom")
    failed = connection.getresponse()
    assert failed.status == 500 and failed.read() == b"internal error"
    connection.request("GET", "/fine")
    assert connection.getresponse().status == 200
    connection.close()
    assert any("the app's own bug" in line for line in server.logged)  # type: ignore[attr-defined]


def test_botocore_talks_to_moto_through_it_and_s3_metadata_keeps_its_underscores() -> None:
    import boto3

    from reelhook_local.stack import AtomicMotoServer

    moto = AtomicMotoServer()
    moto.start()
    try:
        ddb = boto3.client("dynamodb", endpoint_url="http://{}:{}".format(*moto.address), region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local")
        ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        ddb.put_item(TableName="t", Item={"pk": {"S": "a"}, "n": {"N": "1"}})
        with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
            ddb.put_item(TableName="t", Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)")
        assert ddb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]["n"] == {"N": "1"}
        s3 = boto3.client("s3", endpoint_url="http://{}:{}".format(*moto.address), region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
        s3.create_bucket(Bucket="metadata-bucket")
        s3.put_object(Bucket="metadata-bucket", Key="k", Body=b"x" * 100_000, Metadata={"job_id": "j1", "kind": "video"})
        head = s3.head_object(Bucket="metadata-bucket", Key="k")
        assert head["Metadata"] == {"job_id": "j1", "kind": "video"} and head["ContentLength"] == 100_000
        assert s3.get_object(Bucket="metadata-bucket", Key="k", Range="bytes=0-9")["Body"].read() == b"x" * 10
    finally:
        moto.stop()
