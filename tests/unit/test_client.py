"""reelhook_client against an in-memory API (httpx.MockTransport): every method, sync and async.

Each test runs twice, through ``Client`` and through ``AsyncClient`` (the ``api`` fixture), so
the two cannot drift apart. Sleeping and the clock are replaced: retries and waits are
checked by the delays asked for, never by time passing.
"""

from __future__ import annotations

import asyncio
import email.message
import email.utils
import hashlib
import inspect
import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import reelhook_client.async_client as async_module
import reelhook_client.client as sync_module
from reelhook_client import (
    ApiUnreachable,
    AsyncClient,
    AuthError,
    Client,
    ConfigurationError,
    Conflict,
    IntegrityError,
    Job,
    JobCancelled,
    JobFailed,
    JobPage,
    ModelInfo,
    NoOutputs,
    NotFound,
    ProviderHealth,
    RateLimited,
    ServerError,
    UnexpectedResponse,
    ValidationFailed,
    WaitTimeout,
)
from reelhook_client._core import MAX_RETRY_AFTER, RetryPolicy
from tests.client_fake import API, FILES, PROVIDERS, VEO, FakeApi, error, stamp

IMG = "https://example.com/ref.png"


class FakeTime:
    """The clock and sleep both clients use: sleeping moves the clock and is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeAsyncio:
    def __init__(self, clock: FakeTime) -> None:
        self.clock = clock

    async def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)


class Driver:
    """One client, sync or async, with each method called to completion (iterators collected)."""

    def __init__(self, kind: str, fake: FakeApi, clock: FakeTime, **options: Any) -> None:
        self.kind, self.fake, self.clock = kind, fake, clock
        options = {"auth": None} | options
        if kind == "sync":
            self.client: Client | AsyncClient = Client(API, transport=fake.transport(), **options)
        else:
            self.loop = asyncio.new_event_loop()
            self.client = AsyncClient(API, transport=fake.transport(), **options)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if self.kind == "sync":
                return list(result) if inspect.isgenerator(result) else result
            if inspect.isasyncgen(result):
                return self.loop.run_until_complete(_collect(result))
            return self.loop.run_until_complete(result)

        return call

    def close(self) -> None:
        if self.kind == "sync":
            self.client.close()  # type: ignore[union-attr]
        else:
            self.loop.run_until_complete(self.client.aclose())  # type: ignore[union-attr]
            self.loop.close()


async def _collect(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake_time = FakeTime()
    monkeypatch.setattr(sync_module, "time", fake_time)
    monkeypatch.setattr(async_module, "time", fake_time)
    monkeypatch.setattr(async_module, "asyncio", FakeAsyncio(fake_time))
    return fake_time


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi()


@pytest.fixture(params=["sync", "async"])
def connect(request: pytest.FixtureRequest, fake: FakeApi, clock: FakeTime):
    drivers: list[Driver] = []

    def make(**options: Any) -> Driver:
        driver = Driver(request.param, fake, clock, **options)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.close()


@pytest.fixture
def api(connect) -> Driver:
    return connect()


# -- submit ---------------------------------------------------------------------------------------


def test_submit_sends_the_fields_and_a_fresh_idempotency_key(api: Driver, fake: FakeApi) -> None:
    job = api.submit(VEO, prompt="a walk", reference_images=[IMG], seed=None, audio=False)
    assert isinstance(job, Job) and job.status == "queued" and job.model == VEO
    assert job.created_at == datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC)
    [sent] = fake.calls("POST", "/v1/jobs")
    # seed=None means "not given": left out, so the model's default applies.
    assert json.loads(sent.content) == {"model": VEO, "prompt": "a walk", "reference_images": [IMG], "audio": False}
    assert sent.headers["content-type"] == "application/json"
    assert re.fullmatch(r"rh-[0-9a-f]{32}", sent.headers["idempotency-key"])
    api.submit(VEO, prompt="another", reference_images=[IMG])
    keys = [r.headers["idempotency-key"] for r in fake.calls("POST", "/v1/jobs")]
    assert len(set(keys)) == 2 and len(fake.jobs) == 2


def test_a_retried_submit_never_makes_a_second_job(api: Driver, fake: FakeApi, clock: FakeTime) -> None:
    def created_then_lost(request: httpx.Request) -> httpx.Response:
        fake.create(request)  # the API made the job; its answer never arrived
        raise httpx.ReadError("connection reset", request=request)

    fake.fault("/v1/jobs", created_then_lost, httpx.Response(503, headers={"retry-after": "2"}, json={}))
    job = api.submit(VEO, prompt="once", reference_images=[IMG])
    posts = fake.calls("POST", "/v1/jobs")
    assert len(posts) == 3 and len(fake.jobs) == 1 and job.id in fake.jobs
    assert len({p.headers["idempotency-key"] for p in posts}) == 1  # the same key and the same bytes each time
    assert len({p.content for p in posts}) == 1
    first, second = clock.sleeps
    assert 0.25 <= first <= 0.5 and second == 2.0  # backoff with jitter, then the server's Retry-After


def test_your_idempotency_key_replays_the_job_and_another_body_conflicts(api: Driver, fake: FakeApi) -> None:
    first = api.submit(VEO, idempotency_key="order-1", prompt="p", reference_images=[IMG])
    again = api.submit(VEO, idempotency_key="order-1", prompt="p", reference_images=[IMG])
    assert again.id == first.id and len(fake.jobs) == 1
    with pytest.raises(Conflict) as caught:
        api.submit(VEO, idempotency_key="order-1", prompt="changed", reference_images=[IMG])
    assert caught.value.status == 409 and caught.value.code == "idempotency_key_reused"
    assert len(fake.calls("POST", "/v1/jobs")) == 3  # a 409 is a verdict: not retried


def test_validation_errors_carry_every_field_as_the_api_sent_it(api: Driver, fake: FakeApi) -> None:
    with pytest.raises(ValidationFailed) as caught:
        api.submit(VEO, prompt="square", aspect_ratio="1:1")
    exc = caught.value
    body = json.loads(fake.create(fake.calls("POST", "/v1/jobs")[0]).content)  # the same refusal again
    assert exc.fields == body["error"]["fields"]  # exactly, allowed lists and ranges included
    assert exc.status == 422 and exc.code == "validation_error" and exc.body == body
    assert [(e.field, e.allowed) for e in exc.errors] == [("aspect_ratio", ["16:9", "9:16"]),
                                                          ("reference_images", {"min": 1, "max": 3})]
    assert "[validation_error] (HTTP 422)" in str(exc)
    assert len(fake.calls("POST", "/v1/jobs")) == 1


# -- get and retries ------------------------------------------------------------------------------


def test_get_reads_a_job_and_an_unknown_one_is_not_found(api: Driver, fake: FakeApi) -> None:
    job = api.submit(VEO, prompt="p", reference_images=[IMG])
    assert api.get(job.id).status == "submitted"
    with pytest.raises(NotFound) as caught:
        api.get("job_" + "f" * 32)
    assert caught.value.code == "not_found" and caught.value.path == "/v1/jobs/job_" + "f" * 32
    # An id is one path segment, whatever it holds: it cannot reach another route.
    with pytest.raises(NotFound):
        api.get("../models")
    assert fake.requests[-1].url.raw_path == b"/v1/jobs/..%2Fmodels"


def test_gets_are_retried_on_connection_errors_5xx_and_429(api: Driver, fake: FakeApi, clock: FakeTime) -> None:
    job = api.submit(VEO, prompt="p", reference_images=[IMG])
    path = f"/v1/jobs/{job.id}"
    fake.fault(path, httpx.ConnectError("refused"), httpx.Response(500, json={"message": "Internal Server Error"}),
               httpx.Response(429, headers={"retry-after": "1"}, json={"message": "Too Many Requests"}))
    assert api.get(job.id).id == job.id
    assert len(fake.calls("GET", path)) == 4
    assert 0.25 <= clock.sleeps[0] <= 0.5 and 0.5 <= clock.sleeps[1] <= 1.0 and clock.sleeps[2] == 1.0


def _raise(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc

    return answer


# Factories: a Response object must not be shared between the sync and the async run.
@pytest.mark.parametrize("answer, raised", [
    (lambda request: httpx.Response(502, json={"message": "Bad Gateway"}), ServerError),
    (lambda request: httpx.Response(429, json={"message": "Too Many Requests"}), RateLimited),
    (_raise(httpx.ConnectError("refused")), ApiUnreachable),
    (_raise(httpx.ReadTimeout("slow")), ApiUnreachable),
], ids=["502", "429", "refused", "timeout"])
def test_retries_end_with_the_exception_for_the_last_answer(connect, fake: FakeApi, answer, raised) -> None:
    api = connect(max_retries=2)
    fake.fault("/v1/models", answer, answer, answer)
    with pytest.raises(raised):
        api.models()
    assert len(fake.calls("GET", "/v1/models")) == 3


def test_a_refusal_is_never_retried(api: Driver, fake: FakeApi) -> None:
    fake.fault("/v1/models", httpx.Response(403, json={"message": "Forbidden"}))
    with pytest.raises(AuthError) as caught:
        api.models()
    assert caught.value.status == 403 and caught.value.message == "Forbidden" and caught.value.code is None
    fake.fault("/v1/models", error(400, "invalid_json", "the body is not valid JSON"))
    with pytest.raises(ValidationFailed) as refused:
        api.models()
    assert refused.value.fields == [] and refused.value.code == "invalid_json"
    assert len(fake.calls("GET", "/v1/models")) == 2


def test_retry_after_is_read_as_seconds_or_a_date_and_capped() -> None:
    policy = RetryPolicy()
    assert policy.delay(0, httpx.Response(503, headers={"retry-after": "7"})) == 7.0
    assert policy.delay(0, httpx.Response(503, headers={"retry-after": "86400"})) == MAX_RETRY_AFTER
    soon = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 0 < policy.delay(0, httpx.Response(503, headers={"retry-after": soon})) <= 30
    assert 4.0 <= policy.delay(5, httpx.Response(503, headers={"retry-after": "soon"})) <= 8.0  # unreadable: backoff


# -- wait and run ---------------------------------------------------------------------------------


def test_wait_reports_each_change_once_and_returns_the_finished_job(api: Driver, clock: FakeTime) -> None:
    seen: list[tuple[str, int | None]] = []
    job = api.submit(VEO, prompt="p", reference_images=[IMG])
    done = api.wait(job, poll_interval=1.5, on_update=lambda j: seen.append((j.status, j.progress)))
    # The script shows running 10% twice: reported once.
    assert seen == [("queued", None), ("submitted", None), ("running", 10), ("running", 60), ("storing", None),
                    ("succeeded", None)]
    assert done.status == "succeeded" and done.done and done.outputs[0].media.width == 320
    assert clock.sleeps == [1.5] * 6
    assert [e.status for e in done.events] == ["queued", "submitted", "running", "storing", "succeeded"]


def test_async_callbacks_may_be_coroutines(fake: FakeApi, clock: FakeTime, tmp_path: Path) -> None:
    seen: list[tuple[str, int | None]] = []
    progress: list[int] = []

    async def record(job: Job) -> None:
        seen.append((job.status, job.progress))

    async def advance(done: int, _total: int | None) -> None:
        progress.append(done)

    async def main() -> None:
        async with AsyncClient(API, auth=None, transport=fake.transport()) as client:
            job = await client.submit(VEO, prompt="p", reference_images=[IMG])
            done = await client.wait(job.id, poll_interval=0, on_update=record)
            await client.download(done, tmp_path, on_progress=advance)

    asyncio.run(main())
    # Waiting from an id: the first read already shows it submitted.
    assert seen == [("submitted", None), ("running", 10), ("running", 60), ("storing", None), ("succeeded", None)]
    assert progress[-1] == len(fake.video)


def test_wait_gives_up_with_the_last_job_seen(clock: FakeTime, connect) -> None:
    api = connect()
    api.fake.script = [("running", 5)] * 100
    job = api.submit(VEO, prompt="p", reference_images=[IMG])
    with pytest.raises(WaitTimeout) as caught:
        api.wait(job, timeout=5, poll_interval=2)
    assert caught.value.job.status == "running" and caught.value.timeout == 5
    assert clock.sleeps == [2, 2, 1]  # the last sleep ends at the deadline, not past it
    assert "still running" in str(caught.value)


def test_run_returns_the_succeeded_job_with_its_outputs(api: Driver, fake: FakeApi) -> None:
    job = api.run(VEO, prompt="p", reference_images=[IMG], poll_interval=0, client_reference="r1")
    assert job.succeeded and job.client_reference == "r1"
    [output] = job.outputs
    assert output.sha256 == hashlib.sha256(fake.video).hexdigest() and output.bytes == len(fake.video)


def test_run_raises_job_failed_carrying_the_job(api: Driver) -> None:
    with pytest.raises(JobFailed) as caught:
        api.run(VEO, prompt="FAIL_ME", reference_images=[IMG], poll_interval=0)
    assert caught.value.job.status == "failed" and caught.value.job.error.code == "provider_failed"
    assert "provider_failed: the provider said no" in str(caught.value)


def test_run_raises_job_cancelled_for_a_cancelled_job(api: Driver, fake: FakeApi) -> None:
    fake.script = [("cancelled", None)]
    with pytest.raises(JobCancelled) as caught:
        api.run(VEO, prompt="p", reference_images=[IMG], poll_interval=0)
    assert isinstance(caught.value, JobFailed) and caught.value.job.status == "cancelled"


# -- list -------------------------------------------------------------------------------------------


def seven_jobs(api: Driver) -> list[Job]:
    return [api.submit(VEO, prompt=f"p{n}", reference_images=[IMG], client_reference="ab"[n % 2])
            for n in range(7)]


def test_list_follows_next_cursor_until_the_last_page(api: Driver, fake: FakeApi) -> None:
    made = seven_jobs(api)
    listed = api.list(page_size=3)
    assert [j.id for j in listed] == [j.id for j in made]
    pages = fake.calls("GET", "/v1/jobs")
    assert [dict(p.url.params) for p in pages] == [{"limit": "3"}, {"limit": "3", "cursor": "c3"},
                                                   {"limit": "3", "cursor": "c6"}]


def test_list_stops_at_limit_asking_for_no_more_than_it_needs(api: Driver, fake: FakeApi) -> None:
    made = seven_jobs(api)
    listed = api.list(limit=5, page_size=3)
    assert [j.id for j in listed] == [j.id for j in made[:5]]
    assert [p.url.params["limit"] for p in fake.calls("GET", "/v1/jobs")] == ["3", "2"]


def test_list_sends_every_filter(api: Driver, fake: FakeApi) -> None:
    seven_jobs(api)
    after = datetime(2026, 3, 1, 13, 0, 2, tzinfo=UTC) + timedelta(hours=-1)  # any zone: sent as UTC with Z
    listed = api.list(status="queued", model=VEO, provider="freepik", client_reference="a", created_after=after,
                      created_before=stamp(6))
    assert [j.client_reference for j in listed] == ["a", "a"]  # jobs 2 and 4 (created at :03 and :05)
    [sent] = fake.calls("GET", "/v1/jobs")
    assert dict(sent.url.params) == {"status": "queued", "model": VEO, "provider": "freepik", "client_reference": "a",
                                     "created_after": "2026-03-01T12:00:02.000Z",
                                     "created_before": "2026-03-01T12:00:06.000Z", "limit": "100"}


def test_list_page_gives_one_page_and_its_cursor(api: Driver, fake: FakeApi) -> None:
    made = seven_jobs(api)
    page = api.list_page(limit=4)
    assert isinstance(page, JobPage) and [j.id for j in page.jobs] == [j.id for j in made[:4]]
    assert page.next_cursor == "c4"
    rest = api.list_page(limit=4, cursor=page.next_cursor)
    assert len(rest.jobs) == 3 and rest.next_cursor is None
    with pytest.raises(ConfigurationError):
        api.list_page(limit=101)
    with pytest.raises(ConfigurationError):
        api.list(limit=0)
    assert len(fake.calls("GET", "/v1/jobs")) == 2  # refused before any request


def test_list_is_lazy(fake: FakeApi, clock: FakeTime) -> None:
    with Client(API, auth=None, transport=fake.transport()) as client:
        for n in range(5):
            client.submit(VEO, prompt=f"p{n}", reference_images=[IMG])
        jobs = client.list(page_size=2)
        next(jobs)
        assert len(fake.calls("GET", "/v1/jobs")) == 1
        assert len(list(jobs)) == 4 and len(fake.calls("GET", "/v1/jobs")) == 3


# -- cancel and models ------------------------------------------------------------------------------


def test_cancel_answers_the_cancelled_job(api: Driver, fake: FakeApi) -> None:
    job = api.submit(VEO, prompt="p", reference_images=[IMG])
    cancelled = api.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.done
    assert cancelled.cancellation.provider_task_may_continue is True
    assert cancelled.cancellation.at == datetime(2026, 3, 1, 12, 0, 2, tzinfo=UTC)
    assert fake.calls("POST", f"/v1/jobs/{job.id}/cancel")


def test_cancel_refuses_a_finished_job_and_an_unknown_one(api: Driver, fake: FakeApi) -> None:
    job = api.run(VEO, prompt="p", reference_images=[IMG], poll_interval=0)
    with pytest.raises(Conflict) as caught:
        api.cancel(job.id)
    assert caught.value.code == "job_finished" and caught.value.status == 409
    with pytest.raises(NotFound):
        api.cancel("job_" + "e" * 32)


def test_models_are_typed_and_keep_what_the_client_does_not_know(api: Driver) -> None:
    [entry] = api.models()
    assert isinstance(entry, ModelInfo) and entry.id == VEO and entry.provider == "freepik"
    assert entry.defaults["audio"].value is True and entry.defaults["audio"].source == "document"
    assert entry.to_dict()["future_key"] == [1]


def test_providers_gives_each_providers_circuit_budget_and_tasks_in_flight(api: Driver, fake: FakeApi) -> None:
    freepik, uniall = api.providers()
    assert isinstance(freepik, ProviderHealth) and freepik.name == "freepik"
    assert freepik.circuit.state == "open" and freepik.circuit.consecutive_failures == 5
    assert freepik.circuit.open_until == 1767225660.5
    assert freepik.rate.requests_per_second == 9.5 and freepik.rate.booked_ahead_seconds == 0.2
    assert (freepik.in_flight.tasks, freepik.in_flight.cap) == (3, 50)
    assert uniall.rate.requests_per_second is None and uniall.in_flight.cap is None  # unlimited, no cap
    assert uniall.circuit.open_until is None
    assert freepik.to_dict() == PROVIDERS["providers"][0]  # unknown keys kept, as sent
    assert [r.url.path for r in fake.requests] == ["/v1/providers"]


def test_a_providers_answer_that_is_not_one_is_unexpected(api: Driver, fake: FakeApi) -> None:
    fake.fault("/v1/providers", httpx.Response(200, json={"providers": [{"name": "freepik"}]}))
    with pytest.raises(UnexpectedResponse, match="not a reelhook ProviderList"):
        api.providers()


def test_unknown_fields_are_kept_and_to_dict_is_the_json_as_sent(api: Driver, fake: FakeApi) -> None:
    job = api.submit(VEO, prompt="p", reference_images=[IMG])
    fake.jobs[job.id] |= {"future": {"nested": True}, "attempts": [
        {"provider": "freepik", "model": VEO, "task_id": "t1", "outcome": "running", "started_at": stamp(2),
         "ended_at": None, "reason": None, "cost": 3}], "route": {"provider": "freepik", "model": VEO}}
    read = api.get(job.id)
    assert read.future == {"nested": True}  # type: ignore[attr-defined]
    assert read.attempts[0].task_id == "t1" and read.attempts[0].cost == 3  # type: ignore[attr-defined]
    assert read.route.provider == "freepik"
    assert read.to_dict() == fake.view(job.id)  # nothing has changed on the fake since it answered
    assert read.to_dict()["created_at"] == stamp(1)  # as sent, not re-rendered by the client


# -- download ---------------------------------------------------------------------------------------


def test_download_streams_checks_and_renames_into_place(connect, fake: FakeApi, tmp_path: Path) -> None:
    api = connect(auth="jwt", token="secret-token")
    job = api.run(VEO, prompt="p", reference_images=[IMG], poll_interval=0)
    progress: list[tuple[int, int | None]] = []
    written = api.download(job, tmp_path, on_progress=lambda done, total: progress.append((done, total)))
    assert written == tmp_path / f"{job.id}.mp4" and written.read_bytes() == fake.video
    assert progress and progress[-1] == (len(fake.video), len(fake.video))
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert list(tmp_path.iterdir()) == [written]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert written.stat().st_mode & 0o777 == 0o666 & ~umask  # a plain file, not a private temporary one
    [link] = [r for r in fake.requests if str(r.url).startswith(FILES)]
    assert "authorization" not in link.headers  # the API's token never goes to the storage link
    named = api.download(job.id, tmp_path / "named.mp4")
    assert named.read_bytes() == fake.video


def test_a_download_that_does_not_match_leaves_nothing(api: Driver, fake: FakeApi, tmp_path: Path) -> None:
    job = api.run(VEO, prompt="p", reference_images=[IMG], poll_interval=0)
    target = tmp_path / "video.mp4"
    target.write_bytes(b"the previous video")
    fake.served_video = fake.video[:-1] + b"!"  # same size, other bytes
    with pytest.raises(IntegrityError) as caught:
        api.download(job, target)
    assert caught.value.expected == job.outputs[0].sha256
    assert caught.value.received == hashlib.sha256(fake.served_video).hexdigest()
    assert target.read_bytes() == b"the previous video"  # untouched
    assert list(tmp_path.iterdir()) == [target]
    fake.served_video = fake.video[:100]  # short
    with pytest.raises(IntegrityError):
        api.download(job, tmp_path)
    assert list(tmp_path.iterdir()) == [target]


def test_an_expired_link_is_renewed_once_and_a_busy_one_retried(api: Driver, fake: FakeApi, tmp_path: Path,
                                                                 clock: FakeTime) -> None:
    job = api.run(VEO, prompt="p", reference_images=[IMG], poll_interval=0)
    fake.expired_links.add(httpx.URL(job.outputs[0].download_url).query.decode())
    fake.fault(f"/{job.id}/0.mp4", httpx.Response(503, headers={"retry-after": "0"}))
    assert api.download(job, tmp_path).read_bytes() == fake.video
    assert len(fake.calls("GET", f"/v1/jobs/{job.id}")) >= 1 and clock.sleeps[-1] == 0


def test_download_needs_a_succeeded_job(api: Driver, tmp_path: Path) -> None:
    job = api.submit(VEO, prompt="p", reference_images=[IMG])
    with pytest.raises(NoOutputs):
        api.download(job, tmp_path)
    failed = api.wait(api.submit(VEO, prompt="FAIL_ME", reference_images=[IMG]), poll_interval=0)
    with pytest.raises(JobFailed):
        api.download(failed, tmp_path)
    done = api.wait(job, poll_interval=0)
    with pytest.raises(NoOutputs, match="no output 1"):
        api.download(done, tmp_path, index=1)
    assert list(tmp_path.iterdir()) == []


# -- auth and configuration -----------------------------------------------------------------------


def test_a_jwt_token_callable_is_asked_on_every_request(connect, fake: FakeApi) -> None:
    tokens = iter(["t1", "t2", "t3"])
    api = connect(auth="jwt", token=lambda: next(tokens))
    api.models()
    api.models()
    assert [r.headers["authorization"] for r in fake.requests] == ["Bearer t1", "Bearer t2"]


def test_setup_errors_are_raised_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuthError) as caught:
        Client(API, auth="jwt")
    assert caught.value.status is None and "token" in str(caught.value)
    for url in ("ftp://example.com", "not a url", "http://"):
        with pytest.raises(ConfigurationError):
            Client(url, auth=None)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(AuthError, match="region"):
        Client("https://api.example.com", auth="iam")


def test_iam_signs_the_exact_bytes_sent(monkeypatch: pytest.MonkeyPatch, fake: FakeApi, clock: FakeTime) -> None:
    from reelhook_local.front import AuthRefused, verify_sigv4

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # auth defaults to "auto": IAM for an execute-api host, in the host's region.
    with Client(API, transport=fake.transport()) as client:
        assert client.auth_mode == "iam"
        client.submit(VEO, prompt="ünïcode prompt", reference_images=[IMG])
    [sent] = fake.calls("POST", "/v1/jobs")

    def verify(body: bytes) -> dict[str, Any]:
        headers = email.message.Message()
        for name, value in sent.headers.items():
            headers[name] = value
        target = sent.url.raw_path.decode()
        return verify_sigv4("POST", target, headers, body, credentials={"AKIDEXAMPLE": "secret"},
                            region="eu-west-1")

    assert verify(sent.content)  # API Gateway's check, as the local front does it
    assert "idempotency-key" in sent.headers["authorization"]  # the key is signed: it cannot be swapped
    with pytest.raises(AuthRefused):
        verify(sent.content.replace(b"prompt", b"Prompt"))


def test_both_clients_offer_the_same_methods() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {name: inspect.signature(member) for name, member in vars(cls).items()
                if inspect.isfunction(member) and not name.startswith("_") and name not in ("close", "aclose")}

    sync, asynchronous = public(Client), public(AsyncClient)
    assert sync.keys() == asynchronous.keys() >= {"submit", "get", "wait", "run", "list", "list_page", "cancel",
                                                  "models", "providers", "download"}
    for name in sync:
        assert list(sync[name].parameters) == list(asynchronous[name].parameters), name
        assert inspect.iscoroutinefunction(vars(AsyncClient)[name]) or inspect.isasyncgenfunction(
            vars(AsyncClient)[name]), name
