"""A reelhook API in memory for the client's unit tests, behind ``httpx.MockTransport``.

It follows the API's contract: ``POST /v1/jobs`` with Idempotency-Key replay (same key and
body: the same job; another body: 409), ``GET /v1/jobs/{id}`` moving a job along a script,
``GET /v1/jobs`` with filters and ``next_cursor`` pages, ``POST /v1/jobs/{id}/cancel``
(200 cancelled, 409 ``job_finished``, 404), ``GET /v1/models``, ``GET /v1/providers`` and presigned-style
download links on another host. ``faults`` queues answers (or exceptions) to give first.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx

API = "https://abc123defg.execute-api.eu-west-1.amazonaws.com"
FILES = "https://videos.s3.example.com"
VEO = "freepik/veo-3-1-reference-to-video"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40  # 10 KiB and a bit, several chunks never needed
Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]
PROVIDERS: dict[str, Any] = {"providers": [
    {"name": "freepik", "circuit": {"state": "open", "consecutive_failures": 5, "open_until": 1767225660.5,
                                    "opened_at": 1767225600.5},
     "rate": {"requests_per_second": 9.5, "burst": 5, "booked_ahead_seconds": 0.2},
     "in_flight": {"tasks": 3, "cap": 50}, "future_key": "kept"},
    {"name": "uniall", "circuit": {"state": "closed", "consecutive_failures": 0},
     "rate": {"requests_per_second": None, "burst": 5, "booked_ahead_seconds": 0.0},
     "in_flight": {"tasks": 0, "cap": None}},
]}
JOB_PATH = re.compile(r"^/v1/jobs/(?P<id>[^/]+)(?P<cancel>/cancel)?$")


def stamp(n: int) -> str:
    return f"2026-03-01T12:00:{n:02d}.000Z"


@dataclass
class FakeApi:
    # What each GET of a job shows next: the status (and progress) it moves to.
    script: list[tuple[str, int | None]] = field(default_factory=lambda: [
        ("submitted", None), ("running", 10), ("running", 10), ("running", 60), ("storing", None),
        ("succeeded", None)])
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    faults: deque[tuple[str, Answer]] = field(default_factory=deque)
    video: bytes = VIDEO
    served_video: bytes | None = None  # what the link serves, when it is not the stored video
    expired_links: set[str] = field(default_factory=set)
    clock: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def fault(self, path: str, *answers: Answer) -> None:
        """The next requests whose path starts with ``path`` get these answers, in order."""
        self.faults.extend((path, answer) for answer in answers)

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    # -- routing ----------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for index, (prefix, answer) in enumerate(self.faults):
            if request.url.path.startswith(prefix):
                del self.faults[index]
                if isinstance(answer, Exception):
                    raise answer
                return answer(request) if callable(answer) else answer
        if str(request.url).startswith(FILES):
            return self.file(request)
        path = request.url.path
        if path == "/v1/jobs" and request.method == "POST":
            return self.create(request)
        if path == "/v1/jobs" and request.method == "GET":
            return self.listing(request)
        if path == "/v1/models" and request.method == "GET":
            return httpx.Response(200, json={"models": [{"id": VEO, "provider": "freepik", "durations": None,
                                                         "defaults": {"audio": {"value": True, "source": "document"}},
                                                         "status_via": "webhook+poll", "future_key": [1]}]})
        if path == "/v1/providers" and request.method == "GET":
            return httpx.Response(200, json=PROVIDERS)
        match = JOB_PATH.match(path)
        if match and match["cancel"] and request.method == "POST":
            return self.cancel(match["id"])
        if match and request.method == "GET":
            return self.read(match["id"])
        return error(404, "not_found", "no such route")

    def create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        key = request.headers.get("idempotency-key")
        if key in self.keys:
            sent, job_id = self.keys[key]
            if sent != request.content:
                return error(409, "idempotency_key_reused",
                             "this Idempotency-Key was already used with a different body; use a new key")
            return httpx.Response(202, json=self.jobs[job_id])
        if body.get("aspect_ratio") == "1:1":
            return error(422, "validation_error", f"the job is not valid for {body.get('model')}", [
                {"field": "aspect_ratio", "message": "must be one of 16:9, 9:16", "allowed": ["16:9", "9:16"]},
                {"field": "reference_images", "message": "must hold 1 to 3 items, got 0",
                 "allowed": {"min": 1, "max": 3}}])
        job_id = f"job_{len(self.jobs):032x}"
        self.clock += 1
        self.jobs[job_id] = {
            "id": job_id, "model": body["model"], "provider": body["model"].split("/")[0], "status": "queued",
            "client_reference": body.get("client_reference"), "created_at": stamp(self.clock),
            "updated_at": stamp(self.clock), "outputs": [], "progress": None, "step": 0,
            "events": [{"status": "queued", "at": stamp(self.clock), "source": "api"}],
            "fail": "FAIL_ME" in str(body.get("prompt")),
        }
        if key:
            self.keys[key] = (request.content, job_id)
        return httpx.Response(202, json=self.view(job_id))

    def view(self, job_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.jobs[job_id].items() if k not in ("step", "fail")}

    def read(self, job_id: str) -> httpx.Response:
        job = self.jobs.get(job_id)
        if job is None:
            return error(404, "not_found", "no such job")
        if job["status"] not in ("succeeded", "failed", "cancelled") and job["step"] < len(self.script):
            status, progress = self.script[job["step"]]
            job["step"] += 1
            if job["fail"] and status == "storing":
                status = "failed"
                job["error"] = {"code": "provider_failed", "message": "the provider said no"}
            self.move(job, status, progress)
        for output in job["outputs"]:  # each answer presigns afresh, as the API does
            self.clock += 1
            output["download_url"] = f"{FILES}/{job_id}/0.mp4?X-Amz-Expires=3600&v={self.clock}"
        return httpx.Response(200, json=self.view(job_id))

    def move(self, job: dict[str, Any], status: str, progress: int | None) -> None:
        self.clock += 1
        if status != job["status"]:
            job["events"].append({"status": status, "at": stamp(self.clock), "source": "webhook"})
        job["status"], job["progress"], job["updated_at"] = status, progress, stamp(self.clock)
        if status == "succeeded":
            digest = hashlib.sha256(self.video).hexdigest()
            job["outputs"] = [{"s3_uri": f"s3://bucket/videos/{job['id']}/0.mp4", "bytes": len(self.video),
                               "sha256": digest, "content_type": "video/mp4",
                               "media": {"container": "mp4", "width": 320, "height": 180, "video_codec": "h264",
                                         "duration_s": 1.0, "fps": 24, "audio": None},
                               "download_url": f"{FILES}/{job['id']}/0.mp4?X-Amz-Expires=3600&v={self.clock}"}]

    def listing(self, request: httpx.Request) -> httpx.Response:
        query = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        limit = int(query.get("limit", "50"))
        if not 1 <= limit <= 100:
            return error(400, "invalid_query", "limit must be 1 to 100",
                         [{"field": "limit", "message": "must be 1 to 100"}])
        matching = [self.view(job_id) for job_id in sorted(self.jobs)
                    if all(self.jobs[job_id].get(name) == query[name]
                           for name in ("status", "model", "provider", "client_reference") if name in query)
                    and ("created_after" not in query or self.jobs[job_id]["created_at"] > query["created_after"])
                    and ("created_before" not in query or self.jobs[job_id]["created_at"] < query["created_before"])]
        start = int(query["cursor"].removeprefix("c")) if "cursor" in query else 0
        page = matching[start:start + limit]
        more = start + limit < len(matching)
        return httpx.Response(200, json={"jobs": page, "next_cursor": f"c{start + limit}" if more else None})

    def cancel(self, job_id: str) -> httpx.Response:
        job = self.jobs.get(job_id)
        if job is None:
            return error(404, "not_found", "no such job")
        if job["status"] in ("succeeded", "failed"):
            return error(409, "job_finished", f"the job already {job['status']}; it cannot be cancelled")
        if job["status"] != "cancelled":
            self.move(job, "cancelled", None)
            job["cancellation"] = {"at": job["updated_at"], "provider_task_may_continue": True}
        return httpx.Response(200, json=self.view(job_id))

    def file(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization"):
            return httpx.Response(400, text="<Error>only one auth mechanism allowed</Error>")
        if request.url.query.decode() in self.expired_links:
            return httpx.Response(403, text="<Error><Code>AccessDenied</Code>Request has expired</Error>")
        data = self.served_video if self.served_video is not None else self.video
        return httpx.Response(200, content=data, headers={"content-type": "video/mp4"})

    # -- helpers for tests ------------------------------------------------------------------

    def finish_all(self) -> None:
        for job_id in list(self.jobs):
            while self.jobs[job_id]["status"] not in ("succeeded", "failed", "cancelled"):
                self.read(job_id)


def error(status: int, code: str, message: str, fields: list[dict[str, Any]] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return httpx.Response(status, json=body)
