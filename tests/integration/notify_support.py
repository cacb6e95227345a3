"""Helpers for the S3 inbox and notification tests (moto in-process, from the `aws` fixture).

- ``enable_integrations`` gives the process the environment the inbox, notifier and notify
  functions have when deployed (their own ``Environment`` from template.yaml);
- ``StreamReader`` reads the jobs table's stream as the event source mapping would hand it
  to the notifier: Lambda's record shape, only records matching the template's filters;
- ``bus_target`` routes the job event bus to an SQS queue with a rule, as a client would;
- ``Receiver`` is a notify_url receiver on loopback that records every request.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config

from reelhook_local.aws_resources import StackResources, load_template, template_env
from reelhook_local.front import event_matches, function_events
from tests.conftest import Context, reset_caches

FUNCTIONS = ("InboxFunction", "NotifierFunction", "NotifyFunction")


def enable_integrations(monkeypatch: pytest.MonkeyPatch, resources: StackResources) -> None:
    from reelhook.adapters import notify_secret

    template = load_template()
    for fid in FUNCTIONS:
        own = template["Resources"][fid]["Properties"].get("Environment", {}).get("Variables", {})
        # The tests' CALLBACK_BASE_URL (set by the aws fixture) stands for the HttpApi URL.
        env = template_env(resources, function=fid, parameters={"CallbackBaseUrl": "http://127.0.0.1:9"})
        for name in own:
            if name != "CALLBACK_BASE_URL":
                monkeypatch.setenv(name, env[name])
    reset_caches()
    notify_secret.clear_cache()


def streams_client() -> Any:
    # botocore would route ARN-bearing stream calls to an account endpoint moto does not serve.
    return boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))


class StreamReader:
    """The table's stream from where the last call stopped, as Lambda delivers it to the notifier."""

    def __init__(self, resources: StackResources) -> None:
        table = boto3.client("dynamodb").describe_table(TableName=resources.table_name)["Table"]
        self.arn = table["LatestStreamArn"]
        self.streams = streams_client()
        [(_fid, props)] = function_events(load_template(), "DynamoDB")
        self.filters = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
        shard = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.iterator = self.streams.get_shard_iterator(StreamArn=self.arn, ShardId=shard,
                                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]

    def read(self, *, filtered: bool = True) -> list[dict[str, Any]]:
        answer = self.streams.get_records(ShardIterator=self.iterator)
        self.iterator = answer["NextShardIterator"]
        records = []
        for record in answer["Records"]:
            shaped = json.loads(json.dumps(record, default=lambda v: v.timestamp()))
            shaped["eventSourceARN"] = self.arn
            if not filtered or any(event_matches(f, shaped) for f in self.filters):
                records.append(shaped)
        return records

    def event(self) -> dict[str, Any]:
        return {"Records": self.read()}


def run_notifier(handlers: dict[str, Any], reader: StreamReader) -> dict[str, Any]:
    return handlers["notifier"](reader.event(), Context())


def bus_target(resources: StackResources, name: str = "job-events") -> str:
    """An SQS queue that a rule on the job bus feeds with reelhook's events; its URL."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"{name}-rule", EventBusName=resources.event_bus_name,
                    EventPattern=json.dumps({"source": ["reelhook"]}))
    events.put_targets(Rule=f"{name}-rule", EventBusName=resources.event_bus_name,
                       Targets=[{"Id": "queue", "Arn": arn}])
    return url


def bus_events(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def notify_messages(resources: StackResources) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    answer = sqs.receive_message(QueueUrl=resources.notify_queue_url, MaxNumberOfMessages=10,
                                 AttributeNames=["All"])
    return answer.get("Messages", [])


def delayed_notify_messages(resources: StackResources) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=resources.notify_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def sqs_record(body: dict[str, Any], receives: int = 1) -> dict[str, Any]:
    return {"messageId": "n1", "receiptHandle": "r", "body": json.dumps(body),
            "attributes": {"ApproximateReceiveCount": str(receives)}, "eventSource": "aws:sqs"}


def whsec(resources: StackResources) -> str:
    from reelhook.adapters.notify_secret import whsec as encode

    raw = boto3.client("secretsmanager").get_secret_value(SecretId=resources.notify_secret_id)["SecretString"]
    return encode(json.loads(raw)["signing_key"].encode())


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A notify_url on loopback. ``statuses`` (FIFO) says what to answer; 200 when empty."""

    requests: list[Received] = field(default_factory=list)
    statuses: queue.Queue[int] = field(default_factory=queue.Queue)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/reelhook"

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                try:
                    status = receiver.statuses.get_nowait()
                except queue.Empty:
                    status = 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

