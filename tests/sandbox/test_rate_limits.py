"""The sandbox refuses what the provider would: sliding-window rate limits, answered 429."""

from __future__ import annotations

import httpx
import pytest

from reelhook_local.sandbox import FREEPIK_LIMITS, RateLimit
from reelhook_local.sandbox.rate_limits import SlidingWindows
from tests.sandbox.support import AUTH, UNIALL_CREATE, UNIALL_MINIMAL, VEO_BODY, VEO_PATH, submit


def test_freepik_limits_are_the_documented_ones():
    # "50 requests/s over a 5-second window, and 10 requests/s averaged over 2 minutes"
    assert (RateLimit(5.0, 250), RateLimit(120.0, 1200)) == FREEPIK_LIMITS


def test_a_window_admits_its_maximum_then_says_when_a_place_frees():
    windows = SlidingWindows((RateLimit(1.0, 3),))
    assert [windows.admit(t) for t in (10.0, 10.2, 10.4)] == [None, None, None]
    assert windows.admit(10.5) == pytest.approx(0.5)  # the request at 10.0 leaves at 11.0
    assert windows.refused == 1
    assert windows.admit(11.0) is None  # refused requests did not count
    assert windows.admit(11.1) == pytest.approx(0.1)


def test_every_limit_holds_at_once():
    windows = SlidingWindows((RateLimit(1.0, 2), RateLimit(10.0, 3)))
    assert windows.admit(0.0) is None
    assert windows.admit(0.1) is None
    assert windows.admit(0.5) == pytest.approx(0.5)  # the 1-s window
    assert windows.admit(1.5) is None
    assert windows.admit(3.0) == pytest.approx(7.0)  # the 10-s window: 0.0 leaves at 10.0


def test_no_limits_admit_everything():
    windows = SlidingWindows(())
    assert all(windows.admit(0.0) is None for _ in range(10_000))


def test_requests_beyond_the_limit_get_the_providers_429(make_sandbox):
    sandbox = make_sandbox(rate_limits={"freepik": (RateLimit(60.0, 2),)})
    with httpx.Client(timeout=5) as client:
        answers = [submit(client, sandbox, "freepik", VEO_PATH, VEO_BODY) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].json() == {"message": "Too many requests"}
        assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
        # Status GETs count too; other providers have their own (here: no) limits.
        task_id = answers[0].json()["data"]["task_id"]
        status = client.get(f"{sandbox.base_url('freepik')}{VEO_PATH}/{task_id}", headers=AUTH["freepik"])
        assert status.status_code == 429
        assert submit(client, sandbox, "uniall", UNIALL_CREATE, UNIALL_MINIMAL).status_code == 200
    assert sandbox.rate_limited("freepik") == 2
    assert sandbox.fault_counts()["rate_limited"] == 2
    assert len([t for t in sandbox.tasks.values() if t.provider == "freepik"]) == 2
