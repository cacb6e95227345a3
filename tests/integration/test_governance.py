"""Provider governance against moto: request slots and in-flight caps under concurrency."""

from __future__ import annotations

import itertools
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from tests.conftest import Context, api_event, table_items

VEO = {"model": "freepik/veo-3-1-reference-to-video", "prompt": "a cat on a skateboard",
       "reference_images": ["https://example.com/cat.png"]}
UNIALL = {"model": "uniall/veo3.1-video-720p", "prompt": "a lighthouse at dusk"}


@pytest.fixture
def atomic_moto(monkeypatch):
    """In-process moto answers one request at a time, so conditional writes are atomic as on DynamoDB."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    real_call = BotocoreStubber.__call__

    def one_at_a_time(self, *args, **kwargs):
        with lock:
            return real_call(self, *args, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", one_at_a_time)


def create(handlers, body):
    answer = handlers["api"](api_event("POST", "/v1/jobs", body), Context())
    return answer["statusCode"], json.loads(answer["body"])


def jobs(aws):
    return {i["id"]: i for i in table_items(aws) if i["pk"].startswith("job#")}


def test_request_slots_hold_the_rate_across_concurrent_callers(aws, atomic_moto):
    from reelhook.adapters.governance import reserve_request_slot

    now = 1_800_000_000.25
    with ThreadPoolExecutor(8) as pool:
        slots = sorted(pool.map(lambda _: reserve_request_slot("freepik", 10.0, 5, now), range(60)))
    # The first burst goes at once; then one every 100 ms, each slot held by exactly one caller.
    assert slots[:5] == [now] * 5
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(slots[4:])]
    assert gaps == [0.1] * len(gaps)
    for start in slots:  # no 1-second window holds more than rate + burst
        assert sum(1 for s in slots if start <= s < start + 1) <= 15
    # After a quiet spell the clock restarts at now instead of handing out past slots.
    later = now + 3600
    assert reserve_request_slot("freepik", 10.0, 5, later) == later


def test_a_reservation_is_one_write_once_the_budgets_state_is_known(aws, monkeypatch):
    from reelhook.adapters import governance
    from reelhook.adapters.aws import client

    monkeypatch.setattr(governance, "_found_idle", {})
    writes: list[str] = []
    client("dynamodb").meta.events.register("before-parameter-build.dynamodb.UpdateItem",
                                            lambda params, **_: writes.append(params["UpdateExpression"]))
    now = 1_800_000_000.0

    def reserve(at: float) -> tuple[float, int]:
        writes.clear()
        return governance.reserve_request_slot("freepik", 10.0, 1, at), len(writes)

    assert reserve(now) == (now, 2)  # nothing known: the busy form is refused, then the idle one
    assert reserve(now + 60) == (now + 60, 1)  # idle again: straight to the idle form
    assert reserve(now + 60) == (now + 60.1, 2)  # busy now: one refused guess...
    assert reserve(now + 60) == (now + 60.2, 1)  # ...then one write while it stays busy


def test_unlimited_providers_make_no_budget_writes(aws):
    from reelhook.services import rate_limit

    assert rate_limit.reserve("uniall", now=100.0) == 100.0
    assert not [i for i in table_items(aws) if i["pk"].startswith("gov#")]


def test_a_job_refused_budget_is_queued_not_failed(aws, sandbox, handlers, monkeypatch):
    # Slots 50 s apart: however slowly this machine runs the four creates, only the first is free.
    monkeypatch.setenv("FREEPIK_REQUESTS_PER_SECOND", "0.02")
    monkeypatch.setenv("FREEPIK_BURST", "1")
    from tests.conftest import reset_caches

    reset_caches()
    answers = [create(handlers, VEO) for _ in range(4)]
    assert {status for status, _ in answers} == {202}
    statuses = [job["status"] for _, job in answers]
    assert statuses[0] == "submitted" and statuses[1:] == ["queued"] * 3
    assert all(job["waiting_for"] == "rate_limit" for _, job in answers[1:])
    assert len([r for r in sandbox.request_log if r.method == "POST"]) == 1
    # Each waiting job holds its own reserved slot, 50 s apart, and waits on the queue for it.
    sqs = boto3.client("sqs")
    delayed = sqs.get_queue_attributes(QueueUrl=aws.submit_queue_url,
                                       AttributeNames=["ApproximateNumberOfMessagesDelayed"])["Attributes"]
    assert delayed["ApproximateNumberOfMessagesDelayed"] == "3"
    assert not [j for j in jobs(aws).values() if j["status"] == "failed"]


def test_a_waiting_job_comes_back_just_before_its_slot_not_after(aws, sandbox, handlers, monkeypatch):
    # Slots 2.5 s apart. The queue's delay is in whole seconds: rounded up, the message would come
    # back after its slot and a second's worth of slots would go out in one bunch. Rounded down,
    # it comes back early and the consumer sleeps the rest (it sleeps up to QUEUE_WAIT_SECONDS).
    monkeypatch.setenv("FREEPIK_REQUESTS_PER_SECOND", "0.4")
    monkeypatch.setenv("FREEPIK_BURST", "1")
    from reelhook.services import submit
    from tests.conftest import reset_caches

    reset_caches()
    sent: list[dict] = []
    monkeypatch.setattr(submit, "send_submit", lambda job_id, **kw: sent.append({"at": time.time(), **kw}))
    create(handlers, VEO)  # takes the free slot
    status, job = create(handlers, VEO)
    assert (status, job["status"], job["waiting_for"]) == (202, "queued", "rate_limit")
    [message] = sent
    assert message["slot_at"] - message["at"] > submit.INLINE_WAIT_SECONDS
    assert message["slot_at"] - submit.QUEUE_WAIT_SECONDS <= message["at"] + message["delay_seconds"]
    assert message["at"] + message["delay_seconds"] <= message["slot_at"]


def test_a_job_that_must_wait_is_written_once_already_saying_why(aws, sandbox, handlers, monkeypatch):
    monkeypatch.setenv("FREEPIK_REQUESTS_PER_SECOND", "0.02")
    monkeypatch.setenv("FREEPIK_BURST", "1")
    from reelhook.adapters.aws import client
    from tests.conftest import reset_caches

    reset_caches()
    create(handlers, VEO)  # takes the only free slot
    writes: list[tuple[str, str]] = []
    for operation in ("PutItem", "UpdateItem"):
        client("dynamodb").meta.events.register(
            f"before-parameter-build.dynamodb.{operation}",
            lambda params, op=operation, **_: writes.append((op, (params.get("Item") or params["Key"])["pk"]["S"])))
    status, job = create(handlers, VEO)
    assert (status, job["status"], job["waiting_for"]) == (202, "queued", "rate_limit")
    assert [op for op, pk in writes if pk.startswith("job#")] == ["PutItem"]  # no second write to say why
    assert {pk for op, pk in writes if not pk.startswith("job#")} == {"gov#freepik#rate"}


def test_the_in_flight_cap_holds_under_concurrency_and_frees_on_completion(aws, sandbox, handlers, monkeypatch,
                                                                           atomic_moto):
    monkeypatch.setenv("UNIALL_MAX_IN_FLIGHT", "3")
    from reelhook.adapters import governance
    from reelhook.services import submit

    monkeypatch.setattr(submit, "CONCURRENCY_BASE_DELAY", 0)  # waiting jobs come back at once here
    from tests.conftest import reset_caches

    reset_caches()
    lock = threading.Lock()
    peak = [0]
    real_acquire = governance.acquire_in_flight

    def watching_acquire(provider: str, job_id: str, cap: int) -> bool:
        granted = real_acquire(provider, job_id, cap)
        with lock:
            peak[0] = max(peak[0], len(governance.in_flight(provider)))
        return granted

    monkeypatch.setattr(governance, "acquire_in_flight", watching_acquire)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: create(handlers, UNIALL), range(10)))
    assert {status for status, _ in answers} == {202}
    submitted = [job for _, job in answers if job["status"] == "submitted"]
    waiting = [job for _, job in answers if job["status"] == "queued"]
    assert len(submitted) == 3 and peak[0] == 3
    assert {job["waiting_for"] for job in waiting} == {"provider_concurrency"}
    assert len(governance.in_flight("uniall")) == 3
    # A task that reaches a terminal state frees its slot; a waiting job then gets it.
    from reelhook.providers.base import Phase, ProviderStatus
    from reelhook.services.status import apply_status

    done = submitted[0]
    apply_status(done["id"], "uniall", ProviderStatus(done["provider_task_id"], Phase.FAILED, "failed",
                                                      error_message="boom"), source="poll")
    assert done["id"] not in governance.in_flight("uniall")
    records = [{"messageId": str(i), "body": m["Body"]} for i, m in enumerate(_all_messages(aws))]
    assert handlers["submit"]({"Records": records}, Context()) == {"batchItemFailures": []}
    states = [j["status"] for j in jobs(aws).values()]
    assert states.count("submitted") == 3 and states.count("failed") == 1
    assert len(governance.in_flight("uniall")) == 3


def _all_messages(aws):
    sqs = boto3.client("sqs")
    found = []
    while batch := sqs.receive_message(QueueUrl=aws.submit_queue_url, MaxNumberOfMessages=10).get("Messages", []):
        found += batch
    return found


def test_the_poller_releases_places_that_finished_jobs_still_hold(aws, sandbox, handlers, monkeypatch):
    """A release that never happened (a Lambda died after the job failed) must not hold the cap for ever."""
    monkeypatch.setenv("UNIALL_MAX_IN_FLIGHT", "2")
    from reelhook.adapters import governance
    from reelhook.adapters.jobs_table import JobStore
    from reelhook.services.polling import dispatch_due
    from tests.conftest import reset_caches

    reset_caches()
    answers = [create(handlers, UNIALL) for _ in range(2)]
    held = [job["id"] for _, job in answers]
    assert governance.in_flight("uniall") == set(held)
    # One job fails without its release (as if the release call was lost), one vanished (TTL).
    from reelhook.services.status import fail_job

    with monkeypatch.context() as lost_release:
        lost_release.setattr(governance, "release_in_flight", lambda provider, job_id: None)
        fail_job(JobStore(), held[0], "provider_failed", "boom")
    governance.acquire_in_flight("uniall", "job-deleted-by-ttl", 3)
    assert governance.in_flight("uniall") == {*held, "job-deleted-by-ttl"}
    outcomes = dispatch_due(seconds=5)
    assert outcomes["in_flight_released"] == 2
    assert governance.in_flight("uniall") == {held[1]}  # the running job keeps its place
    # A place is free again: a new job is sent at once instead of waiting.
    _, job = create(handlers, UNIALL)
    assert job["status"] == "submitted"


def test_a_failed_sweep_does_not_fail_the_dispatch(aws, sandbox, handlers, monkeypatch):
    monkeypatch.setenv("UNIALL_MAX_IN_FLIGHT", "2")
    from reelhook.adapters import governance
    from reelhook.services.polling import dispatch_due
    from tests.conftest import reset_caches

    reset_caches()

    def refused(provider):
        raise RuntimeError("AccessDenied")

    monkeypatch.setattr(governance, "in_flight", refused)
    outcomes = dispatch_due(seconds=5)
    assert outcomes["in_flight_sweep_failed"] == 1  # only UniAll has a cap; the others were never asked


def test_callers_that_will_not_wait_leave_the_budget_alone(aws, atomic_moto):
    """More demand than the rate, from callers with a short ``max_wait`` (status checks): each
    refused caller must spend nothing, or the next slot runs away from now for good and no
    check is ever sent again (a burst of polled jobs then never finishes)."""
    from reelhook.adapters.governance import reserve_request_slot

    now = 1_800_000_000.0
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: reserve_request_slot("uniall", 10.0, 1, now, max_wait=0.5), range(200)))
    taken = sorted(a for a in answers if a is not None)
    # Only the slots within half a second went, one per 100 ms; the other callers took nothing.
    assert taken == [now + round(0.1 * i, 1) for i in range(6)]
    # So a second later the budget is as 200 callers left it: six slots used, the next ones free.
    assert reserve_request_slot("uniall", 10.0, 1, now + 1.0, max_wait=0.5) == now + 1.0
    # A caller that holds its slot (the submit queue) still gets one however far away it is.
    held = [reserve_request_slot("uniall", 10.0, 1, now + 1.0) for _ in range(20)]
    assert held[-1] == pytest.approx(now + 3.0)
    assert reserve_request_slot("uniall", 10.0, 1, now + 1.0, max_wait=0.5) is None


def test_a_status_check_refused_a_slot_spends_none(aws, monkeypatch):
    from reelhook.services import rate_limit
    from tests.conftest import reset_caches

    monkeypatch.setenv("UNIALL_REQUESTS_PER_SECOND", "1")
    monkeypatch.setenv("UNIALL_BURST", "1")
    reset_caches()
    now = 1_800_000_000.0
    rate_limit.wait_for_slot("uniall", max_wait=0.0, clock=lambda: now, sleep=lambda _: None)
    for _ in range(50):
        with pytest.raises(rate_limit.RateLimitTimeout):
            rate_limit.wait_for_slot("uniall", max_wait=0.5, clock=lambda: now, sleep=lambda _: None)
    # One second on, the next slot is free: the 50 refusals did not push it back 50 seconds.
    rate_limit.wait_for_slot("uniall", max_wait=0.0, clock=lambda: now + 1.0, sleep=lambda _: None)


def test_a_batch_reservation_takes_consecutive_slots_in_one_write(aws, atomic_moto):
    from reelhook.adapters.governance import reserve_request_slot, reserve_request_slots

    now = 1_800_000_000.0
    # Idle: the burst goes at once, the rest one interval apart, and the next caller queues behind.
    assert reserve_request_slots("uniall", 10.0, 3, now, 5) == [now, now, now, now + 0.1, now + 0.2]
    assert reserve_request_slot("uniall", 10.0, 3, now) == pytest.approx(now + 0.3)
    # Busy: batches and single callers racing never share a slot.
    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda n: reserve_request_slots("uniall", 10.0, 3, now, n), [1, 4, 2, 7, 3, 5] * 4))
    taken = sorted(round(slot, 6) for batch in batches for slot in batch)
    assert taken == [round(now + 0.4 + 0.1 * i, 6) for i in range(88)]
    for batch in batches:  # each batch's slots are its own consecutive run
        assert [round(b - a, 6) for a, b in itertools.pairwise(batch)] == [0.1] * (len(batch) - 1)


def test_a_batch_whose_last_slot_is_too_far_takes_nothing(aws, atomic_moto):
    from reelhook.adapters.governance import reserve_request_slot, reserve_request_slots

    now = 1_800_000_000.0
    # 1 request/s: ten slots span 9 s, more than a 5 s wait allows, even from an idle budget.
    assert reserve_request_slots("uniall", 1.0, 1, now, 10, max_wait=5.0) is None
    assert reserve_request_slots("uniall", 1.0, 1, now, 4, max_wait=5.0) == [now, now + 1, now + 2, now + 3]
    # Busy: the next free slot is 4 s away, so a batch of 3 would end at 6 s: refused, and spent nothing.
    assert reserve_request_slots("uniall", 1.0, 1, now, 3, max_wait=5.0) is None
    assert reserve_request_slot("uniall", 1.0, 1, now) == now + 4


def test_a_poll_batch_writes_the_providers_budget_once(aws, sandbox, handlers, monkeypatch):
    """Every status check used to reserve its own slot: the budget item, which every Lambda
    shares, took one write per request. A batch of checks now reserves its slots together."""
    from reelhook.adapters.aws import client
    from reelhook.services import polling
    from tests.conftest import reset_caches
    from tests.integration.test_reconciler import make_due

    monkeypatch.setenv("UNIALL_REQUESTS_PER_SECOND", "50")
    monkeypatch.setenv("UNIALL_BURST", "10")
    reset_caches()
    created = [create(handlers, UNIALL) for _ in range(6)]
    assert {status for status, _ in created} == {202}
    for _, job in created:
        make_due(aws, job["id"])
    before = len(sandbox.request_log)
    budget_writes: list[str] = []

    def count(params: dict, **_: object) -> None:
        if params["Key"]["pk"]["S"] == "gov#uniall#rate":
            budget_writes.append(params["UpdateExpression"])

    client("dynamodb").meta.events.register("before-parameter-build.dynamodb.UpdateItem", count)
    try:
        outcomes = polling.run_pass()
    finally:
        client("dynamodb").meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", count)
    assert outcomes["unchanged"] + outcomes["moved_to_running"] == 6, outcomes
    assert len(budget_writes) <= 2, budget_writes  # one batch write (plus one refused guess of the budget's state)
    task_ids = {job["provider_task_id"] for _, job in created}
    asked = [r for r in sandbox.request_log[before:] if r.method == "GET" and any(t in r.path for t in task_ids)]
    assert len(asked) == 6  # every job was still asked about, each once


def test_a_held_slot_serves_the_first_attempt_and_retries_reserve_their_own(aws, monkeypatch):
    from reelhook.services import rate_limit

    reserved: list[float] = []
    monkeypatch.setattr(rate_limit, "reserve_within", lambda provider, max_wait, now: reserved.append(now) or now + 0.5)
    slept: list[float] = []
    gate = rate_limit.slot_gate("uniall", max_wait=5.0, held_at=102.0, clock=lambda: 100.0, sleep=slept.append)
    gate()
    assert slept == [2.0] and reserved == []  # the held slot: waited for, nothing reserved
    gate()
    assert slept == [2.0, 0.5] and reserved == [100.0]  # a retry reserves a slot of its own


def test_a_submit_batch_reads_its_jobs_in_one_request_and_sends_each(aws, sandbox, handlers, monkeypatch):
    """A consumer whose batch waits for request slots holds its whole invocation: reading the
    batch's jobs one GetItem at a time kept it a round trip per record longer."""
    from reelhook.adapters.aws import client
    from reelhook.services import submit
    from tests.conftest import reset_caches

    monkeypatch.setenv("FREEPIK_REQUESTS_PER_SECOND", "0.02")  # every create after the first must queue
    monkeypatch.setenv("FREEPIK_BURST", "1")
    reset_caches()
    sent: list[str] = []
    monkeypatch.setattr(submit, "send_submit", lambda job_id, **kw: sent.append(job_id))
    created = [create(handlers, VEO)[1] for _ in range(5)]
    queued = [job["id"] for job in created if job["status"] == "queued"]
    assert len(queued) == 4 and sent == queued
    monkeypatch.setenv("FREEPIK_REQUESTS_PER_SECOND", "0")  # the budget frees: the batch may send now
    reset_caches()
    reads: list[str] = []
    counters = {f"before-parameter-build.dynamodb.{op}": lambda op=op, **_: reads.append(op)
                for op in ("GetItem", "BatchGetItem")}
    records = [{"messageId": f"m{i}", "body": json.dumps({"job_id": job_id})} for i, job_id in enumerate(queued)]
    records.append({"messageId": "gone", "body": json.dumps({"job_id": "job_" + "0" * 32})})  # deleted meanwhile
    records.append({"messageId": "poison", "body": "not json"})
    before = len(sandbox.request_log)
    events = client("dynamodb").meta.events
    for name, counter in counters.items():
        events.register(name, counter)
    try:
        failed = submit.handle_submit_messages(records, callback_base_url="https://reelhook.example")
    finally:
        for name, counter in counters.items():
            events.unregister(name, counter)
    assert failed == []
    assert reads.count("BatchGetItem") == 1 and "GetItem" not in reads, reads
    assert len([r for r in sandbox.request_log[before:] if r.method == "POST"]) == 4
    assert {jobs(aws)[job_id]["status"] for job_id in queued} == {"submitted"}


def test_a_submit_batch_whose_jobs_cannot_be_read_comes_back_whole(aws, monkeypatch):
    from reelhook.adapters.jobs_table import JobStore
    from reelhook.services import submit

    def unreadable(self, job_ids, **_):
        raise RuntimeError("DynamoDB is unreachable")

    monkeypatch.setattr(JobStore, "get_many", unreadable)
    records = [{"messageId": f"m{i}", "body": json.dumps({"job_id": f"job_{i}"})} for i in range(3)]
    assert submit.handle_submit_messages(records, callback_base_url="https://reelhook.example") == ["m0", "m1", "m2"]
