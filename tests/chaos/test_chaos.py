"""The chaos suite at a size that fits CI; `make chaos` runs the same with 300 jobs."""

from __future__ import annotations

import os

import pytest

from reelhook_local.chaos import run

pytestmark = pytest.mark.e2e


def test_every_job_survives_the_chaos():
    report = run(jobs=int(os.environ.get("REELHOOK_CHAOS_JOBS", "27")), seed=11, timeout=240)
    print(report.table())  # shown with -s, and in the failure report
    assert report.lost == []
    assert report.wrong_state == []
    assert report.bad_bytes == []
    assert report.not_video == []  # every stored object parses and decodes as a video
    assert report.forged_effective == []
    assert report.unexpected_objects == [] and report.pending_uploads == 0
    assert report.dlq_unexpected == []
    assert report.events_missing == [] and report.notifier_records_dropped > 0  # the killed notifier's jobs too
    # The run must actually have been chaotic, or it proves nothing.
    faults = report.faults
    assert report.forged > 0 and report.dropped > 0 and faults["webhook_duplicates"] > 0
    assert faults["api_faults"] > 0 and faults["truncated"] > 0
    assert faults["expired"] > 0 and faults["empty_bodies"] > 0 and faults["html_answers"] > 0
    assert faults["not_video_bodies"] > 0
    assert report.stored > 0 and report.failed["provider_failed"] > 0
    # Tasks that never finish and tasks that vanish end by their deadlines, not by the TTL.
    assert report.failed["deadline_exceeded"] > 0 and report.failed["provider_task_missing"] > 0
