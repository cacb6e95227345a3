"""Fixtures of the sandbox tests: sandboxes that stop after the test, a client, a receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from reelhook_local.sandbox import ProviderSandbox, SandboxConfig
from tests.sandbox.support import AIHUBMAX_KEY, FREEPIK_KEY, SECRET, STEP, UNIALL_KEY, Receiver


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., ProviderSandbox]]:
    started: list[ProviderSandbox] = []

    def make(**overrides: Any) -> ProviderSandbox:
        config = SandboxConfig(
            freepik_api_key=FREEPIK_KEY,
            uniall_api_key=UNIALL_KEY,
            aihubmax_api_key=AIHUBMAX_KEY,
            freepik_webhook_secret=SECRET,
            step_seconds=STEP,
            webhook_backoff_seconds=0.01,
        )
        for name, value in overrides.items():
            setattr(config, name, value)
        sandbox = ProviderSandbox(config).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., ProviderSandbox]) -> ProviderSandbox:
    return make_sandbox()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()
