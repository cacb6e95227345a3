"""The "what the figures say" section of BENCHMARKS.md, written from the figures themselves."""

from __future__ import annotations

import math
from typing import Any


def _get(results: dict[str, Any], name: str) -> dict[str, Any] | None:
    entry = results.get(name) or {}
    return entry.get("result")


def render(results: dict[str, Any]) -> str:
    parts = [_coldstart(_get(results, "coldstart")), _requests(_get(results, "requests"), _get(results, "scale")),
             _copy(_get(results, "copy")), _scale(_get(results, "scale")),
             _burst(_get(results, "burst"), _get(results, "scale"))]
    bullets = [p for p in parts if p]
    if not bullets:
        return ""
    return "\n".join(["## What the figures say", "", *bullets, ""])


def _coldstart(r: dict[str, Any] | None) -> str:
    if not r:
        return ""
    primary = r["variants"][r["primary"]]
    base = primary["boto3_cpu_ms"]
    fns = primary["functions"]
    text = [f"- **Cold start (CPU time; `import boto3` = {base:.0f} ms).**"]
    for function, v in fns.items():
        packages = r["importtime"].get(function, {}).get("packages", {})
        top = [f"{name} {p['cumulative_ms']:.0f} ms" for name, p in packages.items() if name != "reelhook"][:3]
        first = v.get("first_clients_ms", math.nan)
        tail = (f"; its first event then spends {first:.0f} ms creating its clients"
                if first == first else "")
        text.append(f"  {function}: {v['ratio']:.2f}× ({v['cpu_ms']:.0f} ms), mostly {', '.join(top)}{tail}.")
    nopyc = r["variants"].get("no_pyc")
    if nopyc:
        diffs = ", ".join(f"{f} +{nopyc['functions'][f]['cpu_ms'] - fns[f]['cpu_ms']:.0f} ms" for f in fns)
        text.append(f"  **What the layer's bytecode saves** (the layer's Makefile precompiles it; `/opt` is read-only, "
                    f"so a layer without it, as the python3.12 build method makes, compiles its packages on every "
                    f"cold start): {diffs} without it.")
    three = r.get("three_clients_ms")
    if three:
        text.append(f"  Three clients cost {three['one_session_each']:.0f} ms with a new botocore session each and "
                    f"{three['one_shared_session']:.0f} ms from one shared session.")
    return "\n".join(text)


def _requests(r: dict[str, Any] | None, scale: dict[str, Any] | None) -> str:
    if not r:
        return ""
    jobs = r["summary"]["jobs"]
    totals = "; ".join(f"{k}: {v['aws_total']:g}" for k, v in jobs.items())
    counts = [v["aws_total"] for v in jobs.values()]
    text = [f"- **Requests per job.** One job costs {min(counts):g}–{max(counts):g} AWS requests from submit to "
            f"stored ({totals}; §3 has each operation)."]
    cadence = r.get("cadence")
    if cadence:
        polled = [j for k, j in cadence["jobs"].items() if "poll" in k]
        if polled:
            gets = max(j["provider_requests"].get("GET status", 0) for j in polled)
            text.append(f"  For a 3-minute generation at the deployed cadence a polled job needed {gets:g} status GETs "
                        "where polling every 10 s needs 18, and a webhook job none.")
    if scale:
        size = scale.get("job_item_bytes_median", 0)
        if size > 1024:
            text.append(f"  A job item is {size} B by the time it is stored, so every job write costs "
                        f"{math.ceil(size / 1024)} write units, and the `active-index` GSI (ProjectionType ALL) "
                        "copies every write of an active job at the same size.")
    return "\n".join(text)


def _copy(r: dict[str, Any] | None) -> str:
    if not r:
        return ""
    sizes = sorted(r["sizes"].items(), key=lambda kv: int(kv[0]))
    mem = ", ".join(f"{k} MiB {v['reelhook']['peak_over_baseline_mib']:.0f} MiB" for k, v in sizes)
    ratio = ", ".join(f"{k} MiB {v['vs_boto3']:.2f}×" for k, v in sizes)
    return (f"- **Copy.** Peak memory over baseline: {mem}: up to 16 MiB the object itself (one PutObject), above "
            f"that bounded by the parts in flight, not by the file, but "
            f"it still grows by {r.get('memory_growth_mib', math.nan):.0f} MiB from "
            f"{r.get('memory_growth_from', '?')} MiB to the largest copy. Throughput against boto3's `upload_fileobj` "
            f"from a local file: {ratio} (moto, hashing and storing every part in one Python process, bounds both; "
            "see the per-run times for the noise).")


DYNAMODB_OPERATIONS = frozenset({"UpdateItem", "PutItem", "GetItem", "Query", "BatchGetItem", "TransactWriteItems",
                                  "DeleteItem", "Scan", "GetRecords", "GetShardIterator", "DescribeStream",
                                  "ListStreams", "DescribeTable"})


def _scale(r: dict[str, Any] | None) -> str:
    if not r:
        return ""
    moto = r.get("moto", {})
    passes = r.get("poller_passes", {})
    text = [f"- **Scale.** {r['jobs']} jobs, {r['lost']} lost, {r['jobs_per_second']:.1f} jobs/s; the handlers spent "
            f"{r['aws_share_of_handler_time'] * 100:.0f}% of their time waiting for moto, in a process of its own."]
    share = moto.get("cpu_share_by_operation", {})
    if moto.get("requests") and moto.get("cpu_ms_per_request"):
        per_job = moto["requests"] / r["jobs"]
        cpu_ms_per_job = moto["cpu_ms_per_request"] * per_job
        dynamodb_share = sum(v for k, v in share.items() if k in DYNAMODB_OPERATIONS)
        servers = len(moto.get("processes", [])) or 1
        text.append(f"  moto answered {per_job:.1f} requests per job (event plumbing polls included) at "
                    f"{moto['cpu_ms_per_request']:.1f} ms of CPU each ({cpu_ms_per_job:.0f} ms per job; its "
                    f"{servers} process(es) used {moto['process_cpu_cores']:.2f} cores).")
        if dynamodb_share:
            cap = 1000 / (cpu_ms_per_job * dynamodb_share)
            text.append(f"  DynamoDB took {dynamodb_share * 100:.0f}% of it; its server, one GIL behind one lock, "
                        f"caps the stack at about {cap:.1f} jobs/s, against {r['jobs_per_second']:.1f} measured.")
    plumbing = sum(v for k, v in share.items() if k in ("GetRecords", "ReceiveMessage", "DescribeStream",
                                                        "GetShardIterator", "ListStreams"))
    if plumbing:
        text.append(f"  {plumbing * 100:.0f}% of moto's time went to the local event plumbing polling it (stream "
                    "`GetRecords`, queue `ReceiveMessage` mostly empty), which on AWS costs the functions nothing; "
                    "and on one core that CPU is taken from the handlers' requests.")
    if passes:
        text.append(f"  The poll workers made {passes.get('jobs_checked', 0)} status checks at "
                    f"{passes.get('checks_per_second', 0):.1f} checks/s per worker (longest batch "
                    f"{passes.get('longest_batch_s', 0):.1f} s).")
    return "\n".join(text)


def _burst(r: dict[str, Any] | None, scale: dict[str, Any] | None) -> str:
    if not r:
        return ""
    from bench.burst import DRAIN_TARGET, LATENCY_TARGET_S

    api, inbox = r["api"], r["inbox"]
    refused = sum(v["refused_429"] for section in (api, inbox) for v in section["providers"].values())
    text = [f"- **Burst.** What reelhook controls: {api['failed_for_rate'] + inbox['failed_for_rate']} jobs failed "
            f"for rate or budget, and the providers refused {refused} requests with 429."]
    missed = []
    p99 = api["latency_s"]["p99"]
    if p99 is not None and p99 > LATENCY_TARGET_S:
        missed.append(f"the API's p99 latency ({p99:.2f} s against {LATENCY_TARGET_S:g} s)")
    for name, section in (("API", api), ("inbox", inbox)):
        ratio = section["drain_ratio"]
        if ratio is not None and ratio > DRAIN_TARGET:
            missed.append(f"the {name} drain ({ratio:.2f}× against {DRAIN_TARGET:g}×)")
    for name, section in (("API", api), ("inbox", inbox)):
        if section["failed_by_code"]:
            missed.append(f"{name} jobs failed ({section['failed_by_code']})")
    if not missed:
        text.append("  Every burst target was met in this run.")
        return "\n".join(text)
    text.append(f"  Missed: {'; '.join(missed)}.")
    if scale:
        per_job = scale.get("dynamodb_per_job", 0) + scale.get("sqs_per_job", 0)
        text.append(f"  For scale: the same stack finished {scale['jobs_per_second']:.1f} jobs/s end to end at about "
                    f"{per_job:.0f} DynamoDB and SQS requests per job, against the {3 * r['rate']:g} requests/s "
                    "the three providers' budgets allow; a burst on this machine shares its two cores with moto.")
    return "\n".join(text)
