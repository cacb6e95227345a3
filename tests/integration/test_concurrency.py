"""Races: simultaneous identical submits, and the shared provider request budget."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import Context, api_event, table_items


@pytest.fixture(autouse=True)
def atomic_requests(monkeypatch):
    """DynamoDB applies a conditional write atomically; moto's in-process backend does not lock
    between threads. Serialising each request restores that guarantee, so these tests exercise
    reelhook's conditions rather than moto's thread safety."""
    from moto.core.botocore_stubber import BotocoreStubber

    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def process_request(self, request):
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)


VEO = {"model": "freepik/veo-3-1-reference-to-video", "prompt": "a race", "reference_images": ["https://example.com/a.png"]}


def test_simultaneous_identical_posts_make_one_job_and_one_provider_call(aws, sandbox, handlers):
    barrier = threading.Barrier(8)

    def post(_: int) -> tuple[int, str]:
        barrier.wait()
        answer = handlers["api"](api_event("POST", "/v1/jobs", VEO, {"idempotency-key": "same"}), Context())
        return answer["statusCode"], json.loads(answer["body"])["id"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(post, range(8)))
    assert {status for status, _ in results} == {202}
    assert len({job_id for _, job_id in results}) == 1
    assert len(list(sandbox.tasks)) == 1
    assert len([i for i in table_items(aws) if i["pk"].startswith("job#")]) == 1
