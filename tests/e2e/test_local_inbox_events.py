"""The local stand-in for S3 -> EventBridge: the S3 server logs the objects it created, and the
inbox driver delivers from that log instead of listing the bucket again and again."""

from __future__ import annotations

import time
from typing import Any

import pytest

from reelhook_local.front import S3InboxDriver
from reelhook_local.stack import LocalStack, ObjectCreatedLog, StackOptions, object_created

pytestmark = pytest.mark.e2e


def request(method: str, path: str, query: str = "", **headers: str) -> dict[str, Any]:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    environ |= {f"HTTP_{name.upper()}": value for name, value in headers.items()}
    return environ


@pytest.mark.parametrize(("environ", "expected"), [
    (request("PUT", "/bucket-a/inbox/a.json"), ("bucket-a", "inbox/a.json", "PutObject")),
    (request("PUT", "/bucket-a/inbox/b.json", x_amz_copy_source="/bucket-a/inbox/a.json"),
     ("bucket-a", "inbox/b.json", "CopyObject")),
    (request("POST", "/bucket-a/outputs/v.mp4", "uploadId=abc"), ("bucket-a", "outputs/v.mp4", "CompleteMultipartUpload")),
    # UTF-8 keys arrive as WSGI's latin-1 text of their bytes.
    (request("PUT", "/bucket-a/inbox/caf\u00c3\u00a9.json"), ("bucket-a", "inbox/caf\u00e9.json", "PutObject")),
    (request("PUT", "/bucket-a/outputs/v.mp4", "partNumber=1&uploadId=abc"), None),  # a part, not an object
    (request("POST", "/bucket-a/outputs/v.mp4", "uploads="), None),  # starts an upload
    (request("PUT", "/bucket-a/inbox/a.json", "tagging="), None),
    (request("POST", "/bucket-a", "delete="), None),
    (request("PUT", "/bucket-a"), None),  # CreateBucket
    (request("GET", "/bucket-a/inbox/a.json"), None),
    (request("POST", "/", x_amz_target="AmazonSQS.SendMessage"), None),
])
def test_only_requests_that_create_an_object_are_logged(environ: dict[str, Any], expected: Any) -> None:
    assert object_created(environ) == expected


def test_the_log_answers_what_came_after_and_says_when_it_dropped_entries() -> None:
    log = ObjectCreatedLog(keep=3)
    assert log.since(0) == {"next": 0, "events": [], "complete": True}
    for name in "abcd":
        log.record("bucket-a", f"inbox/{name}", "PutObject")
    later = log.since(2)
    assert later["complete"] and [e["key"] for e in later["events"]] == ["inbox/c", "inbox/d"]
    dropped = log.since(0)  # entry 1 is gone: the reader must list the bucket
    assert not dropped["complete"] and dropped["next"] == 4
    restarted = log.since(9, wait=5)  # a cursor from a server before this one: at once, and incomplete
    assert not restarted["complete"] and restarted["next"] == 4
    started = time.monotonic()
    assert log.since(4, wait=0.2)["events"] == []  # a long poll that times out
    assert time.monotonic() - started >= 0.15


def _inbox_driver(stack: LocalStack) -> S3InboxDriver:
    return next(d for d in stack.drivers if isinstance(d, S3InboxDriver))


def _listings(driver: S3InboxDriver) -> list[int]:
    calls = [0]

    def count(**_: Any) -> None:
        calls[0] += 1

    driver.s3.meta.events.register("before-call.s3.ListObjectsV2", count)
    return calls


def _put_manifests(stack: LocalStack, count: int, prefix: str) -> None:
    s3 = stack.client("s3")
    for index in range(count):  # not valid jobs: each is delivered, refused, and leaves an error document
        s3.put_object(Bucket=stack.resources.bucket_name, Key=f"inbox/{prefix}/{index}.json", Body=b"{}")


def _wait_for_invocations(driver: S3InboxDriver, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while driver.invocations < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert driver.invocations == count


def test_the_inbox_driver_delivers_each_created_object_without_listing_the_bucket() -> None:
    with LocalStack(StackOptions()) as stack:
        driver = _inbox_driver(stack)
        listings = _listings(driver)
        _put_manifests(stack, 60, "events")
        _wait_for_invocations(driver, 60)
        time.sleep(0.5)
        assert driver.invocations == 60  # each object once
        assert listings[0] == 0
        s3 = stack.client("s3")
        errors = s3.list_objects_v2(Bucket=stack.resources.bucket_name, Prefix="outbox/events/")
        assert len(errors.get("Contents", [])) == 60


def test_the_inbox_driver_lists_the_bucket_when_the_log_dropped_what_it_had_not_read() -> None:
    import threading

    with LocalStack(StackOptions(moto_process=False)) as stack:
        driver = _inbox_driver(stack)
        listings = _listings(driver)
        driver.stopping.set()  # the driver falls behind: nothing reads the log for a while
        driver.thread.join(timeout=10)
        stack._moto.objects_created = ObjectCreatedLog(keep=1)  # only the newest entry is kept
        _put_manifests(stack, 5, "dropped")
        driver._cursor = 0
        driver.stopping.clear()
        driver.thread = threading.Thread(target=driver._run, daemon=True)
        driver.thread.start()
        _wait_for_invocations(driver, 5)
        assert listings[0] >= 1
