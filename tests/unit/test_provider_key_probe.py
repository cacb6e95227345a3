"""Each provider module's key probe (``reelhook doctor``): one GET that creates nothing, and
what its answer says about the key. A refusal is a bad key; a 404 for the task that cannot
exist (or a 200) is a working key; no answer, a 429 or a 5xx says nothing about the key."""

from __future__ import annotations

import json

import pytest
import urllib3

from reelhook.adapters.provider_http import api_key_field, auth_headers
from reelhook.providers import get_provider, provider_names
from reelhook.providers.base import KeyVerdict

PROVIDERS = provider_names()
# Each provider's own refusal body, as its documents (and the sandbox) give them.
REFUSALS = {
    "freepik": {"message": "Invalid API key"},
    "uniall": {"error": {"message": "invalid token"}},
    "aihubmax": {"error": {"code": "invalid_api_key", "message": "Invalid API key provided",
                           "type": "authentication_error"}},
}


def test_every_provider_has_a_refusal_here():
    assert set(REFUSALS) == set(PROVIDERS)


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_probe_is_a_get_without_a_body(name):
    provider = get_provider(name)
    call = provider.key_probe_call(provider.defaults.extras)
    assert call.method == "GET" and call.json is None and call.path.startswith("/")


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_is_a_bad_key_and_says_the_providers_words(name, status):
    probe = get_provider(name).read_key_probe(status, REFUSALS[name])
    assert probe.verdict is KeyVerdict.BAD_KEY
    assert f"HTTP {status}" in probe.detail and ("Invalid" in probe.detail or "invalid" in probe.detail)


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("status", [200, 404])
def test_a_404_for_the_missing_task_or_a_200_means_the_key_works(name, status):
    assert get_provider(name).read_key_probe(status, {"message": "Not found"}).verdict is KeyVerdict.WORKS


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, None])
def test_an_unavailable_provider_is_not_a_bad_key(name, status):
    body = "ReadTimeoutError: timed out" if status is None else {"message": "Service unavailable"}
    probe = get_provider(name).read_key_probe(status, body)
    assert probe.verdict is KeyVerdict.UNAVAILABLE
    assert ("timed out" in probe.detail) if status is None else (f"HTTP {status}" in probe.detail)


@pytest.mark.parametrize("name", PROVIDERS)
def test_no_credit_is_a_working_key_without_money(name):
    assert get_provider(name).read_key_probe(402, {"message": "Insufficient credits"}).verdict is KeyVerdict.NO_CREDIT


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("key", ["right", "wrong", ""])
def test_the_probe_against_the_sandbox_tells_a_right_key_from_a_wrong_one(name, key, sandbox):
    """The sandbox checks keys as the providers do: the probe's path and header are the real ones."""
    provider = get_provider(name)
    conf = provider.defaults.from_env(name, {f"{name.upper()}_BASE_URL": sandbox.base_url(name)})
    value = {"right": getattr(sandbox.config, api_key_field(name)), "wrong": "not-the-key", "": ""}[key]
    call = provider.key_probe_call(conf.extras)
    response = urllib3.request(call.method, conf.base_url + call.path, redirect=False,
                               headers=auth_headers(name, {api_key_field(name): value}, conf))
    probe = provider.read_key_probe(response.status, json.loads(response.data or b"null"))
    assert probe.verdict is (KeyVerdict.WORKS if key == "right" else KeyVerdict.BAD_KEY), probe
    assert len(sandbox.tasks) == 0  # it created nothing
