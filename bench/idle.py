"""7. Idle cost: what a running local stack (`make serve`) burns when nobody uses it.

A local stack is started as `make serve` starts it, left ``settle`` seconds (past every queue
consumer's first 20 s long poll, after which one consumer per queue polls and the rest wait for
it; the schedule runs every 5 s while no job changes), then measured for ``window`` seconds:
the CPU time (user + system, from the kernel's accounting) of the stack's process and of moto's
server processes, over wall time, in cores. Three windows, median. Target: under 3% of one core
in all. The machine's load average is given: other work on it adds to every figure.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.common import median, rnd, table, verdict

NAME = "idle"
TARGET_CORES = 0.03
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]
            except OSError:
                continue
            if parent == str(pid):
                found.append(int(entry))
    return found


def run(quick: bool) -> dict[str, Any]:
    from reelhook_local.sandbox import SandboxConfig
    from reelhook_local.stack import LocalStack, StackOptions

    settle, window, windows = (5.0, 5.0, 1) if quick else (25.0, 20.0, 3)
    options = StackOptions(sandbox=SandboxConfig(step_seconds=2.0), enforce_iam=True)  # as `make serve`
    samples: list[dict[str, float]] = []
    with LocalStack(options) as stack:
        time.sleep(settle)
        me = os.getpid()
        children = _children(me)
        for _ in range(windows):
            start = {pid: _cpu_seconds(pid) for pid in [me, *children]}
            began = time.monotonic()
            time.sleep(window)
            wall = time.monotonic() - began
            end = {pid: _cpu_seconds(pid) for pid in start}
            stack_cores = (end[me] - start[me]) / wall
            moto_cores = sum(end[pid] - start[pid] for pid in children) / wall
            samples.append({"stack": stack_cores, "moto": moto_cores, "total": stack_cores + moto_cores})
        drivers = len(stack.drivers)
        load = Path("/proc/loadavg").read_text().split()[0]
    total = median([s["total"] for s in samples])
    return {
        "settle_seconds": settle, "window_seconds": window, "windows": windows, "drivers": drivers,
        "moto_processes": len(children),
        "stack_cores": rnd(median([s["stack"] for s in samples]), 4),
        "moto_cores": rnd(median([s["moto"] for s in samples]), 4),
        "total_cores": rnd(total, 4),
        "load_average": float(load),
        "pass": total < TARGET_CORES,
    }


def summary_rows(result: dict[str, Any]) -> list[list[Any]]:
    return [["idle `make serve`: CPU", f"{result['total_cores'] * 100:.1f}% of a core (stack "
             f"{result['stack_cores'] * 100:.1f}%, moto {result['moto_cores'] * 100:.1f}%)",
             f"< {TARGET_CORES * 100:.0f}% of a core", verdict(result["pass"])]]


def render(result: dict[str, Any]) -> str:
    rows = [
        ["drivers running (queues, stream, inbox, schedule)", result["drivers"]],
        ["moto server processes", result["moto_processes"]],
        ["machine load average (1 min) at the end", result.get("load_average", "not measured")],
        ["settle, then windows", f"{result['settle_seconds']:g} s, then {result['windows']} × "
         f"{result['window_seconds']:g} s"],
        ["the stack's process", f"{result['stack_cores'] * 100:.2f}% of a core"],
        ["moto's processes", f"{result['moto_cores'] * 100:.2f}% of a core"],
        ["all", f"{result['total_cores'] * 100:.2f}% of a core: {verdict(result['pass'])} "
         f"(target < {TARGET_CORES * 100:.0f}%)"],
    ]
    return "\n".join(["## 7. Idle cost", "", (__doc__ or "").split("\n\n", 1)[1].strip(), "",
                      table(["", ""], rows)])
