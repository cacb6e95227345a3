"""An idle local stack costs little: its drivers and moto's long polls wait for work instead of
waking on a short timer, and they wake at once when work arrives. Counts, not timings: the CPU
figure itself is `make bench`'s (bench/idle.py)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import pytest

from tests.e2e.test_local_scaling import _client, _fake_function


class ScriptedSqs:
    """Empty answers (after a short wait, as a long poll ends) until ``arrive`` is set; then a
    message per receive. Records which consumer thread asked."""

    def __init__(self) -> None:
        self.askers: list[str] = []
        self.arrive = threading.Event()
        self.lock = threading.Lock()

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        with self.lock:
            self.askers.append(threading.current_thread().name)
            n = len(self.askers)
        if not self.arrive.is_set():
            time.sleep(0.005)
            return {}
        return {"Messages": [{"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": "{}"}]}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        return {"Successful": Entries}


def _wait_until(condition: Any, seconds: float = 20.0) -> bool:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_an_idle_queue_is_polled_by_one_consumer_and_all_poll_again_when_messages_arrive() -> None:
    from reelhook_local.front import QueueDriver

    sqs = ScriptedSqs()
    driver = QueueDriver(_fake_function("FakeIdleQueueFunction", lambda event, context: None),
                         "url", "arn", 10, sqs, workers=5)
    driver.start()
    try:
        assert _wait_until(lambda: len(sqs.askers) >= 60)
        idle_askers = set(sqs.askers[10:60])
        sqs.arrive.set()
        seen = len(sqs.askers)
        assert _wait_until(lambda: len(set(sqs.askers[seen:])) == 5)
    finally:
        driver.stop()
    assert len(idle_askers) == 1  # the other four wait without a request
    assert driver.invocations > 0


def test_a_schedule_runs_when_woken_and_otherwise_waits_its_idle_period() -> None:
    from reelhook_local.front import ScheduleDriver

    runs: list[float] = []
    fn = _fake_function("FakeScheduledFunction", lambda event, context: runs.append(time.monotonic()))
    driver = ScheduleDriver(fn, interval=0.01, idle_most=60.0)
    driver.start()
    try:
        time.sleep(0.3)  # thirty intervals, no wake
        idle_runs = len(runs)
        driver.wake()
        assert _wait_until(lambda: len(runs) > idle_runs)
    finally:
        driver.stop()
    assert idle_runs == 0


def test_a_long_poll_on_an_empty_queue_does_not_look_at_it_again_before_its_wait_ends(monkeypatch) -> None:
    from reelhook_local import stack
    from reelhook_local.stack import AtomicMotoServer

    looks: list[int] = []
    due_in = stack._due_in
    monkeypatch.setattr(stack, "_due_in", lambda queue: looks.append(1) or due_in(queue))
    server = AtomicMotoServer()
    server.start()
    try:
        sqs = _client("sqs", server)
        url = sqs.create_queue(QueueName=f"idle-{threading.get_ident()}")["QueueUrl"]
        answer = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=4, MaxNumberOfMessages=1)
    finally:
        server.stop()
    assert "Messages" not in answer
    assert len(looks) <= 3  # once after the first receive, once at the end (was: every second)


def test_a_visibility_change_wakes_a_long_poll_on_that_queue() -> None:
    from reelhook_local.stack import AtomicMotoServer

    server = AtomicMotoServer()
    server.start()
    try:
        sqs = _client("sqs", server)
        url = sqs.create_queue(QueueName=f"vis-{threading.get_ident()}",
                               Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="again")
        handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]  # in flight for 300 s
        answers: list[Any] = []
        answered = threading.Event()

        def poll() -> None:
            answers.append(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20, MaxNumberOfMessages=1))
            answered.set()

        waiting = threading.Thread(target=poll)
        waiting.start()
        time.sleep(0.5)  # the poll is waiting, until the message is due in 300 s or the wait ends
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
        # Well inside the poll's 20 s: it was woken, not timed out.
        woken = answered.wait(10)
        waiting.join(30)
    finally:
        server.stop()
    assert woken
    assert [m["Body"] for m in answers[0].get("Messages", [])] == ["again"]


@pytest.fixture(scope="module")
def idle_stack() -> Any:
    from reelhook_local.sandbox import SandboxConfig
    from reelhook_local.stack import LocalStack, StackOptions

    with LocalStack(StackOptions(sandbox=SandboxConfig(step_seconds=2.0), enforce_iam=True)) as stack:
        yield stack


def _moto_requests(stack: Any) -> dict[str, int]:
    with urllib.request.urlopen(f"{stack.aws_endpoint}/_reelhook/moto-stats", timeout=10) as answer:  # noqa: S310
        return {name: row["requests"] for name, row in json.load(answer)["operations"].items()}


def test_an_idle_stack_asks_moto_little(idle_stack: Any) -> None:
    window = 20.0
    time.sleep(21.0)  # past every consumer's first long poll (20 s) and the drivers' backoffs
    before = _moto_requests(idle_stack)
    time.sleep(window)
    after = _moto_requests(idle_stack)
    made = {name: after[name] - before.get(name, 0) for name in after if after[name] - before.get(name, 0)}
    per_minute = {name: count * 60 / window for name, count in made.items()}
    queue_drivers = sum(type(d).__name__ == "QueueDriver" for d in idle_stack.drivers)
    # One consumer per queue driver long-polls (20 s): three receives a minute each, give or take.
    assert per_minute.get("ReceiveMessage", 0) <= 4 * queue_drivers + 3, made
    # The poller's pass (one Query per shard) every 5 s while idle, not every second.
    assert per_minute.get("Query", 0) <= 12 * 4 + 12, made
    assert sum(per_minute.values()) <= 200, made
