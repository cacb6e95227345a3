"""Hypothesis over every status parser and the webhook and submit paths: no exception escapes
as a 500, and a refused request leaves nothing behind."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reelhook.providers import get_provider, provider_names
from reelhook.providers.base import MalformedPayload, Phase, ProviderStatus
from tests.conftest import Context, api_event, table_items

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
STATUS_WORDS = ["CREATED", "IN_PROGRESS", "COMPLETED", "FAILED", "queued", "in_progress", "completed", "failed",
                "pending", "processing", "cancelled", "DONE", ""]
URLISH = st.one_of(st.text(max_size=30), st.just("https://cdn.example/v.mp4"), st.integers(), st.none())
status_like = st.fixed_dictionaries(
    {"status": st.sampled_from(STATUS_WORDS) | json_values},
    optional={"task_id": json_values, "id": json_values, "generated": st.lists(URLISH | st.dictionaries(
        st.sampled_from(["url", "href"]), URLISH), max_size=3) | json_values,
        "results": st.lists(URLISH, max_size=3) | json_values, "video_url": URLISH,
        "result": st.dictionaries(st.sampled_from(["video_url", "outputs"]), json_values), "progress": json_values,
        "error": json_values, "data": json_values},
)
PARSER_SETTINGS = settings(max_examples=300, deadline=None)


@pytest.mark.parametrize("name", provider_names())
@PARSER_SETTINGS
@given(body=json_values | status_like | st.fixed_dictionaries({"data": status_like}))
def test_status_parsers_return_a_status_or_refuse_cleanly(name, body):
    provider = get_provider(name)
    for from_webhook in (True, False):
        try:
            status = provider.parse_status(body, from_webhook=from_webhook)
        except MalformedPayload:
            continue
        assert isinstance(status, ProviderStatus)
        assert isinstance(status.phase, Phase)
        assert all(isinstance(u, str) and u for u in status.result_urls)
        if status.phase is Phase.COMPLETED:
            assert status.result_urls  # completion always carries something to copy


def sign(secret: str, msg_id: str, ts: int, raw: bytes) -> str:
    return "v1," + base64.b64encode(hmac.new(secret.encode(), f"{msg_id}.{ts}.".encode() + raw, hashlib.sha256).digest()).decode()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode())
       | status_like.map(lambda v: json.dumps(v).encode()), signed=st.booleans())
def test_arbitrary_authentic_webhooks_never_500_and_refusals_change_nothing(aws, sandbox, handlers, body, signed):
    created = handlers["api"](api_event("POST", "/v1/jobs", {
        "model": "freepik/veo-3-1-reference-to-video", "prompt": "p", "reference_images": ["https://e.com/a.png"]},
        {"idempotency-key": "hypothesis-fixed-job"}), Context())
    job = json.loads(created["body"])
    from reelhook.adapters.secrets import callback_token_key
    from reelhook.webhook_auth import job_token

    ts, msg_id = int(time.time()), f"msg_{hashlib.sha1(body).hexdigest()}"  # noqa: S324 - an id, not security
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts),
               "webhook-signature": sign(sandbox.config.freepik_webhook_secret if signed else "wrong", msg_id, ts, body)}
    event = api_event("POST", f"/v1/callbacks/freepik/{job['id']}", body.decode("latin-1"), headers,
                      {"provider": "freepik", "job_id": job["id"]},
                      {"token": job_token(callback_token_key(), "freepik", job["id"])},
                      route="POST /v1/callbacks/{provider}/{job_id}")
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    before = table_items(aws)
    answer = handlers["callback"](event, Context())
    assert answer["statusCode"] in {200, 400, 401, 404, 413}
    if answer["statusCode"] != 200:
        assert table_items(aws) == before
    if not signed:
        assert answer["statusCode"] == 401


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values | st.fixed_dictionaries(
    {"model": st.sampled_from(["freepik/veo-3-1-reference-to-video", "uniall/veo3.1-video-720p",
                               "aihubmax/veo-3.1-reference-to-video", "nope"]), "prompt": json_values},
    optional={k: json_values for k in ("reference_images", "reference_videos", "first_frame", "duration", "seed",
                                       "aspect_ratio", "resolution", "audio", "options", "negative_prompt")}))
def test_arbitrary_job_bodies_never_500_and_refusals_write_nothing(aws, sandbox, handlers, body):
    before = table_items(aws)
    answer = handlers["api"](api_event("POST", "/v1/jobs", json.dumps(body)), Context())
    assert answer["statusCode"] in {202, 400, 409, 422}, answer
    if answer["statusCode"] != 202:
        assert table_items(aws) == before
        error = json.loads(answer["body"])["error"]
        assert error["message"] and all(f["field"] for f in error.get("fields", []))
