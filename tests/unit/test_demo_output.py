"""The demo's own verdict on failover and its piped progress lines, without a stack."""

from __future__ import annotations

import io
from typing import Any

from reelhook_client import Job
from reelhook_local.demo import FAILOVER_JOB, Row, _plain_progress, demo_console, failed_over

AIHUBMAX = "aihubmax/veo-3.1-reference-to-video"
FREEPIK = "freepik/veo-3-1-reference-to-video"
REFUSED = {"provider": "freepik", "model": FREEPIK, "outcome": "rejected", "reason": "HTTP 402: not enough credits"}


def job(status: str = "succeeded", route: str = "aihubmax", attempts: list[dict[str, Any]] | None = None,
        progress: int | None = None) -> Job:
    model = AIHUBMAX if route == "aihubmax" else FREEPIK
    current = {"provider": route, "model": model, "outcome": status}
    return Job.from_api({
        "id": "job_1", "model": FAILOVER_JOB["model"], "provider": route, "status": status, "progress": progress,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:01Z",
        "route": {"provider": route, "model": model},
        "attempts": [REFUSED, current] if attempts is None else attempts})


def test_a_job_counts_as_failed_over_only_when_served_elsewhere_after_the_refusal() -> None:
    assert failed_over(job())
    assert not failed_over(job(route="freepik"))  # never left the provider out of credit
    assert not failed_over(job(attempts=[{"provider": "aihubmax", "model": AIHUBMAX, "outcome": "succeeded"}]))
    assert not failed_over(job(status="failed"))


def test_piped_progress_is_one_line_per_change_and_one_per_provider_left_behind() -> None:
    out = io.StringIO()
    console = demo_console(out)
    assert not console.is_terminal and console.width > 80
    row = Row(FAILOVER_JOB, job(status="queued", attempts=[REFUSED, {"provider": "aihubmax", "model": AIHUBMAX}]),
              started=0.0)
    _plain_progress(console, [row], start=0.0)
    _plain_progress(console, [row], start=0.0)  # nothing changed: nothing printed
    row.job = job(status="running", progress=40)
    _plain_progress(console, [row], start=0.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].split()[2:] == ["veo-3.1/reference-to-video", "freepik", "rejected:", "HTTP", "402:", "not",
                                    "enough", "credits"]
    assert lines[1].split()[2:] == ["veo-3.1/reference-to-video", "queued", "on", "aihubmax"]
    assert lines[2].split()[2:] == ["veo-3.1/reference-to-video", "running", "40%", "on", "aihubmax"]
