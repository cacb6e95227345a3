"""1. Cold start: what Lambda pays before the first event, as a ratio to ``import boto3``.

Each sample is a fresh process. A function's sample runs ``functions/<name>/app.py`` as Lambda
does (the layer on ``sys.path``, the module's top-level code executed); the baseline is
``python -c "import boto3"`` with the same interpreter. Runs are interleaved in a shuffled
order per round so that machine noise hits every target alike, and each figure is the median.
The time is the process's wall time as seen from outside (interpreter start included, as it is
in both). The in-process import time and the first boto3 clients the first event creates are
reported beside it.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.common import FUNCTIONS, ROOT, median, percentile, progress, rnd, say, table, verdict
from bench.lambda_env import LambdaEnv, build

NAME = "coldstart"
TARGETS = {"callback": 1.3, "api": 1.5, "transfer": 1.6, "poller": 1.6}
# The clients each function's first event creates (observed in the requests-per-job benchmark).
FIRST_CLIENTS = {
    "api": ("dynamodb", "secretsmanager"),
    "callback": ("secretsmanager", "dynamodb", "sqs"),
    "transfer": ("dynamodb", "s3"),
    "poller": ("dynamodb", "secretsmanager", "sqs"),
}

PROBE = r"""
import sys, time
t0 = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
t1 = time.perf_counter()
clients = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[2] else []
if clients:
    from reelhook.adapters.aws import client
    for name in clients:
        client(name)
t2 = time.perf_counter()
print('{"import_ms": %.3f, "clients_ms": %.3f}' % ((t1 - t0) * 1000, (t2 - t1) * 1000))
"""
BASELINE = "import boto3"
# For comparison only: what a function would pay if it made its clients with botocore alone.
BOTOCORE = "import botocore.session"
# The callback's three clients, each from a new botocore session (as reelhook.adapters.aws.client
# does) or all from one: CPU time of the creation alone, botocore already imported.
CLIENTS = r"""
import sys, time, botocore.session
names = ("secretsmanager", "dynamodb", "sqs")
t = time.process_time()
if sys.argv[1] == "shared":
    session = botocore.session.get_session()
    clients = [session.create_client(n) for n in names]
else:
    clients = [botocore.session.get_session().create_client(n) for n in names]
print('{"clients_ms": %.3f}' % ((time.process_time() - t) * 1000))
"""


@dataclass
class Samples:
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    import_ms: list[float] = field(default_factory=list)
    clients_ms: list[float] = field(default_factory=list)


def _env(layer_path: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": layer_path,
        # /opt is read-only on Lambda: bytecode compiled at import is never cached.
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "POWERTOOLS_SERVICE_NAME": "reelhook",
        "POWERTOOLS_METRICS_NAMESPACE": "reelhook",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "JOBS_TABLE": "reelhook-jobs",
        "SECRET_ID": "reelhook/app",
    }


def _run(python: str, args: list[str], env: dict[str, str]) -> tuple[float, float, dict[str, float]]:
    """Run one probe; returns (wall ms, CPU ms of the child, what it printed).

    CPU time (user + system, from the kernel's accounting for that child alone) is what the
    import costs; wall time adds however long the process waited for a core, which on a
    shared machine is noise. Both are kept.
    """
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen([python, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdout is not None
        out = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = (time.perf_counter() - start) * 1000
        process.returncode = os.waitstatus_to_exitcode(status)
        process.stdout.close()
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"cold start probe failed: {errors.read()[-2000:].decode(errors='replace')}")
    text = out.decode().strip()
    inner = json.loads(text.splitlines()[-1]) if text else {}
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, inner


# ---------------------------------------------------------------------------- -X importtime


@dataclass
class Node:
    name: str
    self_us: int
    cumulative_us: int
    children: list[Node]


def parse_importtime(stderr: str) -> list[Node]:
    pending: dict[int, list[Node]] = defaultdict(list)
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        try:
            head, cumulative_part, name_part = line.split("|", 2)
            self_us, cumulative_us = int(head.removeprefix("import time:")), int(cumulative_part)
        except ValueError:
            continue
        raw = name_part[1:] if name_part.startswith(" ") else name_part
        level = (len(raw) - len(raw.lstrip(" "))) // 2
        node = Node(raw.strip(), self_us, cumulative_us, pending.pop(level + 1, []))
        pending[level].append(node)
    return pending.get(0, [])


def by_package(roots: list[Node]) -> dict[str, dict[str, float]]:
    """Per top-level package: self time (exclusive) and cumulative time of its outermost imports
    (inclusive: what importing the package cost, dependencies it pulled in first included)."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"self_ms": 0.0, "cumulative_ms": 0.0, "modules": 0})

    def walk(node: Node, parent_package: str | None) -> None:
        package = node.name.split(".")[0]
        entry = totals[package]
        entry["self_ms"] += node.self_us / 1000
        entry["modules"] += 1
        if package != parent_package:
            entry["cumulative_ms"] += node.cumulative_us / 1000
        for child in node.children:
            walk(child, package)

    for root in roots:
        walk(root, None)
    return dict(totals)


def reelhook_modules(roots: list[Node]) -> dict[str, float]:
    """Cumulative ms of each reelhook module's first import, as seen from outside reelhook...
    and of each third-party package first pulled in by a reelhook module (who pays for what)."""
    found: dict[str, float] = defaultdict(float)

    def walk(node: Node, parent: str | None) -> None:
        if node.name.startswith("reelhook") and node.children:
            for child in node.children:
                if not child.name.startswith("reelhook"):
                    found[f"{node.name} → {child.name.split('.')[0]}"] += child.cumulative_us / 1000
        for child in node.children:
            walk(child, node.name)

    for root in roots:
        walk(root, None)
    return dict(found)


def importtime(env_info: LambdaEnv, variant: str, function: str, runs: int) -> dict[str, Any]:
    per_run: list[dict[str, dict[str, float]]] = []
    edges: list[dict[str, float]] = []
    for _ in range(runs):
        env = _env(env_info.layer_paths[variant])
        answer = subprocess.run([env_info.python, "-X", "importtime", "-c", PROBE,
                                 str(ROOT / "functions" / function / "app.py")],
                                env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
        roots = parse_importtime(answer.stderr)
        per_run.append(by_package(roots))
        edges.append(reelhook_modules(roots) | {
            f"app.py → {r.name.split('.')[0]}": r.cumulative_us / 1000 for r in roots if r.name != "reelhook"})
    packages = set().union(*per_run)
    merged = {
        name: {
            "cumulative_ms": rnd(median(r.get(name, {}).get("cumulative_ms", 0.0) for r in per_run), 1),
            "self_ms": rnd(median(r.get(name, {}).get("self_ms", 0.0) for r in per_run), 1),
            "modules": int(median(r.get(name, {}).get("modules", 0) for r in per_run)),
        }
        for name in packages
    }
    names = set().union(*edges)
    who_pays = {name: rnd(median(e.get(name, 0.0) for e in edges), 1) for name in names}
    total_self = sum(v["self_ms"] for v in merged.values())
    ranked = sorted(merged.items(), key=lambda kv: -kv[1]["cumulative_ms"])
    return {
        "total_self_ms": rnd(total_self, 1),
        "packages": dict(ranked),
        "first_imported_by": dict(sorted(who_pays.items(), key=lambda kv: -kv[1])[:12]),
    }


# ---------------------------------------------------------------------------- run


def run(quick: bool) -> dict[str, Any]:
    env_info = build()
    runs = 5 if quick else 10
    with_clients = True
    variants = list(env_info.layer_paths)
    samples: dict[tuple[str, str], Samples] = defaultdict(Samples)
    targets = [("boto3", v) for v in variants] + [(f, v) for f in FUNCTIONS for v in variants]
    targets.append(("botocore", variants[0]))
    targets += [("clients_separate", variants[0]), ("clients_shared", variants[0])]

    def one(target: str, variant: str) -> None:
        env = _env(env_info.layer_paths[variant])
        if target.startswith("clients_"):
            _, _, inner = _run(env_info.python, ["-c", CLIENTS, target.removeprefix("clients_")], env)
            samples[target, variant].clients_ms.append(inner["clients_ms"])
            return
        if target in ("boto3", "botocore"):
            wall, cpu, _ = _run(env_info.python, ["-c", BASELINE if target == "boto3" else BOTOCORE], env)
            samples[target, variant].wall_ms.append(wall)
            samples[target, variant].cpu_ms.append(cpu)
            return
        path = str(ROOT / "functions" / target / "app.py")
        wall, cpu, inner = _run(env_info.python, ["-c", PROBE, path, ""], env)
        samples[target, variant].wall_ms.append(wall)
        samples[target, variant].cpu_ms.append(cpu)
        samples[target, variant].import_ms.append(inner["import_ms"])
        if not with_clients or variant != variants[0]:
            return
        # A separate process for the first clients, so the import timing above stays clean.
        _, _, inner = _run(env_info.python, ["-c", PROBE, path, ",".join(FIRST_CLIENTS[target])], env)
        samples[target, variant].clients_ms.append(inner["clients_ms"])

    for _target, variant in targets:  # warm the page cache; discarded
        _run(env_info.python, ["-c", BASELINE], _env(env_info.layer_paths[variant]))
    rng = random.Random(7)
    rounds: list[dict[tuple[str, str], float]] = []
    with progress("cold start (fresh processes)", runs * len(targets)) as advance:
        for _ in range(runs):
            order = targets[:]
            rng.shuffle(order)
            for target, variant in order:
                one(target, variant)
                advance(1)
            rounds.append({key: s.cpu_ms[-1] for key, s in samples.items() if s.cpu_ms})

    result: dict[str, Any] = {
        "runs": runs,
        "python": env_info.python_version,
        "lambda_like_env": env_info.lambda_like,
        "note": env_info.note,
        "variants": {},
    }
    for variant in variants:
        base_cpu = median(samples["boto3", variant].cpu_ms)
        base_wall = median(samples["boto3", variant].wall_ms)
        rows: dict[str, Any] = {"boto3_cpu_ms": rnd(base_cpu, 1), "boto3_wall_ms": rnd(base_wall, 1),
                                "functions": {}}
        for function in FUNCTIONS:
            s = samples[function, variant]
            cpu, wall = median(s.cpu_ms), median(s.wall_ms)
            ratio = cpu / base_cpu
            paired = [r[function, variant] / r["boto3", variant] for r in rounds]
            target = TARGETS[function]
            rows["functions"][function] = {
                "cpu_ms": rnd(cpu, 1),
                "ratio": rnd(ratio, 3),
                "wall_ms": rnd(wall, 1),
                "wall_ratio": rnd(wall / base_wall, 3),
                "target": target,
                "pass": ratio <= target,
                "paired_ratio_p25": rnd(percentile(paired, 25), 3),
                "paired_ratio_p75": rnd(percentile(paired, 75), 3),
                "import_ms": rnd(median(s.import_ms), 1),
                "first_clients_ms": rnd(median(s.clients_ms), 1),
                "first_clients": list(FIRST_CLIENTS[function]),
                "cpu_ms_samples": [rnd(v, 1) for v in s.cpu_ms],
                "wall_ms_samples": [rnd(v, 1) for v in s.wall_ms],
            }
        rows["boto3_cpu_ms_samples"] = [rnd(v, 1) for v in samples["boto3", variant].cpu_ms]
        rows["boto3_wall_ms_samples"] = [rnd(v, 1) for v in samples["boto3", variant].wall_ms]
        result["variants"][variant] = rows

    primary = "pyc" if "pyc" in variants else variants[0]
    result["primary"] = primary
    result["three_clients_ms"] = {
        "one_session_each": rnd(median(samples["clients_separate", variants[0]].clients_ms), 1),
        "one_shared_session": rnd(median(samples["clients_shared", variants[0]].clients_ms), 1),
    }
    botocore_cpu = median(samples["botocore", variants[0]].cpu_ms)
    result["botocore_session_cpu_ms"] = rnd(botocore_cpu, 1)
    result["botocore_vs_boto3"] = rnd(botocore_cpu / median(samples["boto3", variants[0]].cpu_ms), 3)
    say("  import profiles (-X importtime)...")
    result["importtime"] = {f: importtime(env_info, primary, f, 1 if quick else 3) for f in FUNCTIONS}
    if "no_pyc" in variants and not quick:
        result["importtime_no_pyc"] = {f: importtime(env_info, "no_pyc", f, 1) for f in ("callback", "api")}
    return result


# ---------------------------------------------------------------------------- report

VARIANT_TITLES = {
    "pyc": "layer precompiled (`compileall` in the build)",
    "no_pyc": "layer as `sam build` ships it (no `.pyc`; compiled at every cold start)",
    "dev": "dev venv",
}


def render(result: dict[str, Any]) -> str:
    primary = result["primary"]
    out = [
        "## 1. Cold start",
        "",
        f"A fresh process per sample, {result['runs']} interleaved rounds (targets shuffled in each round), medians. "
        "The judged figure is the child process's **CPU time** (user + system, from the kernel's accounting for that "
        "process alone): an import is single-threaded CPU work, and CPU time does not count the time spent waiting "
        "for a core on this shared 2-core machine, which wall time does (wall time is beside it). Baseline: "
        "`python -c \"import boto3\"` with the same interpreter, in the same rounds. Interpreter start is included in "
        f"both. Python {result['python']}"
        + (", in a Lambda-like environment: boto3 from the \"runtime\" (with bytecode), the layer's "
           "requirements unpacked from their wheels as `sam build` does, `PYTHONDONTWRITEBYTECODE=1` as on "
           "Lambda's read-only `/opt`." if result["lambda_like_env"] else f". {result['note']}"),
        "",
    ]
    for variant, rows in result["variants"].items():
        judged = " (judged)" if variant == primary else ""
        out.append(f"**{VARIANT_TITLES.get(variant, variant)}**{judged}: baseline `import boto3` = "
                   f"{rows['boto3_cpu_ms']:.0f} ms CPU, {rows['boto3_wall_ms']:.0f} ms wall")
        out.append("")
        out.append(table(
            ["function", "CPU ms", "× boto3", "per-round ratio p25–p75", "target", "result", "wall ms (× boto3)",
             "import ms (in-process)", "+ first clients ms"],
            [[f, r["cpu_ms"], f"{r['ratio']:.2f}×", f"{r['paired_ratio_p25']:.2f}–{r['paired_ratio_p75']:.2f}",
              f"≤ {r['target']}×",
              verdict(r["pass"]) if variant == primary else ("(" + verdict(r["pass"]) + ")"),
              f"{r['wall_ms']:.0f} ({r['wall_ratio']:.2f}×)", r["import_ms"],
              f"{r['first_clients_ms']:.0f} ({', '.join(r['first_clients'])})" if r["first_clients_ms"] == \
              r["first_clients_ms"] else "–"]
             for f, r in rows["functions"].items()],
        ))
        out.append("")
    if "botocore_session_cpu_ms" in result:
        out.append(f"For comparison, `python -c \"import botocore.session\"` (clients without boto3, s3transfer and "
                   f"boto3's resource layer) took {result['botocore_session_cpu_ms']:.0f} ms CPU = "
                   f"{result['botocore_vs_boto3']:.2f}× the boto3 baseline in the same rounds.")
        out.append("")
    if "three_clients_ms" in result:
        three = result["three_clients_ms"]
        out.append(f"Creating the callback's three clients (secretsmanager, dynamodb, sqs) took "
                   f"{three['one_session_each']:.0f} ms CPU with a new botocore session for each (what "
                   f"`reelhook.adapters.aws.client` does when it calls `botocore.session.get_session()` per client) "
                   f"and {three['one_shared_session']:.0f} ms from one shared session: each new session loads and "
                   "parses botocore's data files (endpoints, partitions, defaults) again.")
        out.append("")
    out.append("\"+ first clients\" is what the first event adds by creating the clients it uses through "
               "`reelhook.adapters.aws.client` (in-process wall time, botocore's import included when init did not "
               "import it). It is not part of init, because clients are made lazily, but the first caller waits for it "
               "and Lambda bills it.")
    out.append("")
    out.append(f"**Top import costs** (`-X importtime`, {VARIANT_TITLES.get(primary, primary)}; cumulative = the "
               "outermost imports of the package, including what they pulled in first; self = the package's own "
               "modules only):")
    out.append("")
    for function, profile in result["importtime"].items():
        top = [(n, v) for n, v in profile["packages"].items() if n != "reelhook"][:8]
        own = profile["packages"].get("reelhook", {}).get("self_ms", 0.0)
        out.append(f"- **{function}** (all imports {profile['total_self_ms']:.0f} ms; reelhook's own modules "
                   f"{own:.0f} ms): " + ", ".join(
                       f"{name} {v['cumulative_ms']:.0f} ({v['self_ms']:.0f})" for name, v in top))
        payers = [f"{k} {v:.0f}" for k, v in list(profile["first_imported_by"].items())[:5]]
        out.append(f"  - first imported by (cumulative ms): {', '.join(payers)}")
    out.append("")
    if result.get("importtime_no_pyc"):
        out.append("Without bytecode (as shipped today): " + "; ".join(
            f"**{f}** self total {p['total_self_ms']:.0f} ms, top " + ", ".join(
                f"{n} {v['cumulative_ms']:.0f}" for n, v in list(p["packages"].items())[:4])
            for f, p in result["importtime_no_pyc"].items()))
        out.append("")
    return "\n".join(out)


def summary_rows(result: dict[str, Any]) -> list[list[Any]]:
    rows = result["variants"][result["primary"]]["functions"]
    def first(r: dict[str, Any]) -> str:
        ms = r.get("first_clients_ms", math.nan)
        return f"; first event + {ms:.0f} ms for its clients" if ms == ms else ""

    return [[f"cold start {f}", f"{r['ratio']:.2f}× boto3 ({r['cpu_ms']:.0f} ms CPU{first(r)})", f"≤ {r['target']}×",
             verdict(r["pass"])] for f, r in rows.items()]
