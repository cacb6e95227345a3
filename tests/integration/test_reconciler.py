"""The poller as reconciler: missed webhooks, stuck copies, expired links, unknown submits."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from reelhook.adapters.jobs_table import JobStore, job_key
from reelhook.services import polling, transfer
from tests.conftest import Context, api_event, queue_messages

VEO = {"model": "freepik/veo-3-1-reference-to-video", "prompt": "p", "reference_images": ["https://example.com/a.png"]}


def create(handlers, body=VEO):
    answer = handlers["api"](api_event("POST", "/v1/jobs", body), Context())
    assert answer["statusCode"] == 202, answer
    return json.loads(answer["body"])


def make_due(aws, job_id, **fields):
    values = {"next_check_at": 0} | fields
    names = {f"#{i}": k for i, k in enumerate(values)}
    boto3.client("dynamodb").update_item(
        TableName=aws.table_name, Key=job_key(job_id),
        UpdateExpression="SET " + ", ".join(f"#{i} = :{i}" for i in range(len(values))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={f":{i}": {"N": str(v)} if isinstance(v, int) else {"S": v}
                                   for i, v in enumerate(values.values())})


def test_a_missed_webhook_is_found_by_asking_the_provider(aws, sandbox, handlers):
    job = create(handlers)
    sandbox.force_status(job["provider_task_id"], "completed")  # its webhook goes nowhere in these tests
    make_due(aws, job["id"])
    assert polling.run_pass()["moved_to_storing"] == 1
    stored = JobStore().get(job["id"])
    assert stored["status"] == "storing" and stored["events"][-1]["source"] == "poll"
    assert [json.loads(m["Body"]) for m in queue_messages(aws)] == [{"job_id": job["id"]}]


def test_a_copy_stuck_in_storing_is_queued_again(aws, sandbox, handlers):
    job = create(handlers)
    sandbox.force_status(job["provider_task_id"], "completed")
    make_due(aws, job["id"])
    polling.run_pass()
    queue_messages(aws)  # the first message is lost, as if the callback died after its write
    make_due(aws, job["id"], links_expire_at=int(time.time()) + 3600)
    assert polling.run_pass()["transfer_redriven"] == 1
    assert len(queue_messages(aws)) == 1


def test_links_that_expired_before_the_copy_fail_the_job(aws, sandbox, handlers):
    job = create(handlers)
    sandbox.force_status(job["provider_task_id"], "completed")
    make_due(aws, job["id"])
    polling.run_pass()
    make_due(aws, job["id"], links_expire_at=int(time.time()) - 1)
    assert polling.run_pass()["failed_output_expired"] == 1
    stored = JobStore().get(job["id"])
    assert stored["status"] == "failed" and stored["error"]["code"] == "output_expired"


def test_an_unknown_submit_is_failed_after_the_deadline_and_never_resent(aws, sandbox, handlers, monkeypatch):
    sandbox.config.faults.fail_next_submit_with = 500
    job = create(handlers)
    assert job["status"] == "queued"
    make_due(aws, job["id"])
    assert polling.run_pass()["waiting_for_submit"] == 1  # too young to give up on
    make_due(aws, job["id"], submit_started_at="2020-01-01T00:00:00.000Z")
    assert polling.run_pass()["failed_unknown_submit"] == 1
    stored = JobStore().get(job["id"])
    assert stored["error"]["code"] == "submit_outcome_unknown"
    assert len([r for r in sandbox.request_log if r.method == "POST"]) == 1


def test_a_job_waiting_for_its_turn_is_requeued_never_failed(aws, sandbox, handlers, monkeypatch):
    monkeypatch.setenv("FREEPIK_REQUESTS_PER_SECOND", "0.01")  # one request per 100 s
    monkeypatch.setenv("FREEPIK_BURST", "1")
    from tests.conftest import reset_caches

    reset_caches()
    first, waiting = create(handlers), create(handlers)
    assert first["status"] == "submitted" and waiting["waiting_for"] == "rate_limit"
    # Old (but inside the queued deadline), overdue and its queue message lost: the reconciler
    # puts it back instead of failing it.
    from reelhook import clock

    boto3.client("sqs").purge_queue(QueueUrl=aws.submit_queue_url)
    make_due(aws, waiting["id"], created_at=clock.iso(time.time() - 23 * 3600))
    assert polling.run_pass()["submit_requeued"] == 1
    stored = JobStore().get(waiting["id"], consistent=True)
    assert stored["status"] == "queued" and "error" not in stored
    [message] = boto3.client("sqs").receive_message(QueueUrl=aws.submit_queue_url).get("Messages", [])
    assert json.loads(message["Body"])["job_id"] == waiting["id"]


def test_uniall_jobs_are_polled_to_completion_with_backoff(aws, sandbox, handlers):
    job = create(handlers, {"model": "uniall/veo3.1-video-720p", "prompt": "p"})
    make_due(aws, job["id"])
    assert polling.run_pass()["unchanged"] == 1
    first = JobStore().get(job["id"])
    assert first["poll_count"] == 1 and first["next_check_at"] > time.time()
    sandbox.force_status(job["provider_task_id"], "running")
    make_due(aws, job["id"])
    assert polling.run_pass()["moved_to_running"] == 1
    sandbox.force_status(job["provider_task_id"], "completed")
    make_due(aws, job["id"])
    assert polling.run_pass()["moved_to_storing"] == 1


class _Redirector(BaseHTTPRequestHandler):
    target = ""
    content_type = "video/mp4"

    def do_GET(self):
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("location", self.target)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = b"<html>not a video</html>"
        self.send_response(200)
        self.send_header("content-type", self.content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def web():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(("target", "code"), [
    ("http://10.1.2.3/v.mp4", "output_url_refused"),           # a redirect into a private network
    ("http://169.254.169.254/latest/meta-data/", "output_url_refused"),
    ("file:///etc/passwd", "output_url_refused"),
])
def test_redirects_are_checked_like_the_first_url(aws, web, target, code):
    _Redirector.target = target
    with pytest.raises(transfer.PermanentCopyError) as refused:
        transfer.copy_output(f"{web}/redirect", provider="freepik", job_id="job_" + "a" * 32, index=0)
    assert refused.value.code == code
    assert boto3.client("s3").list_objects_v2(Bucket=aws.bucket_name).get("KeyCount") == 0


def test_a_link_that_serves_something_other_than_video_is_refused(aws, web):
    _Redirector.content_type = "text/html"
    try:
        # Retried first (a CDN may answer one HTML page); the code is the job's if it persists.
        with pytest.raises(transfer.FaultyOutput) as refused:
            transfer.copy_output(f"{web}/page", provider="freepik", job_id="job_" + "b" * 32, index=0)
    finally:
        _Redirector.content_type = "video/mp4"
    assert refused.value.code == "output_not_video"


def test_dispatch_queues_each_job_due_within_the_minute_delayed_until_due(aws, sandbox, handlers, monkeypatch):
    monkeypatch.setattr(polling.clock, "now", lambda: 1_800_000_000.0)
    ids = [create(handlers, {"model": "uniall/veo3.1-video-720p", "prompt": f"p{i}"})["id"] for i in range(12)]
    for offset, job_id in enumerate(ids):  # due from 10 s ago to 100 s ahead, across every shard
        make_due(aws, job_id, next_check_at=1_800_000_000 - 10 + offset * 10)
    outcomes = polling.dispatch_due()
    assert outcomes["dispatched"] == 8  # the rest are due after the next run
    sqs = boto3.client("sqs")
    delayed = sqs.get_queue_attributes(QueueUrl=aws.poll_queue_url, AttributeNames=["All"])["Attributes"]
    assert delayed["ApproximateNumberOfMessagesDelayed"] == "6"  # due in 10..60 s
    visible = []
    while batch := sqs.receive_message(QueueUrl=aws.poll_queue_url, MaxNumberOfMessages=10).get("Messages", []):
        visible += batch
    assert sorted(json.loads(m["Body"])["due"] for m in visible) == [1_800_000_000 - 10, 1_800_000_000]


def test_the_due_query_reads_only_what_scheduling_a_check_needs(aws, sandbox, handlers):
    from reelhook.adapters.jobs_table import DUE_FIELDS

    job = create(handlers, {"model": "uniall/veo3.1-video-720p", "prompt": "p"})
    make_due(aws, job["id"], check_queued_for=7)
    found = list(JobStore().due_jobs(int(time.time())))
    assert [j["id"] for j in found] == [job["id"]]
    assert set(found[0]) == set(DUE_FIELDS)  # no events, request or results: a few KB less per due job
    assert found[0]["provider"] == "uniall" and found[0]["check_queued_for"] == 7
    assert polling.dispatch_due()["dispatched"] == 1


def test_a_worker_queues_a_check_due_before_the_dispatchers_next_run(aws, sandbox, handlers):
    job = create(handlers, {"model": "uniall/veo3.1-video-720p", "prompt": "p"})
    make_due(aws, job["id"])
    outcomes, failed = polling.check_messages([{"messageId": "m", "body": json.dumps(
        {"job_id": job["id"], "due": 0, "next": int(time.time()) + 20})}])
    assert outcomes == {"unchanged": 1} and failed == []
    sqs = boto3.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=aws.poll_queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # its next check, 20 s out
    # The same message again finds the check already claimed: no second provider call.
    gets = len([r for r in sandbox.request_log if r.method == "GET"])
    assert polling.check_messages([{"messageId": "m", "body": json.dumps(
        {"job_id": job["id"], "due": 0, "next": int(time.time()) + 20})}])[0] == {"already_checked": 1}
    assert len([r for r in sandbox.request_log if r.method == "GET"]) == gets


def test_a_check_that_finds_the_job_as_it_was_writes_only_its_claim(aws, sandbox, handlers, dynamodb_calls):
    job = create(handlers, {"model": "uniall/veo3.1-video-720p", "prompt": "p"})
    make_due(aws, job["id"])
    dynamodb_calls.clear()
    outcomes, _ = polling.check_messages([{"messageId": "m", "body": json.dumps(
        {"job_id": job["id"], "due": 0, "next": int(time.time()) + 20})}])
    assert outcomes == {"unchanged": 1}
    # The provider still says "submitted": the job cannot move back to where it is, so the
    # check spends no conditional write to find that out.
    assert dynamodb_calls.count("UpdateItem") == 1  # the claim
    assert JobStore().get(job["id"], consistent=True)["status"] == "submitted"


def test_a_check_the_worker_queued_itself_is_not_queued_again_by_the_schedule(aws, sandbox, handlers,
                                                                              monkeypatch):
    now = [1_800_000_000.0]
    monkeypatch.setattr(polling.clock, "now", lambda: now[0])
    job_id = create(handlers, {"model": "uniall/veo3.1-video-720p", "prompt": "p"})["id"]
    make_due(aws, job_id, next_check_at=1_800_000_000)
    outcomes, _ = polling.check_messages([{"messageId": "m", "body": json.dumps(
        {"job_id": job_id, "due": 1_800_000_000, "next": 1_800_000_020})}])
    assert outcomes == {"unchanged": 1}
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=aws.poll_queue_url,
                                                           AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # the worker's own, due in 20 s
    outcomes = polling.dispatch_due(memo=polling.DispatchMemo())  # another poller process
    assert outcomes["dispatched"] == 0 and outcomes["queued_by_worker"] == 1
    # The worker died before its message went out: once the check is long overdue, the
    # schedule sends it after all.
    now[0] = 1_800_000_020 + polling.DispatchMemo.hold_seconds()
    assert polling.dispatch_due(memo=polling.DispatchMemo())["dispatched"] == 1


def test_each_pass_queues_only_what_falls_due_before_the_next(aws, sandbox, handlers, monkeypatch):
    # With a pass every 5 s, a check due in 30 s is the business of a later pass: queued now it
    # would be queued again by every pass until then.
    monkeypatch.setenv("POLLER_PERIOD_SECONDS", "5")
    polling.settings.cache_clear()
    monkeypatch.setattr(polling.clock, "now", lambda: 1_800_000_000.0)
    soon, later = (create(handlers, {"model": "uniall/veo3.1-video-720p", "prompt": p})["id"] for p in ("a", "b"))
    make_due(aws, soon, next_check_at=1_800_000_003)
    make_due(aws, later, next_check_at=1_800_000_030)
    try:
        outcomes = polling.dispatch_due(memo=polling.DispatchMemo())
    finally:
        polling.settings.cache_clear()
    assert outcomes["dispatched"] == 1
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=aws.poll_queue_url,
                                                           AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"  # the one due in 3 s
    assert later != soon


def test_a_check_queued_but_not_yet_claimed_is_not_queued_again_at_every_pass(aws, sandbox, handlers,
                                                                               monkeypatch):
    now = [1_800_000_000.0]
    monkeypatch.setattr(polling.clock, "now", lambda: now[0])
    job_id = create(handlers, {"model": "uniall/veo3.1-video-720p", "prompt": "p"})["id"]
    make_due(aws, job_id, next_check_at=1_800_000_000)  # due now; the workers are behind
    memo = polling.DispatchMemo()
    assert polling.dispatch_due(memo=memo)["dispatched"] == 1
    for _ in range(3):  # passes while the check waits in the queue
        now[0] += 1
        outcomes = polling.dispatch_due(memo=memo)
        assert outcomes["dispatched"] == 0 and outcomes["already_dispatched"] == 1
    now[0] += memo.hold_seconds()  # never claimed (a lost message): queued again
    assert polling.dispatch_due(memo=memo)["dispatched"] == 1
    assert len(queue_messages(aws, aws.poll_queue_url)) == 2
