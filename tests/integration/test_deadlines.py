"""Deadlines on every non-terminal phase, tasks the provider no longer knows, the TTL counted
from the terminal state, and job events re-published when the notifier path lost them.

Time moves by patching ``reelhook.clock.now`` (no sleeps, no timed assertions).
"""

from __future__ import annotations

import time

import pytest

from reelhook import clock
from reelhook.adapters.jobs_table import JobStore
from reelhook.services import polling
from tests.integration.notify_support import (
    StreamReader,
    bus_events,
    bus_target,
    enable_integrations,
    notify_messages,
    run_notifier,
)
from tests.integration.test_handlers import VEO, call, freepik_body, webhook_event
from tests.integration.test_reconciler import create, make_due

UNIALL = {"model": "uniall/veo3.1-video-720p", "prompt": "p"}
HOUR = 3600


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> float:
    """Move reelhook's clock ``seconds`` on from now; returns the new now."""
    moved = time.time() + seconds
    monkeypatch.setattr(clock, "now", lambda: moved)
    return moved


def stored(job_id: str) -> dict:
    job = JobStore().get(job_id, consistent=True)
    assert job is not None
    return job


# ---------------------------------------------------------------------------- deadlines


def test_a_task_the_provider_keeps_calling_running_fails_after_the_running_deadline(aws, sandbox, handlers,
                                                                                    monkeypatch):
    job = create(handlers, UNIALL)
    sandbox.force_status(job["provider_task_id"], "running")
    make_due(aws, job["id"])
    later(monkeypatch, 5 * HOUR)
    assert polling.run_pass()["moved_to_running"] == 1  # young enough: still followed
    assert stored(job["id"])["status"] == "running"
    make_due(aws, job["id"])
    later(monkeypatch, 6 * HOUR + 60)
    assert polling.run_pass()["failed_deadline_exceeded"] == 1
    failed = stored(job["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "deadline_exceeded"
    assert failed["events"][-1]["reason"] == "deadline_exceeded"


def test_a_job_queued_for_budget_fails_after_the_queued_deadline(aws, sandbox, handlers, monkeypatch):
    monkeypatch.setenv("UNIALL_MAX_IN_FLIGHT", "1")
    from tests.conftest import reset_caches

    reset_caches()
    first = create(handlers, UNIALL)
    waiting = create(handlers, UNIALL | {"prompt": "second"})
    assert first["status"] == "submitted" and waiting["status"] == "queued"
    make_due(aws, waiting["id"])
    later(monkeypatch, 23 * HOUR)
    assert polling.run_pass()["submit_requeued"] == 1  # not yet: it goes back on the submit queue
    make_due(aws, waiting["id"])
    later(monkeypatch, 24 * HOUR + 60)
    outcomes = polling.run_pass()
    assert outcomes["failed_deadline_exceeded"] == 1
    job = stored(waiting["id"])
    assert job["status"] == "failed" and job["error"]["code"] == "deadline_exceeded"
    assert "submit_started_at" not in job  # never sent


def test_deadlines_are_settings(aws, sandbox, handlers, monkeypatch):
    monkeypatch.setenv("RUNNING_MAX_AGE_SECONDS", "60")
    from tests.conftest import reset_caches

    reset_caches()
    job = create(handlers, UNIALL)
    make_due(aws, job["id"])
    later(monkeypatch, 120)
    assert polling.run_pass()["failed_deadline_exceeded"] == 1


# ---------------------------------------------------------------------------- 404 forever


def forget_task(aws, job_id: str) -> None:
    """The provider no longer knows the job's task: its status GET answers 404."""
    make_due(aws, job_id, provider_task_id="task-the-provider-never-had")


def test_a_task_answered_404_n_polls_in_a_row_fails_as_missing(aws, sandbox, handlers):
    job = create(handlers, UNIALL)
    for _ in range(4):
        forget_task(aws, job["id"])
        assert polling.run_pass()["poll_rejected"] == 1
    assert stored(job["id"])["status"] == "submitted"
    forget_task(aws, job["id"])
    assert polling.run_pass()["failed_task_missing"] == 1
    failed = stored(job["id"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "provider_task_missing"


def test_an_answer_between_404s_resets_the_count(aws, sandbox, handlers):
    job = create(handlers, UNIALL)
    real_task = job["provider_task_id"]
    for _ in range(4):
        forget_task(aws, job["id"])
        polling.run_pass()
    make_due(aws, job["id"], provider_task_id=real_task)
    assert polling.run_pass()["unchanged"] == 1
    assert stored(job["id"]).get("task_missing_polls", 0) == 0
    for _ in range(4):
        forget_task(aws, job["id"])
        assert polling.run_pass()["poll_rejected"] == 1
    assert stored(job["id"])["status"] == "submitted"


# ---------------------------------------------------------------------------- TTL


def test_the_ttl_counts_from_the_terminal_state(aws, sandbox, handlers):
    job = create(handlers, UNIALL)
    assert "expires_at" not in stored(job["id"])  # in flight: never deleted by the TTL
    sandbox.force_status(job["provider_task_id"], "failed")
    make_due(aws, job["id"])
    assert polling.run_pass()["moved_to_failed"] == 1
    failed = stored(job["id"])
    assert failed["status"] == "failed"
    assert abs(failed["expires_at"] - (time.time() + 90 * 86400)) < 120


# ---------------------------------------------------------------------------- lost events


@pytest.fixture
def stack(aws, monkeypatch):
    enable_integrations(monkeypatch, aws)
    return aws


def freepik_fail(handlers, sandbox, body=VEO) -> str:
    job = create(handlers, body)
    task = sandbox.tasks[job["provider_task_id"]]
    event = webhook_event(task, freepik_body(task, "FAILED"), secret=sandbox.config.freepik_webhook_secret)
    assert call(handlers["callback"], event)[1]["status"] == "failed"
    return job["id"]


def test_a_terminal_job_whose_notifier_died_gets_its_event_from_the_sweeper(stack, sandbox, handlers, monkeypatch):
    target = bus_target(stack)
    job_id = freepik_fail(handlers, sandbox, VEO | {"notify_url": "https://hooks.example.com/x"})
    # The notifier never handles the record: every attempt raised, the mapping gave up.
    later(monkeypatch, 60)
    assert polling.run_pass().total() == 0  # inside the grace period the notifier may still come
    assert bus_events(target) == []
    later(monkeypatch, 301)
    assert polling.run_pass()["event_republished"] == 1
    [event] = bus_events(target)
    assert event["detail"]["id"] == job_id and event["detail-type"] == "Video Job Failed"
    [message] = notify_messages(stack)
    assert message["Body"] == f'{{"job_id": "{job_id}", "status": "failed", "attempt": 1}}'
    job = stored(job_id)
    assert job["event_published_at"] and job["notify_queued_at"]
    # Published: it leaves the index, and no later pass publishes it again.
    later(monkeypatch, 3 * HOUR)
    assert polling.run_pass().total() == 0
    assert bus_events(target) == []


def test_the_sweeper_leaves_alone_a_job_whose_event_was_published(stack, sandbox, handlers, monkeypatch):
    target = bus_target(stack)
    reader = StreamReader(stack)
    job_id = freepik_fail(handlers, sandbox)
    assert run_notifier(handlers, reader) == {"batchItemFailures": []}
    [event] = bus_events(target)
    assert event["detail"]["id"] == job_id
    job = stored(job_id)
    assert job["event_published_at"] and "next_check_at" not in job and "active_shard" not in job
    later(monkeypatch, 3 * HOUR)
    assert polling.run_pass().total() == 0
    assert bus_events(target) == []
    # The mark itself is a write on the stream: it publishes nothing more.
    assert run_notifier(handlers, reader) == {"batchItemFailures": []}
    assert bus_events(target) == []
