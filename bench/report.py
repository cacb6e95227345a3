"""BENCHMARKS.md from bench/results.json: a summary against the targets, then one section each."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from bench import findings
from bench.common import table

HEADER = """# Benchmarks

Written by `make bench` (`python -m bench`; `--quick` for a CI-sized smoke run into `bench/quick/`,
`--only NAME` for one of {names}). Raw figures: `bench/results.json`. Every figure is a median
of several runs and every ratio is measured side by side in the same run, on a shared, noisy
2-core machine: treat differences of a few percent as noise. Benchmarks are never assertions in
the test suite; a missed target is reported here, not failed.
"""


def render(data: dict[str, Any], benchmarks: dict[str, ModuleType]) -> str:
    machine = data.get("machine", {})
    out = [HEADER.format(names=", ".join(f"`{n}`" for n in benchmarks)).rstrip(), ""]
    out.append(f"Run: {data.get('mode', '?')} mode, last written {data.get('generated_at', '?')} on "
               f"{machine.get('cpus', '?')} CPUs ({machine.get('cpu_model', '?')}), "
               f"{machine.get('memory_gib', '?')} GiB, Python {machine.get('python', '?')} "
               f"(cold starts use the Lambda-like 3.12 environment), tree at "
               f"{machine.get('git', {}).get('commit', '?')} with "
               f"{machine.get('git', {}).get('uncommitted_changes', '?')} uncommitted file(s).")
    out.append("")
    rows = []
    results = data.get("benchmarks", {})
    for name, module in benchmarks.items():
        entry = results.get(name)
        if entry is None:
            continue
        if "result" not in entry:
            rows.append([name, "could not run (see bench/results.json)", "", "❌ error"])
            continue
        try:
            rows.extend(module.summary_rows(entry["result"]))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            rows.append([name, "result from an older version of the suite: re-run `--only " + name + "`", "",
                         "n/a"])
    out.append("## Summary")
    out.append("")
    out.append(table(["figure", "measured", "target", "result"], rows, "llll"))
    out.append("")
    try:
        text = findings.render(results)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        text = ""
    if text:
        out.append(text)
    for name, module in benchmarks.items():
        entry = results.get(name)
        if entry is None or "result" not in entry:
            continue
        try:
            out.append(module.render(entry["result"]))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            out.append(f"## {name}\n\n(result from an older version of the suite: re-run `--only {name}`)\n")
        tree = entry.get("tree") or {}
        out.append(f"_{name}: {entry['seconds']:.0f} s, finished {entry['finished_at']}, tree "
                   f"{tree.get('commit', '?')} + {tree.get('uncommitted_changes', '?')} uncommitted file(s)._")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
