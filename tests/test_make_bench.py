"""`make bench` benchmarks a clean checkout of HEAD, not the working tree, and copies the report back."""

from __future__ import annotations

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
    done = run(MAKE, "--no-print-directory", "bench", "BENCH_ARGS=--render-only",
               env={**os.environ, "BENCH_DEST": str(tmp_path)}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"benchmarking {head} in " in done.stdout
    tree = done.stdout.split(f"benchmarking {head} in ", 1)[1].split()[0]
    # The benchmark's code and the layer it measures both come from the checkout.
    assert f"code from {tree}; reelhook from {tree}/layers/reelhook/reelhook" in done.stderr
    assert (tmp_path / "BENCHMARKS.md").read_text().startswith("# Benchmarks")
    assert (tmp_path / "bench" / "results.json").is_file()
    assert not Path(tree).exists()  # the checkout is removed afterwards
    worktrees = run(GIT, "worktree", "list").stdout
    assert tree not in worktrees
