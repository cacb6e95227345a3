"""``python -m bench``: run the benchmarks, write bench/results.json and BENCHMARKS.md.

    python -m bench                 # everything (about 20 minutes on 2 cores)
    python -m bench --quick         # CI-sized smoke run (under 3 minutes); writes bench/quick/
    python -m bench --only copy     # one benchmark (comma-separate several); others' results are kept
    python -m bench --render-only   # rewrite BENCHMARKS.md from bench/results.json

The first run builds a Lambda-like Python 3.12 environment under bench/.lambda-env (uv and a
python3.12, e.g. pyenv's, from PyPI: a few seconds); without them cold starts are measured in
the dev venv and say so. py-spy, when installed, adds a GIL profile to the scale benchmark.

Benchmarks: coldstart, webhook, requests, copy, scale, burst, poll_capacity. Figures are medians of several runs,
ratios are measured side by side in the same run. Nothing here is a timed assertion: the exit
status is non-zero only when a benchmark could not run, never because a target was missed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import burst, coldstart, copy_s3, idle, per_job, poll_capacity, report, scale, webhook
from bench.common import BENCH_DIR, ROOT, Output, machine_info, say

BENCHMARKS = {module.NAME: module
              for module in (coldstart, webhook, per_job, copy_s3, scale, burst, poll_capacity, idle)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-sized smoke run, written to bench/quick/")
    parser.add_argument("--only", metavar="NAME", help=f"run only these (comma-separated): {', '.join(BENCHMARKS)}")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite BENCHMARKS.md from the saved results without running anything")
    parser.add_argument("--out", metavar="DIR", type=Path,
                        help="write results.json and BENCHMARKS.md here instead")
    args = parser.parse_args(argv)

    names = list(BENCHMARKS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.out:
        output = Output(args.out / "results.json", args.out / "BENCHMARKS.md")
    elif args.quick:
        output = Output(BENCH_DIR / "quick" / "results.json", BENCH_DIR / "quick" / "BENCHMARKS.md")
    else:
        output = Output(BENCH_DIR / "results.json", ROOT / "BENCHMARKS.md")

    import reelhook

    say(f"[bench] code from {ROOT}; reelhook from {Path(reelhook.__file__).parent}")
    data = output.load()
    if args.render_only:
        output.markdown_path.write_text(report.render(data, BENCHMARKS))
        say(f"[bench] rendered {output.markdown_path} from {output.results_path}")
        return 0
    if data.get("mode") != ("quick" if args.quick else "full"):
        data = {}
    data.update({"mode": "quick" if args.quick else "full", "machine": machine_info()})
    data.setdefault("benchmarks", {})
    failed = []
    started = time.monotonic()
    for name in names:
        say(f"[bench] {name}{' (quick)' if args.quick else ''}")
        t0 = time.monotonic()
        entry: dict[str, Any] = {"finished_at": None, **_run_in_own_process(name, args.quick)}
        if "error" in entry:
            failed.append(name)
            say(entry["error"])
        entry["seconds"] = round(time.monotonic() - t0, 1)
        entry["tree"] = data["machine"].get("git", {})
        entry["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        data["benchmarks"][name] = entry
        data["generated_at"] = entry["finished_at"]
        output.save(data)
        output.markdown_path.parent.mkdir(parents=True, exist_ok=True)
        output.markdown_path.write_text(report.render(data, BENCHMARKS))
        say(f"[bench] {name}: {entry['seconds']:.0f} s{' FAILED' if name in failed else ''}")
    say(f"[bench] done in {time.monotonic() - started:.0f} s: {output.markdown_path}, {output.results_path}")
    return 1 if failed else 0


def _run_in_own_process(name: str, quick: bool) -> dict[str, Any]:
    """``{"result": ...}`` or ``{"error": traceback}`` from ``bench._section`` in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="reelhook-bench-") as scratch:
        result_path = Path(scratch) / "result.json"
        command = [sys.executable, "-m", "bench._section", name, str(result_path), *(["--quick"] if quick else [])]
        finished = subprocess.run(command, check=False)
        try:
            return json.loads(result_path.read_text())
        except (OSError, ValueError):
            return {"error": f"{name} ended with exit status {finished.returncode} and wrote no result"}


if __name__ == "__main__":
    sys.exit(main())
