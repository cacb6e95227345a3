"""``make demo``: run one job per provider through the local stack and verify the stored videos."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from typing import Any

import httpx
from botocore.credentials import ReadOnlyCredentials
from rich.console import Console
from rich.live import Live
from rich.table import Table

from reelhook_client.auth import SigV4Auth
from reelhook_local.sandbox import SandboxConfig
from reelhook_local.stack import LOCAL_CREDENTIALS, LocalStack, StackOptions

IMAGE = "https://example.com/character.png"
DEMO_JOBS: list[dict[str, Any]] = [
    {"model": "freepik/veo-3-1-reference-to-video", "prompt": "The character walks through a neon city at night",
     "reference_images": [IMAGE], "resolution": "720p", "aspect_ratio": "16:9", "audio": True},
    {"model": "freepik/wan-2-7-reference-to-video", "prompt": "Image 1 dances in a garden",
     "reference_images": [{"url": IMAGE, "voice_url": "https://example.com/voice.wav"}], "duration": 5},
    {"model": "freepik/kling-v3-omni-pro-video-reference", "prompt": "A dancer moving like @Video1",
     "reference_videos": ["https://example.com/motion.mp4"], "duration": 5, "options": {"cfg_scale": 0.5}},
    {"model": "uniall/veo3.1-video-1080p", "prompt": "A drone shot over a fjord at dawn", "duration": 8,
     "aspect_ratio": "16:9"},
    {"model": "aihubmax/veo-3.1-reference-to-video", "prompt": "The character waves at the camera",
     "reference_images": [IMAGE], "duration": 8, "resolution": "1080p"},
]
TERMINAL = {"succeeded", "failed"}


def _table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for column in ("model", "status", "seconds to stored", "bytes", "sha256 verified"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["model"], row["status"], row.get("seconds", ""), row.get("bytes", ""),
                      row.get("verified", ""))
    return table


def run(timeout: float) -> int:
    console = Console()
    options = StackOptions(sandbox=SandboxConfig(step_seconds=0.5), enforce_iam=True)
    # The API checks SigV4 as deployed; the demo signs with the local stack's credentials.
    signer = SigV4Auth(LOCAL_CREDENTIALS["AWS_REGION"], ReadOnlyCredentials(
        LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"], LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], None))
    console.print("[bold]Starting the local stack[/] (moto server, API front, provider sandbox)…")
    with LocalStack(options) as stack, httpx.Client(base_url=stack.api_url, timeout=10, auth=signer) as api:
        console.print(f"API {stack.api_url}   AWS (moto) {stack.aws_endpoint}   providers {stack.sandbox.root_url}")
        rows: list[dict[str, Any]] = []
        for body in DEMO_JOBS:
            answer = api.post("/v1/jobs", json=body, headers={"Idempotency-Key": f"demo-{body['model']}"})
            if answer.status_code != 202:
                console.print(f"[red]submit refused[/] {answer.status_code}: {answer.text}")
                return 1
            rows.append({"id": answer.json()["id"], "model": body["model"], "status": answer.json()["status"],
                         "started": time.monotonic()})
        deadline = time.monotonic() + timeout
        with Live(_table(rows, "Jobs in progress"), console=console, refresh_per_second=4) as live:
            while time.monotonic() < deadline and not all(r["status"] in TERMINAL for r in rows):
                for row in rows:
                    if row["status"] in TERMINAL:
                        continue
                    job = api.get(f"/v1/jobs/{row['id']}").json()
                    row["status"] = job["status"]
                    if job["status"] in TERMINAL:
                        row["seconds"] = f"{time.monotonic() - row['started']:.1f}"
                        row["job"] = job
                live.update(_table(rows, "Jobs in progress"))
                time.sleep(0.25)
        failures = 0
        for row in rows:
            job = row.get("job")
            if not job or job["status"] != "succeeded":
                failures += 1
                row["verified"] = "no"
                continue
            output = job["outputs"][0]
            stored = httpx.get(output["download_url"]).content  # the presigned S3 GET
            ok = (hashlib.sha256(stored).hexdigest() == output["sha256"] == stack.sandbox.served_sha256
                  and len(stored) == output["bytes"])
            row["bytes"] = str(output["bytes"])
            row["verified"] = "yes" if ok else "NO"
            failures += 0 if ok else 1
        console.print(_table(rows, "Result"))
        for row in rows:
            if row.get("job", {}).get("outputs"):
                out = row["job"]["outputs"][0]
                console.print(f"{out['s3_uri']}  {out['bytes']} bytes  sha256 {out['sha256']}")
        if failures:
            console.print(f"[red]{failures} job(s) did not end stored and verified[/]")
            return 1
        console.print("[green]Every video is in S3 and matches, byte for byte, what the provider served.[/]")
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the jobs")
    sys.exit(run(parser.parse_args().timeout))


if __name__ == "__main__":
    main()
