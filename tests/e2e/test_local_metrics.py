"""The functions' EMF metric lines go to a file in the local stack, never to its terminal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from reelhook_local.emf import MetricLines
from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LocalStack, StackOptions


def test_metric_lines_are_kept_in_a_file_and_the_rest_passes_through(tmp_path: Path) -> None:
    import io

    out = io.StringIO()
    lines = MetricLines(out, tmp_path / "metrics.jsonl")
    print('{"_aws":{"CloudWatchMetrics":[]},"Jobs":1}', file=lines)  # type: ignore[arg-type]
    print('{"level":"ERROR","message":"a real error"}', file=lines)  # type: ignore[arg-type]
    lines.close_file()
    assert out.getvalue() == '{"level":"ERROR","message":"a real error"}\n'
    assert (tmp_path / "metrics.jsonl").read_text() == '{"_aws":{"CloudWatchMetrics":[]},"Jobs":1}\n'
    assert lines.lines == 1


def test_handlers_metrics_never_reach_stdout_or_stderr(capfd, tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    options = StackOptions(sandbox=SandboxConfig(step_seconds=0.1), schedule_seconds=0.3, metrics_file=metrics,
                           # As deployed: metrics on, and an error log line must still be seen.
                           extra_env={"POWERTOOLS_METRICS_DISABLED": "false"})
    with LocalStack(options) as stack, httpx.Client(base_url=stack.api_url, timeout=30) as api:
        answer = api.post("/v1/jobs", json={"model": "uniall/veo3.1-video-720p", "prompt": "metrics stay quiet"})
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        status = ""
        deadline = time.monotonic() + 120
        while status not in ("succeeded", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
            status = api.get(f"/v1/jobs/{job_id}").json()["status"]
        assert status == "succeeded"
        print("the tool's own output", flush=True)
    out, err = capfd.readouterr()
    assert '"_aws"' not in out and '"_aws"' not in err
    assert "the tool's own output" in out  # only metric lines are taken
    kept = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert kept and all("CloudWatchMetrics" in blob["_aws"] for blob in kept)
