"""The local stack under load: the front's listen backlog, moto's per-service locks, and drivers
that keep up (and recover) instead of being the bottleneck."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from reelhook_local.front import LocalFront
from reelhook_local.template import functions

CONNECTIONS = 500


def _connect_all(address: tuple[str, int], count: int, wait: float) -> tuple[list[socket.socket], int]:
    """Start ``count`` TCP connections at once; how many the kernel completed within ``wait``."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(address)
        sockets.append(sock)
    pending = set(sockets)
    established = 0
    end = time.monotonic() + wait
    while pending and time.monotonic() < end:
        _, writable, _ = select.select([], list(pending)[:900], [], max(0.0, end - time.monotonic()))
        for sock in writable:
            pending.discard(sock)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                established += 1
    return sockets, established


@pytest.fixture
def enough_file_descriptors() -> None:
    """Both ends of every connection live in this process: make sure it may open them."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * CONNECTIONS + 512
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.fail(f"this machine allows {hard} open files; the test needs {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def test_front_accepts_500_simultaneous_connections_before_it_reads_any(enough_file_descriptors) -> None:
    # Not started yet: nothing accepts, so every connection must wait in the listen backlog
    # (the kernel completes the handshake only for as many as the backlog holds).
    front = LocalFront(functions())
    sockets, established = _connect_all(front.server.server_address[:2], CONNECTIONS, wait=2.0)
    try:
        assert established == CONNECTIONS
        front.start()

        def ask(sock: socket.socket) -> bytes:
            sock.setblocking(True)
            sock.settimeout(30)
            sock.sendall(b"GET /no-such-route HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data

        with ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(ask, sockets))
        assert sum(a.startswith(b"HTTP/1.1 404") for a in answers) == CONNECTIONS
    finally:
        for sock in sockets:
            sock.close()
        front.stop()


# -- moto's server: locks per service, only where atomicity needs them ------------------------------


def _environ(target: str = "", service: str = "") -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": "POST"}
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    if service:
        environ["HTTP_AUTHORIZATION"] = (f"AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/{service}/aws4_request, "
                                         "SignedHeaders=host, Signature=00")
    return environ


@pytest.mark.parametrize(("target", "service", "lock"), [
    ("DynamoDB_20120810.UpdateItem", "dynamodb", "dynamodb"),
    ("DynamoDB_20120810.TransactWriteItems", "dynamodb", "dynamodb"),
    ("DynamoDB_20120810.Query", "dynamodb", "dynamodb"),  # iterates dicts a concurrent write resizes
    ("AmazonSQS.ReceiveMessage", "sqs", "sqs"),
    ("AmazonSQS.DeleteMessageBatch", "sqs", "sqs"),
    ("", "sqs", "sqs"),  # SQS's query protocol
    ("DynamoDBStreams_20120810.GetRecords", "dynamodb", "dynamodb"),  # a cancelled transaction rewrites it
    ("secretsmanager.GetSecretValue", "secretsmanager", None),
    ("AWSEvents.PutEvents", "events", None),
    ("", "s3", None),
])
def test_moto_requests_take_their_service_lock_or_none(target: str, service: str, lock: str | None) -> None:
    from reelhook_local.stack import moto_lock_key

    assert moto_lock_key(_environ(target, service)) == lock


@pytest.fixture
def moto_server() -> Any:
    from reelhook_local.stack import AtomicMotoServer

    server = AtomicMotoServer()
    server.start()
    yield server
    server.stop()


def _client(service: str, server: Any) -> Any:
    import boto3
    from botocore.config import Config

    host, port = server.address
    return boto3.session.Session().client(service, endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                                          aws_access_key_id="local", aws_secret_access_key="local",
                                          config=Config(max_pool_connections=50, retries={"max_attempts": 1}))


def test_s3_requests_do_not_wait_for_a_busy_dynamodb(moto_server: Any) -> None:
    s3 = _client("s3", moto_server)
    s3.create_bucket(Bucket="free-running")
    with moto_server.locks["dynamodb"], moto_server.locks["sqs"]:  # both held: S3 must still answer
        s3.put_object(Bucket="free-running", Key="k", Body=b"x")
        assert s3.get_object(Bucket="free-running", Key="k")["Body"].read() == b"x"


def test_conditional_updates_from_many_threads_stay_atomic_through_the_server(moto_server: Any) -> None:
    ddb = _client("dynamodb", moto_server)
    table = f"counter-{threading.get_ident()}"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    ddb.put_item(TableName=table, Item={"pk": {"S": "slots"}, "used": {"N": "0"}})
    cap = 10

    def take(_: int) -> bool:
        try:
            ddb.update_item(TableName=table, Key={"pk": {"S": "slots"}}, UpdateExpression="SET used = used + :one",
                            ConditionExpression="used < :cap",
                            ExpressionAttributeValues={":one": {"N": "1"}, ":cap": {"N": str(cap)}})
            return True
        except ddb.exceptions.ConditionalCheckFailedException:
            return False

    with ThreadPoolExecutor(32) as pool:
        taken = sum(pool.map(take, range(200)))
    used = ddb.get_item(TableName=table, Key={"pk": {"S": "slots"}}, ConsistentRead=True)["Item"]["used"]["N"]
    assert (taken, used) == (cap, str(cap))


def test_many_receivers_never_get_one_message_twice_within_its_visibility(moto_server: Any) -> None:
    sqs = _client("sqs", moto_server)
    url = sqs.create_queue(QueueName=f"fanout-{threading.get_ident()}",
                           Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    sent = 300
    for start in range(0, sent, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(start + i)}
                                                      for i in range(10)])
    received: list[str] = []
    lock = threading.Lock()

    def receive(_: int) -> None:
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            if not messages:
                return
            with lock:
                received.extend(m["Body"] for m in messages)

    with ThreadPoolExecutor(24) as pool:
        list(pool.map(receive, range(24)))
    assert len(received) == sent
    assert len(set(received)) == sent


def test_a_long_poll_does_not_hold_up_other_sqs_requests(moto_server: Any) -> None:
    sqs = _client("sqs", moto_server)
    url = sqs.create_queue(QueueName=f"longpoll-{threading.get_ident()}")["QueueUrl"]
    answers: list[Any] = []
    waiting = threading.Thread(target=lambda: answers.append(
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20, MaxNumberOfMessages=1)))
    waiting.start()
    # While that poll waits, sends go through, and the waiting poll gets the message.
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    waiting.join(timeout=30)
    assert [m["Body"] for m in answers[0].get("Messages", [])] == ["hello"]


# -- drivers: concurrency, recovery --------------------------------------------------------------


def _fake_function(logical_id: str, handler: Any) -> Any:
    from pathlib import Path

    from reelhook_local import front
    from reelhook_local.template import FunctionDef

    fn = FunctionDef(logical_id=logical_id, code_dir=Path("."), handler="app.handler")
    with front._load_lock:
        front._loaded[logical_id] = handler
    return fn


def test_queue_consumers_follow_the_mappings_maximum_concurrency() -> None:
    from reelhook_local.front import QueueDriver

    fns = functions()
    assert QueueDriver.concurrency(fns["PollWorkerFunction"], "PollQueue") == 20  # PollMaximumConcurrency
    assert QueueDriver.concurrency(fns["SubmitFunction"], "SubmitQueue") == 20  # SubmitMaximumConcurrency
    assert QueueDriver.concurrency(fns["NotifyFunction"], "NotifyQueue") == QueueDriver.DEFAULT_CONCURRENCY
    assert QueueDriver.concurrency(fns["TransferFunction"], "TransferQueue", 4) == 4


class FakeSqs:
    """Every receive gets one new message; deletes are recorded."""

    def __init__(self) -> None:
        self.sent = 0
        self.waits: list[int] = []
        self.deleted: list[str] = []
        self.lock = threading.Lock()

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        with self.lock:
            self.sent += 1
            self.waits.append(kwargs["WaitTimeSeconds"])
            n = self.sent
        return {"Messages": [{"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": "{}"}]}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        with self.lock:
            self.deleted += [e["ReceiptHandle"] for e in Entries]
        return {"Successful": Entries}


def test_queue_driver_runs_several_batches_at_once() -> None:
    from reelhook_local.front import QueueDriver

    together = threading.Barrier(3, timeout=20)  # passes only when three batches are in flight at once

    def slow_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        together.wait()
        return {"batchItemFailures": []}

    sqs = FakeSqs()
    driver = QueueDriver(_fake_function("FakeSlowQueueFunction", slow_handler), "url", "arn", 10, sqs, workers=3)
    driver.start()
    try:
        for _ in range(400):
            if len(sqs.deleted) >= 6:
                break
            driver.stopping.wait(0.05)
    finally:
        together.abort()
        driver.stop()
    assert driver.most_in_flight >= 3
    assert len(sqs.deleted) >= 6
    assert set(sqs.waits) == {driver.wait_seconds} and driver.wait_seconds > 0  # long polls


class HeldSqs(FakeSqs):
    """Every receive waits until released: a long poll that outlasts stop()."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()
        self.release = threading.Event()

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.waiting.set()
        self.release.wait(30)
        return super().receive_message(**kwargs)


def test_queue_driver_stops_without_waiting_out_long_polls_and_never_invokes_after_stop() -> None:
    from reelhook_local.front import QueueDriver

    invoked: list[Any] = []
    sqs = HeldSqs()
    driver = QueueDriver(_fake_function("FakeHeldQueueFunction", lambda event, context: invoked.append(event)),
                         "url", "arn", 10, sqs, workers=2)
    assert driver.wait_seconds == 20  # as the event source mapping long-polls
    driver.start()
    assert sqs.waiting.wait(10)
    driver.stop()
    assert any(thread.is_alive() for thread in driver.threads)  # stop() did not wait for the poll
    sqs.release.set()  # the poll ends with a message after stop
    for thread in driver.threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in driver.threads)
    assert invoked == [] and sqs.deleted == []  # left to come back after the visibility timeout


class FakeStreams:
    """One open shard; GetRecords answers from a script (an answer, or an exception to raise)."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.iterator_requests: list[dict[str, Any]] = []
        self.describes = 0

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        self.describes += 1
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1",
                                                  "SequenceNumberRange": {"StartingSequenceNumber": "100"}}]}}

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        self.iterator_requests.append(kwargs)
        return {"ShardIterator": f"it-{len(self.iterator_requests)}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        step = self.script.pop(0) if self.script else {"Records": [], "NextShardIterator": "it-idle"}
        if isinstance(step, Exception):
            raise step
        return step


def _stream_record(sequence: int) -> dict[str, Any]:
    return {"eventID": str(sequence), "eventName": "MODIFY",
            "dynamodb": {"SequenceNumber": str(sequence), "Keys": {"pk": {"S": f"job#{sequence}"}}}}


def test_stream_driver_reacquires_a_lost_iterator_and_survives_errors() -> None:
    from reelhook_local.front import StreamDriver

    seen: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.extend(r["dynamodb"]["SequenceNumber"] for r in event["Records"])
        return {"batchItemFailures": []}

    streams = FakeStreams([
        {"Records": [_stream_record(101)]},  # no NextShardIterator, yet the shard is open
        RuntimeError("ExpiredIteratorException"),  # GetRecords fails
        {"Records": [_stream_record(102)], "NextShardIterator": "it-next"},
    ])
    driver = StreamDriver(_fake_function("FakeStreamFunction", handler), "arn:stream", streams,
                          starting_position="LATEST")
    driver.start = lambda: None  # type: ignore[method-assign]  # driven by hand below
    for _ in range(4):
        driver.poll_once()
    assert seen == ["101", "102"]
    after = [r for r in streams.iterator_requests if r["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"]
    assert [r["SequenceNumber"] for r in after] == ["101", "101"]  # once per lost iterator
    assert driver.errors == 1 and "shard-1" not in driver.finished


def test_stream_driver_thread_keeps_going_after_failures() -> None:
    from reelhook_local.front import StreamDriver

    delivered = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        delivered.set()
        return {"batchItemFailures": []}

    class Flaky(FakeStreams):
        failures = 3

        def describe_stream(self, StreamArn: str) -> dict[str, Any]:
            if self.describes and self.failures:  # after start(): DescribeStream fails a few times
                self.failures -= 1
                raise ConnectionError("moto restarting")
            return super().describe_stream(StreamArn)

    streams = Flaky([RuntimeError("boom"), {"Records": [], "NextShardIterator": None},
                     {"Records": [_stream_record(7)], "NextShardIterator": "it-next"}])
    driver = StreamDriver(_fake_function("FakeFlakyStreamFunction", handler), "arn:stream", streams,
                          interval=0.01)
    driver.SHARDS_EVERY = 0.0
    driver.start()
    try:
        assert delivered.wait(30)
        assert driver.thread.is_alive()
    finally:
        driver.stop()
    assert driver.errors >= 2


def test_moto_runs_in_a_process_of_its_own_and_ends_with_the_stack():
    import boto3

    from reelhook_local.moto_process import MotoProcess

    moto = MotoProcess()
    moto.start()
    host, port = moto.address
    child = moto._child
    ddb = boto3.client("dynamodb", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST")
    assert ddb.list_tables()["TableNames"] == ["t"]
    assert child is not None and child.pid != os.getpid()
    moto.stop()
    assert child.returncode == 0  # it shut down when told, not killed
    with pytest.raises(OSError), socket.create_connection((host, port), timeout=1):
        pass


def test_moto_service_locks_serve_waiters_in_the_order_they_asked() -> None:
    from reelhook_local.stack import FairLock

    lock = FairLock()
    order: list[int] = []
    lock.acquire()
    threads = []
    for i in range(8):
        thread = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i), lock.release()))
        thread.start()
        threads.append(thread)
        while len(lock._waiters) < i + 1:  # each has asked before the next starts
            time.sleep(0.001)
    lock.release()
    for thread in threads:
        thread.join(10)
    assert order == list(range(8))
    assert lock.acquire() is None and not lock._waiters  # free again once everyone is through
    lock.release()


def test_dynamodb_has_a_process_of_its_own_and_the_one_endpoint_still_serves_it():
    """The stack's functions reach DynamoDB directly (botocore's service endpoint variables);
    a person with only the one AWS endpoint reaches the same tables through it."""
    import boto3
    import httpx

    from reelhook_local.stack import LocalStack, StackOptions

    with LocalStack(StackOptions()) as stack:
        direct = stack.endpoint_for("dynamodb")
        assert direct != stack.aws_endpoint
        assert os.environ["AWS_ENDPOINT_URL_DYNAMODB"] == direct
        assert os.environ["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] == direct
        assert stack.endpoint_for("sqs") == stack.aws_endpoint
        # What the handlers create, from the environment alone.
        assert boto3.client("dynamodbstreams", region_name="us-east-1").meta.endpoint_url == direct
        credentials = {"region_name": "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}
        via_one = boto3.client("dynamodb", endpoint_url=stack.aws_endpoint, **credentials)
        table = stack.resources.table_name
        via_one.put_item(TableName=table, Item={"pk": {"S": "probe#1"}, "n": {"N": "1"}})
        item = stack.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": "probe#1"}}, ConsistentRead=True)
        assert item["Item"]["n"] == {"N": "1"}
        # A refused write is handed back as DynamoDB gave it.
        with pytest.raises(via_one.exceptions.ConditionalCheckFailedException):
            via_one.put_item(TableName=table, Item={"pk": {"S": "probe#1"}}, ConditionExpression="attribute_not_exists(pk)")
        stats = httpx.get(stack.aws_endpoint + "/_reelhook/moto-stats", timeout=30).json()
        assert len({p["pid"] for p in stats["processes"]}) == 2
        # Counted once, where it was answered, not again where it was handed on.
        assert stats["operations"]["PutItem"]["requests"] == 2


def test_raw_stream_reads_give_the_records_botocore_would_without_parsing_them() -> None:
    import boto3

    from reelhook_local.front import RawStreamRecords, StreamDriver
    from reelhook_local.moto_process import MotoProcess

    moto = MotoProcess()
    moto.start()
    try:
        host, port = moto.address
        keys = {"endpoint_url": f"http://{host}:{port}", "region_name": "us-east-1",
                "aws_access_key_id": "local", "aws_secret_access_key": "local"}
        ddb, streams = boto3.client("dynamodb", **keys), boto3.client("dynamodbstreams", **keys)
        arn = ddb.create_table(
            TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]["LatestStreamArn"]
        for i in range(3):
            ddb.put_item(TableName="t", Item={"pk": {"S": f"job#{i}"}, "n": {"N": str(i)}, "l": {"L": [{"S": "x"}]}})
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]

        def iterator() -> str:
            return streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]

        parsed: list[str] = []
        streams.meta.events.register("before-parse.dynamodbstreams.GetRecords", lambda **_: parsed.append("x"))
        through_botocore = streams.get_records(ShardIterator=iterator(), Limit=100)
        raw = RawStreamRecords(streams).get_records(ShardIterator=iterator(), Limit=100)
        assert len(parsed) == 1  # only the plain client's call was parsed by botocore
        assert raw["NextShardIterator"]
        driver = StreamDriver(_fake_function("FakeRawStreamFunction", lambda e, c: None), arn, streams)
        expected = [driver._record(r) for r in through_botocore["Records"]]
        assert [driver._record(r) for r in raw["Records"]] == expected
        assert len(expected) == 3 and all(isinstance(r["dynamodb"]["ApproximateCreationDateTime"], float | int)
                                          for r in expected)
    finally:
        moto.stop()


def test_the_stack_keeps_a_connection_for_every_thread_its_functions_run(caplog) -> None:
    """Every function runs in the stack's one process: 64 handler threads calling DynamoDB at once
    must each keep their connection, not have urllib3 open and close one per request."""
    import logging

    from reelhook.adapters import aws
    from reelhook_local.stack import LocalStack, StackOptions

    threads = 64
    with LocalStack(StackOptions()) as stack:
        table = stack.resources.table_name
        ready = threading.Barrier(threads)

        def describe(_: int) -> None:
            ready.wait()
            for _ in range(5):
                aws.client("dynamodb").describe_table(TableName=table)

        with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"), ThreadPoolExecutor(threads) as pool:
            list(pool.map(describe, range(threads)))
    discarded = [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
    assert discarded == []
    # Once the stack stops, clients are sized for one Lambda environment again.
    assert aws.set_pool_connections(aws.POOL_CONNECTIONS) == aws.POOL_CONNECTIONS
