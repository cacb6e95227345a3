"""The chaos suite at a size that fits CI; `make chaos` runs the same with 300 jobs."""

from __future__ import annotations

import os

import pytest
from rich.console import Console

from reelhook_local.chaos import run

pytestmark = pytest.mark.e2e

# Each fault the suite injects, by its counter in the run's own report: every one must have fired.
FAULTS = ("empty_bodies", "truncated", "expired", "html_answers", "not_video_bodies", "tasks_not_video",
          "tasks_never_finishing", "tasks_vanished", "task_missing_404s", "api_faults", "webhook_duplicates")


def test_every_job_survives_the_chaos():
    report = run(jobs=int(os.environ.get("REELHOOK_CHAOS_JOBS", "27")), seed=11, timeout=240)
    Console(width=100).print(report.table())  # shown with -s, and in the failure report
    # The run must actually have been chaotic, or it proves nothing.
    assert {name: report.faults[name] for name in FAULTS if report.faults[name] == 0} == {}
    assert report.notifier_records_dropped > 0 and report.forged > 0 and report.dropped > 0
    assert report.lost == []
    assert report.non_terminal == []
    assert report.wrong_state == []  # each final state is the one its injected faults imply
    # Each kind of ending was met: one-off faults retried to success, and every stuck kind ended.
    assert report.stored > 0
    for code in ("provider_failed", "output_invalid", "deadline_exceeded", "provider_task_missing"):
        assert report.failed[code] > 0, code
    assert report.bad_bytes == []
    # Every stored object was opened, and is a video (or its poster).
    assert report.videos_checked == report.stored > 0 and report.posters_checked == report.stored
    assert report.not_video == []
    assert report.forged_effective == []
    assert report.unexpected_objects == [] and report.pending_uploads == 0
    assert report.dlq_unexpected == []
    assert report.events_missing == []  # the killed notifier's jobs too
