"""Fault injection in the sandbox: API refusals, webhook chaos, forged webhooks, download faults,
distinct and padded result files, and the counters that report them. Seeded, so deterministic."""

from __future__ import annotations

import hashlib
import random
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from reelhook_local.sandbox import Faults, Phase, ProviderSandbox
from reelhook_local.sandbox.config import FORGED_KINDS, ForgedKind
from reelhook_local.sandbox.faults import COUNTERS
from reelhook_local.sandbox.video import TaskVideo
from tests.sandbox.support import (
    AIHUBMAX_BODY,
    AIHUBMAX_CREATE,
    AUTH,
    SECRET,
    UNIALL_CREATE,
    UNIALL_MINIMAL,
    VEO_BODY,
    VEO_PATH,
    WAN_BODY,
    WAN_PATH,
    Received,
    Receiver,
    submit,
    verify_signature,
)

MakeSandbox = Callable[..., ProviderSandbox]


def manual(make_sandbox: MakeSandbox, **faults: Any) -> ProviderSandbox:
    """A sandbox without a clock (statuses move with advance/force_status) and these faults."""
    return make_sandbox(step_seconds=None, faults=Faults(**faults))


def wan_task(client: httpx.Client, sandbox: ProviderSandbox, webhook_url: str, prompt: str | None = None) -> str:
    body = {**WAN_BODY, "webhook_url": webhook_url, **({"prompt": prompt} if prompt else {})}
    response = submit(client, sandbox, "freepik", WAN_PATH, body)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["task_id"])


def finish(sandbox: ProviderSandbox, task_id: str) -> None:
    """Advance a task to its end and wait for every webhook (forged ones too)."""
    while sandbox.advance(task_id) is not None:
        pass
    assert sandbox.wait_for_webhooks()


def statuses(hooks: list[Received]) -> list[str]:
    return [hook.json().get("status") for hook in hooks]


def fetch(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url`` in a fresh client (a cut connection must not spoil a shared pool)."""
    with httpx.Client(timeout=timeout) as fresh:
        response = fresh.get(url)
        return response.status_code, response.content


def completed_url(client: httpx.Client, sandbox: ProviderSandbox) -> tuple[str, str]:
    task_id = submit(client, sandbox, "uniall", UNIALL_CREATE, UNIALL_MINIMAL).json()["id"]
    return task_id, sandbox.result_url(sandbox.wait_for(task_id))


# -- defaults ---------------------------------------------------------------------------------------


def test_the_default_faults_inject_nothing(sandbox: ProviderSandbox, client: httpx.Client,
                                           receiver: Receiver) -> None:
    faults = sandbox.config.faults
    assert (faults.api_fault_rate, faults.webhook_copies_max, faults.webhook_shuffle, faults.webhook_drop_rate,
            faults.forged_rate, faults.truncate_rate, faults.stall_rate, faults.expire_rate,
            faults.download_failures_before_success) == (0, 1, False, 0, 0, 0, 0, 0, 0)
    assert (faults.api_fault_statuses, faults.submit_fault_statuses, faults.retry_after_seconds) == (
        (429, 500, 503), (429, 503), 1)
    task_id = wan_task(client, sandbox, receiver.url)
    task = sandbox.wait_for(task_id)
    assert sandbox.wait_for_webhooks()
    assert statuses(receiver.wait_for(2)) == ["IN_PROGRESS", "COMPLETED"]
    assert fetch(sandbox.result_url(task))[1] == sandbox.config.video_bytes
    counts = sandbox.fault_counts()
    assert set(counts) == set(COUNTERS)
    assert counts == {**dict.fromkeys(COUNTERS, 0), "webhooks_sent": 2, "downloads_ok": 1}
    assert sandbox.forged_deliveries == [] and sandbox.dropped_webhooks == []
    assert sandbox.sha256_for(task_id) == sandbox.served_sha256


def test_random_decisions_come_from_the_seed() -> None:
    first, second = Faults(seed=7), Faults(seed=7)
    draws = [(f.chance(0.5), f.randint(1, 5), f.uniform(2.0), f.token_hex(4)) for f in (first, second)]
    assert draws[0] == draws[1]
    first.reseed(7)
    assert (first.chance(0.5), first.randint(1, 5), first.uniform(2.0), first.token_hex(4)) == draws[1]
    quiet = Faults(seed=7)
    assert not quiet.chance(0) and quiet.chance(1) and quiet.uniform(0) == 0.0
    assert quiet.rng.random() == random.Random(7).random()  # rates of 0 and 1 draw nothing


# -- provider API faults ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "create", "body", "status_path"),
    [
        ("freepik", VEO_PATH, VEO_BODY, VEO_PATH + "/{}"),
        ("uniall", UNIALL_CREATE, UNIALL_MINIMAL, "/v1/videos/{}"),
        ("aihubmax", AIHUBMAX_CREATE, AIHUBMAX_BODY, "/v1/tasks/{}"),
    ],
)
def test_api_faults_refuse_creates_and_status_reads(make_sandbox: MakeSandbox, client: httpx.Client, provider: str,
                                                    create: str, body: dict[str, Any], status_path: str) -> None:
    sandbox = make_sandbox(faults=Faults(seed=3, api_fault_rate=1.0, retry_after_seconds=0))
    base = sandbox.base_url(provider)
    creates = [submit(client, sandbox, provider, create, body) for _ in range(12)]
    assert {r.status_code for r in creates} == {429, 503}  # refusals only: a 500 leaves the outcome unknown
    assert all(r.headers["retry-after"] == "0" for r in creates if r.status_code == 429)
    assert len(sandbox.tasks) == 0

    sandbox.config.faults.api_fault_rate = 0.0
    created = submit(client, sandbox, provider, create, body).json()
    task_id = created["data"]["task_id"] if provider == "freepik" else created["id"]
    sandbox.config.faults.api_fault_rate = 1.0
    reads = [client.get(base + status_path.format(task_id), headers=AUTH[provider]) for _ in range(15)]
    assert {r.status_code for r in reads} == {429, 500, 503}
    if provider == "freepik":
        assert {r.json()["message"] for r in reads if r.status_code == 429} == {"Too many requests"}
    else:
        assert {r.json()["error"]["type"] for r in reads if r.status_code == 429} == {"rate_limit_error"}
    assert sandbox.fault_counts()["api_faults"] == 27

    sandbox.config.faults.api_fault_rate = 0.0
    assert client.get(base + status_path.format(task_id), headers=AUTH[provider]).status_code == 200


def test_api_faults_are_reproducible_and_the_queue_comes_first(make_sandbox: MakeSandbox,
                                                               client: httpx.Client) -> None:
    def run() -> list[int]:
        sandbox = make_sandbox(faults=Faults(seed=11, api_fault_rate=0.5, submit_fault_statuses=(429,),
                                             fail_submits=[402]))
        return [submit(client, sandbox, "uniall", UNIALL_CREATE, UNIALL_MINIMAL).status_code for _ in range(20)]

    first = run()
    assert first[0] == 402  # the queued failure, before any random one
    assert set(first[1:]) == {200, 429}
    assert run() == first


# -- webhook delivery chaos --------------------------------------------------------------------------


def test_webhooks_are_sent_several_times(make_sandbox: MakeSandbox, client: httpx.Client,
                                         receiver: Receiver) -> None:
    sandbox = manual(make_sandbox, seed=5, webhook_copies_max=3)
    task_id = wan_task(client, sandbox, receiver.url)
    finish(sandbox, task_id)
    rng = random.Random(5)
    expected = [rng.randint(1, 3) for _ in range(2)]  # copies of IN_PROGRESS, then of COMPLETED
    deliveries = sandbox.tasks[task_id].deliveries
    assert [d.status for d in deliveries] == ["IN_PROGRESS"] * expected[0] + ["COMPLETED"] * expected[1]
    assert [d.copy for d in deliveries] == [*range(expected[0]), *range(expected[1])]
    assert len({d.delivery_id for d in deliveries}) == 2  # copies share the webhook-id
    assert statuses(receiver.wait_for(sum(expected))) == [d.status for d in deliveries]
    counts = sandbox.fault_counts()
    assert (counts["webhooks_sent"], counts["webhook_duplicates"]) == (sum(expected), sum(expected) - 2)


def test_webhooks_can_be_dropped_at_random(make_sandbox: MakeSandbox, client: httpx.Client,
                                           receiver: Receiver) -> None:
    sandbox = manual(make_sandbox, seed=1, webhook_drop_rate=0.5)
    tasks = [wan_task(client, sandbox, receiver.url) for _ in range(6)]
    for task_id in tasks:
        finish(sandbox, task_id)
    rng = random.Random(1)
    dropped_expected = [rng.random() < 0.5 for _ in range(12)]
    dropped = sandbox.dropped_webhooks
    assert len(dropped) == sum(dropped_expected) and 0 < len(dropped) < 12
    assert {d.reason for d in dropped} == {"rate"}
    delivered = sum(len(sandbox.tasks[t].deliveries) for t in tasks)
    assert delivered == 12 - len(dropped) == len(receiver.received)
    assert sandbox.fault_counts()["webhooks_dropped"] == len(dropped)


def test_all_webhooks_of_chosen_tasks_are_dropped(make_sandbox: MakeSandbox, client: httpx.Client,
                                                  receiver: Receiver) -> None:
    sandbox = manual(make_sandbox)
    by_id = wan_task(client, sandbox, receiver.url)
    sandbox.config.faults.drop_all_webhooks_for.add(by_id)
    by_marker = wan_task(client, sandbox, receiver.url, prompt="quiet please NO_WEBHOOK")
    normal = wan_task(client, sandbox, receiver.url)
    for task_id in (by_id, by_marker, normal):
        finish(sandbox, task_id)
    assert [(d.task_id, d.reason) for d in sandbox.dropped_webhooks] == [
        (by_id, "task"), (by_id, "task"), (by_marker, "marker"), (by_marker, "marker")]
    assert {hook.json()["task_id"] for hook in receiver.wait_for(2)} == {normal}
    assert sandbox.tasks[by_id].deliveries == [] and sandbox.tasks[by_marker].deliveries == []


def _seed_that_reverses(count: int) -> int:
    for seed in range(100):
        items = list(range(count))
        random.Random(seed).shuffle(items)
        if items == sorted(items, reverse=True):
            return seed
    raise AssertionError("no seed reverses the order")


def test_shuffled_webhooks_are_held_then_released_in_a_random_order(make_sandbox: MakeSandbox,
                                                                    client: httpx.Client,
                                                                    receiver: Receiver) -> None:
    sandbox = manual(make_sandbox, seed=_seed_that_reverses(2), webhook_shuffle=True, webhook_hold_seconds=30)
    task_id = wan_task(client, sandbox, receiver.url)
    sandbox.advance(task_id)  # IN_PROGRESS: held until the task is final
    time.sleep(0.2)
    assert receiver.received == []
    sandbox.advance(task_id)  # COMPLETED: releases both, shuffled
    assert sandbox.wait_for_webhooks()
    assert statuses(receiver.wait_for(2)) == ["COMPLETED", "IN_PROGRESS"]


def test_held_webhooks_are_released_after_the_hold_time(make_sandbox: MakeSandbox, client: httpx.Client,
                                                        receiver: Receiver) -> None:
    sandbox = manual(make_sandbox, webhook_shuffle=True, webhook_hold_seconds=0.2)
    task_id = wan_task(client, sandbox, receiver.url)
    sandbox.advance(task_id)  # never finishes
    assert not sandbox.wait_for_webhooks(timeout=0.05)  # still held
    assert sandbox.wait_for_webhooks(timeout=3)
    assert statuses(receiver.received) == ["IN_PROGRESS"]


def test_jitter_without_shuffle_keeps_each_tasks_order(make_sandbox: MakeSandbox, client: httpx.Client,
                                                       receiver: Receiver) -> None:
    sandbox = manual(make_sandbox, seed=2, webhook_jitter_seconds=0.05)
    task_id = wan_task(client, sandbox, receiver.url)
    for phase in ["running", "completed"] * 3:
        sandbox.force_status(task_id, phase)
    assert sandbox.wait_for_webhooks()
    assert statuses(receiver.wait_for(6)) == ["IN_PROGRESS", "COMPLETED"] * 3


def _seed_where_jitter_reverses(jitter: float, margin: float) -> int:
    """A seed whose shuffle-then-jitter draws deliver [first, second] as [second, first], clearly apart."""
    for seed in range(1000):
        rng = random.Random(seed)
        order = [0, 1]
        rng.shuffle(order)
        delays = {item: rng.uniform(0, jitter) for item in order}
        if delays[1] + margin < delays[0]:
            return seed
    raise AssertionError("no seed found")


def test_jitter_with_shuffle_delays_each_delivery(make_sandbox: MakeSandbox, client: httpx.Client,
                                                  receiver: Receiver) -> None:
    seed = _seed_where_jitter_reverses(0.6, margin=0.25)
    sandbox = manual(make_sandbox, seed=seed, webhook_shuffle=True, webhook_jitter_seconds=0.6)
    task_id = wan_task(client, sandbox, receiver.url)
    sandbox.advance(task_id)
    sandbox.advance(task_id)
    assert sandbox.wait_for_webhooks()
    assert statuses(receiver.wait_for(2)) == ["COMPLETED", "IN_PROGRESS"]


def test_a_slow_receiver_does_not_hold_up_other_tasks(make_sandbox: MakeSandbox, client: httpx.Client) -> None:
    release = threading.Event()

    def respond(hook: Received) -> tuple[int, Any]:
        if hook.path.startswith("/slow"):
            release.wait(5)
        return 200, {}

    slow_receiver = Receiver(respond)
    try:
        sandbox = manual(make_sandbox)
        base = slow_receiver.url.removesuffix("/hook")
        slow = wan_task(client, sandbox, base + "/slow")
        fast = wan_task(client, sandbox, base + "/fast")
        sandbox.advance(slow)
        sandbox.advance(slow)  # queued behind the first, in the same lane
        sandbox.advance(fast)
        sandbox.wait_for(fast, lambda task: len(task.deliveries) == 1, timeout=2)
        assert sandbox.tasks[slow].deliveries == []
        release.set()
        assert sandbox.wait_for_webhooks()
        assert [d.status for d in sandbox.tasks[slow].deliveries] == ["IN_PROGRESS", "COMPLETED"]
    finally:
        release.set()
        slow_receiver.server.shutdown()
        slow_receiver.server.server_close()


# -- forged deliveries --------------------------------------------------------------------------------


class Reelhook:
    """A receiver that checks webhooks as reelhook does: token, signature, age, task, webhook-id."""

    def __init__(self, sandbox: ProviderSandbox) -> None:
        self.sandbox = sandbox
        self.seen_ids: set[str] = set()
        self.applied: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.receiver = Receiver(self.respond)
        self.url = self.receiver.url + "?token=good-token"

    def respond(self, hook: Received) -> tuple[int, Any]:
        if parse_qs(urlsplit(hook.path).query).get("token") != ["good-token"]:
            return 401, {"error": "invalid or missing callback token"}
        body = hook.json()
        if "webhook-signature" in hook.headers:
            if not verify_signature(SECRET.encode(), hook.headers, hook.body):
                return 401, {"error": "bad signature"}
            if abs(time.time() - int(hook.headers["webhook-timestamp"])) > 300:
                return 401, {"error": "stale timestamp"}
        task_id = body.get("task_id") or body.get("id")
        if task_id not in self.sandbox.tasks:
            return 404, {"error": "unknown job"}
        with self.lock:
            delivery_id = hook.headers.get("webhook-id")
            if delivery_id is not None and delivery_id in self.seen_ids:
                return 200, {"applied": False, "duplicate": True}
            if delivery_id is not None:
                self.seen_ids.add(delivery_id)
            self.applied.append(body)
        return 200, {"applied": True}

    def close(self) -> None:
        self.receiver.server.shutdown()
        self.receiver.server.server_close()


@pytest.fixture
def reelhook_factory() -> Iterator[Callable[[ProviderSandbox], Reelhook]]:
    made: list[Reelhook] = []

    def make(sandbox: ProviderSandbox) -> Reelhook:
        made.append(Reelhook(sandbox))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


EXPECTED_ANSWER: dict[ForgedKind, tuple[int, Any]] = {
    "bad_signature": (401, {"error": "bad signature"}),
    "stale_timestamp": (401, {"error": "stale timestamp"}),
    "bad_token": (401, {"error": "invalid or missing callback token"}),
    "missing_token": (401, {"error": "invalid or missing callback token"}),
    "replay": (200, {"applied": False, "duplicate": True}),
    "fake_task": (404, {"error": "unknown job"}),
}


@pytest.mark.parametrize("kind", FORGED_KINDS)
def test_each_forged_kind_is_sent_and_recorded(make_sandbox: MakeSandbox, client: httpx.Client,
                                               reelhook_factory: Callable[[ProviderSandbox], Reelhook],
                                               kind: ForgedKind) -> None:
    sandbox = manual(make_sandbox, seed=4, forged_rate=1.0, forged_kinds=(kind,))
    reelhook = reelhook_factory(sandbox)
    task_id = wan_task(client, sandbox, reelhook.url)
    finish(sandbox, task_id)
    forged = sandbox.forged_deliveries
    assert [f.kind for f in forged] == [kind, kind]  # one beside each real webhook
    for record in forged:
        assert (record.response_status, record.response_json()) == EXPECTED_ANSWER[kind]
        assert record.task_id == task_id
        claimed = record.claimed_task_id
        assert (claimed != task_id) == (kind == "fake_task")
        assert b"/files/forged-" in record.body and b'"COMPLETED"' in record.body
    if kind == "replay":
        real_ids = [d.delivery_id for d in sandbox.tasks[task_id].deliveries]
        assert sorted(f.headers["webhook-id"] for f in forged) == sorted(real_ids)
    if kind == "stale_timestamp":
        assert all(int(f.headers["webhook-timestamp"]) < time.time() - 300 for f in forged)
    if kind == "missing_token":
        assert all("token=" not in f.url for f in forged)
    assert [body["status"] for body in reelhook.applied] == ["IN_PROGRESS", "COMPLETED"]
    assert all("forged" not in str(body) for body in reelhook.applied)
    assert sandbox.fault_counts()["forged_sent"] == 2


def test_forged_deliveries_mixed_with_chaos_never_change_state(make_sandbox: MakeSandbox, client: httpx.Client,
                                                               reelhook_factory: Callable[[ProviderSandbox],
                                                                                          Reelhook]) -> None:
    sandbox = manual(make_sandbox, seed=9, forged_rate=1.0, webhook_copies_max=2, webhook_shuffle=True,
                     webhook_jitter_seconds=0.02)
    reelhook = reelhook_factory(sandbox)
    tasks = [wan_task(client, sandbox, reelhook.url) for _ in range(4)]
    callback = {**AIHUBMAX_BODY, "callback_url": reelhook.url}
    tasks += [submit(client, sandbox, "aihubmax", AIHUBMAX_CREATE, callback).json()["id"] for _ in range(3)]
    for task_id in tasks:
        finish(sandbox, task_id)
    forged = sandbox.forged_deliveries
    assert len(forged) == 4 * 2 + 3 * 2
    kinds = {f.kind for f in forged}
    assert {f.kind for f in forged if f.task_id.startswith("task-unified-")} <= {"bad_token", "missing_token",
                                                                                   "fake_task"}
    assert len(kinds) >= 4
    for record in forged:
        status, answer = record.response_status, record.response_json()
        assert status in (401, 404) or answer == {"applied": False, "duplicate": True}, record
    assert all("forged" not in str(body) for body in reelhook.applied)
    assert sandbox.fault_counts()["forged_url_fetches"] == 0


def test_token_kinds_need_a_token_to_tamper_with(make_sandbox: MakeSandbox, client: httpx.Client,
                                                 receiver: Receiver) -> None:
    sandbox = manual(make_sandbox, forged_rate=1.0, forged_kinds=("bad_token", "missing_token"))
    finish(sandbox, wan_task(client, sandbox, receiver.url))  # no ?token= in this URL
    assert sandbox.forged_deliveries == []


def test_forged_result_urls_are_counted_when_fetched(make_sandbox: MakeSandbox, client: httpx.Client,
                                                     receiver: Receiver) -> None:
    sandbox = manual(make_sandbox, forged_rate=1.0, forged_kinds=("fake_task",))
    task_id = wan_task(client, sandbox, receiver.url)
    sandbox.advance(task_id)
    assert sandbox.wait_for_webhooks()
    [record] = sandbox.forged_deliveries
    url = record.body.decode().split('"generated":["')[1].split('"')[0]
    assert fetch(url)[0] == 404
    assert sandbox.fault_counts()["forged_url_fetches"] == 1


# -- download faults -------------------------------------------------------------------------------------


def test_truncated_downloads_close_early(make_sandbox: MakeSandbox, client: httpx.Client) -> None:
    sandbox = make_sandbox(faults=Faults(truncate_rate=1.0))
    _, url = completed_url(client, sandbox)
    size = len(sandbox.config.video_bytes)
    with httpx.Client(timeout=5) as fresh, fresh.stream("GET", url) as response:
        assert int(response.headers["content-length"]) == size
        got = bytearray()
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                got += chunk
    assert bytes(got) == sandbox.config.video_bytes[: size // 2]
    assert client.head(url).status_code == 200  # HEAD is never faulted
    assert sandbox.fault_counts()["truncated"] == 1


def test_stalled_downloads_pause_halfway(make_sandbox: MakeSandbox, client: httpx.Client) -> None:
    sandbox = make_sandbox(faults=Faults(stall_rate=1.0, stall_seconds=0.6))
    _, url = completed_url(client, sandbox)
    with pytest.raises(httpx.ReadTimeout):
        fetch(url, timeout=0.2)
    started = time.monotonic()
    status, data = fetch(url, timeout=5)
    assert time.monotonic() - started >= 0.5
    assert (status, data) == (200, sandbox.config.video_bytes)
    assert sandbox.fault_counts()["stalled"] == 2


def test_expired_links_at_random(make_sandbox: MakeSandbox, client: httpx.Client) -> None:
    sandbox = make_sandbox(faults=Faults(seed=6, expire_rate=0.5))
    _, url = completed_url(client, sandbox)
    answers = [fetch(url) for _ in range(10)]
    rng = random.Random(6)
    expected = [rng.random() < 0.5 for _ in range(10)]
    assert [status == 403 for status, _ in answers] == expected
    assert all(b"Request has expired" in body for status, body in answers if status == 403)
    counts = sandbox.fault_counts()
    assert (counts["expired"], counts["downloads_ok"]) == (sum(expected), 10 - sum(expected))


@pytest.mark.parametrize("kind", ["truncate", "stall", "expire", "error"])
def test_the_first_downloads_of_a_task_fail_then_succeed(make_sandbox: MakeSandbox, client: httpx.Client,
                                                         kind: str) -> None:
    sandbox = make_sandbox(faults=Faults(download_failures_before_success=2, download_failure_kind=kind,
                                         stall_seconds=0.3))

    def fails(url: str) -> None:
        if kind == "truncate":
            with pytest.raises(httpx.RemoteProtocolError):
                fetch(url)
        elif kind == "stall":
            with pytest.raises(httpx.ReadTimeout):
                fetch(url, timeout=0.1)
        else:
            assert fetch(url)[0] == {"expire": 403, "error": 500}[kind]

    first_task, first_url = completed_url(client, sandbox)
    second_task, second_url = completed_url(client, sandbox)
    for url in (first_url, first_url, second_url, second_url):  # counted per task
        fails(url)
    assert fetch(first_url) == (200, sandbox.video_bytes_for(first_task))
    assert fetch(second_url) == (200, sandbox.video_bytes_for(second_task))
    counts = sandbox.fault_counts()
    assert counts["downloads_ok"] == 2
    assert counts[{"truncate": "truncated", "stall": "stalled", "expire": "expired", "error": "download_errors"}[kind]] == 4


# -- distinct and padded result files --------------------------------------------------------------------


def boxes(data: bytes) -> list[tuple[bytes, int]]:
    """The top-level ISO-BMFF boxes: (type, size); asserts they cover the file exactly."""
    found: list[tuple[bytes, int]] = []
    position = 0
    while position < len(data):
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        if size == 1:
            size = struct.unpack(">Q", data[position + 8 : position + 16])[0]
        assert size >= 8
        found.append((kind, size))
        position += size
    assert position == len(data)
    return found


def test_distinct_videos_differ_per_task(make_sandbox: MakeSandbox, client: httpx.Client) -> None:
    sandbox = make_sandbox(distinct_videos=True)
    sample = sandbox.config.video_bytes
    downloads = {}
    for _ in range(2):
        task_id, url = completed_url(client, sandbox)
        status, data = fetch(url)
        assert status == 200
        downloads[task_id] = data
        assert data == sandbox.video_bytes_for(task_id)
        assert hashlib.sha256(data).hexdigest() == sandbox.sha256_for(task_id) != sandbox.served_sha256
        assert data.startswith(sample)
        assert boxes(data)[-1][0] == b"free" and task_id.encode() in data[len(sample):]
        assert boxes(data)[:-1] == boxes(sample)
    first, second = downloads.values()
    assert first != second
    assert sandbox.served_sha256 == hashlib.sha256(sample).hexdigest()  # still the sample's hash


def test_padded_videos_stream_with_ranges(make_sandbox: MakeSandbox, client: httpx.Client) -> None:
    size = 5 * 1024 * 1024 + 3
    sandbox = make_sandbox(distinct_videos=True, video_size_bytes=size)
    task_id, url = completed_url(client, sandbox)
    digest = hashlib.sha256()
    received = 0
    with client.stream("GET", url) as response:
        assert (response.status_code, int(response.headers["content-length"])) == (200, size)
        for chunk in response.iter_bytes():
            digest.update(chunk)
            received += len(chunk)
    assert received == size and digest.hexdigest() == sandbox.sha256_for(task_id)
    tail = client.get(url, headers={"Range": "bytes=-16"})
    assert (tail.status_code, tail.content) == (206, bytes(16))
    assert tail.headers["content-range"] == f"bytes {size - 16}-{size - 1}/{size}"
    assert boxes(sandbox.video_bytes_for(task_id))[-1] == (b"free", size - len(sandbox.config.video_bytes))


def test_huge_videos_are_generated_lazily() -> None:
    base = b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00"
    huge = TaskVideo(base, "task-1", 5 * 1024**3)  # needs the 64-bit box size
    assert huge.size == 5 * 1024**3
    head = b"".join(huge.chunks(0, 63))
    assert head.startswith(base)
    assert struct.unpack(">I4sQ", head[16:32]) == (1, b"free", huge.size - len(base))
    assert b"task-1" in head
    assert b"".join(huge.chunks(huge.size - 10)) == bytes(10)
    assert max(len(c) for c in huge.chunks(0, 10 * 1024 * 1024)) <= 1 << 20
    small = TaskVideo(base)
    assert (small.size, small.read(), small.has_box) == (len(base), base, False)


def test_first_download_faults_are_met_once_each_whatever_the_draws(make_sandbox: MakeSandbox,
                                                                    client: httpx.Client) -> None:
    sandbox = make_sandbox(faults=Faults(first_download_faults=["expire", "error"]))
    first_task, first_url = completed_url(client, sandbox)
    second_task, second_url = completed_url(client, sandbox)
    assert fetch(first_url)[0] == 403  # sandbox-wide order, not per task
    assert fetch(second_url)[0] == 500
    assert fetch(first_url) == (200, sandbox.video_bytes_for(first_task))
    assert fetch(second_url) == (200, sandbox.video_bytes_for(second_task))
    counts = sandbox.fault_counts()
    assert (counts["expired"], counts["download_errors"], counts["downloads_ok"]) == (1, 1, 2)


def test_marked_tasks_are_counted_and_their_faults_recorded(make_sandbox: MakeSandbox,
                                                            client: httpx.Client) -> None:
    sandbox = make_sandbox(faults=Faults(first_download_faults=["html"]))
    ids = {marker: submit(client, sandbox, "uniall", UNIALL_CREATE,
                          {**UNIALL_MINIMAL, "prompt": f"a heron {marker}"}).json()["id"]
           for marker in ("NEVER_FINISH", "TASK_VANISHES", "NOT_VIDEO_ALWAYS")}
    vanished = client.get(f"{sandbox.base_url('uniall')}/v1/videos/{ids['TASK_VANISHES']}",
                          headers=AUTH["uniall"])
    assert vanished.status_code == 404
    # Every GET of a NOT_VIDEO_ALWAYS task's link is junk, and it uses up no sandbox-wide fault.
    junk_url = sandbox.result_url(sandbox.wait_for(ids["NOT_VIDEO_ALWAYS"]))
    for _ in range(3):
        status, body = fetch(junk_url)
        assert status == 200 and body != sandbox.video_bytes_for(ids["NOT_VIDEO_ALWAYS"])
    task_id, url = completed_url(client, sandbox)
    assert fetch(url)[0] == 200 and fetch(url)[0] == 200  # an HTML page, then the video
    assert sandbox.download_outcomes(ids["NOT_VIDEO_ALWAYS"]) == ["not_video"] * 3
    assert sandbox.download_outcomes(task_id) == ["html", "ok"]
    assert sandbox.clean_downloads(task_id) == 1 and sandbox.clean_downloads(ids["NOT_VIDEO_ALWAYS"]) == 0
    counts = sandbox.fault_counts()
    assert (counts["tasks_never_finishing"], counts["tasks_vanished"], counts["tasks_not_video"]) == (1, 1, 1)
    assert (counts["task_missing_404s"], counts["not_video_bodies"], counts["html_answers"]) == (1, 3, 1)
    assert sandbox.tasks[ids["NEVER_FINISH"]].phase is not Phase.COMPLETED
