"""`make bench` benchmarks a clean checkout of HEAD, not the working tree, and copies the report back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIT = shutil.which("git") or "git"
MAKE = shutil.which("make") or "make"


def run(*command: str, **options) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, **options)  # noqa: S603 (fixed commands)


def test_make_bench_runs_on_a_clean_checkout_of_head(tmp_path):
    head = run(GIT, "rev-parse", "--short", "HEAD", check=True).stdout.strip()
    # The README's form, with a benchmark small enough for the test suite.
    done = run(MAKE, "--no-print-directory", "bench", "BENCH_ARGS=--quick --only poll_capacity",
               env={**os.environ, "BENCH_DEST": str(tmp_path)}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"benchmarking {head} in " in done.stdout
    tree = done.stdout.split(f"benchmarking {head} in ", 1)[1].split()[0]
    # The benchmark's code and the layer it measures both come from the checkout.
    assert f"code from {tree}; reelhook from {tree}/layers/reelhook/reelhook" in done.stderr
    report = (tmp_path / "bench" / "quick" / "BENCHMARKS.md").read_text()
    assert report.startswith("# Benchmarks") and f"tree at {head} with 0 uncommitted" in report
    results = json.loads((tmp_path / "bench" / "quick" / "results.json").read_text())
    assert results["benchmarks"]["poll_capacity"]["result"]
    assert not Path(tree).exists()  # the checkout is removed afterwards
    worktrees = run(GIT, "worktree", "list").stdout
    assert tree not in worktrees


def test_the_idle_benchmark_measures_the_stack_and_both_moto_processes(tmp_path):
    import sys

    done = run(sys.executable, "-m", "bench", "--quick", "--only", "idle", "--out", str(tmp_path), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((tmp_path / "results.json").read_text())["benchmarks"]["idle"]["result"]
    assert result["moto_processes"] == 2
    assert result["drivers"] >= 5
    # Something always runs (the drivers' idle polls): a zero would mean nothing was measured.
    assert result["stack_cores"] > 0 and result["moto_cores"] > 0
    assert "## 7. Idle cost" in (tmp_path / "BENCHMARKS.md").read_text()


def test_each_benchmark_runs_in_a_process_of_its_own(tmp_path):
    import sys

    done = run(sys.executable, "-m", "bench", "--quick", "--only", "poll_capacity,idle", "--out", str(tmp_path),
               timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    entries = json.loads((tmp_path / "results.json").read_text())["benchmarks"]
    assert entries["poll_capacity"]["result"] and entries["idle"]["result"]
    processes = {entries[name]["process"] for name in ("poll_capacity", "idle")}
    assert len(processes) == 2  # neither inherits what the other left behind


def test_the_media_inspection_cost_is_measured_and_reported():
    from bench import coldstart, media_cost

    result = media_cost.run(quick=True)
    files = result["per_output"]
    # Real files, really inspected: the sample and a 10 MiB 1080p encode, each with a poster.
    assert files["small"]["media"]["width"] == 320 and files["small"]["bytes"] < 100_000
    assert files["10MiB"]["bytes"] >= media_cost.BIG_BYTES and files["10MiB"]["media"]["height"] == 1080
    assert all(f["reads"] > 0 and f["poster_bytes"] > 0 and f["wall_ms"] > 0 for f in files.values())
    # Each cold start target ran in fresh processes, once per round.
    assert {len(v["cpu_ms_samples"]) for v in result["cold"].values()} == {result["runs"]}
    assert result["cold"]["import_av"]["media_ms"] > 0 and result["cold"]["none"]["media_ms"] < 1
    text = "\n".join(media_cost.render(result))
    assert "### Media inspection (the transfer function)" in text and "10MiB" in text
    # The cold start section carries it, summary row included.
    cold = {"primary": "pyc", "variants": {"pyc": {"functions": {}}}, "media_inspection": result}
    assert coldstart.summary_rows(cold) == media_cost.summary_rows(result)
    assert "### Media inspection" in coldstart.render({**cold, "variants": {}, "runs": 1, "python": "3.12",
                                                        "lambda_like_env": True, "importtime": {}})


def test_the_scale_benchmark_posts_from_a_client_process_and_loses_no_job(tmp_path):
    import sys

    done = run(sys.executable, "-m", "bench", "--quick", "--only", "scale", "--out", str(tmp_path), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    entry = json.loads((tmp_path / "results.json").read_text())["benchmarks"]["scale"]
    result = entry["result"]
    assert result["final_status"] == {"succeeded": result["jobs"]} and result["lost"] == 0
    assert result["submit_errors"] == 0 and result["jobs_per_second"] > 0
    # The clients' HTTP work is not counted as the stack's: they post from a process of their own.
    assert result["clients_process"] not in (entry["process"], os.getpid())
    assert "client threads in a process of their own" in (tmp_path / "BENCHMARKS.md").read_text()
