"""Configuration of the provider sandbox, including the fault hooks tests use."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SAMPLE_VIDEO = Path(__file__).with_name("sample.mp4")

UniallResultShape = Literal["video_url", "result.video_url", "result.outputs"]
WebhookKeyEncoding = Literal["raw", "base64"]


def _sample_video() -> bytes:
    return SAMPLE_VIDEO.read_bytes()


@dataclass
class Faults:
    """Misbehaviour to inject, consumed as requests arrive.

    ``fail_submits`` holds HTTP status codes; each create request (after authentication)
    takes the first one and answers with it instead of creating a task. Later kinds of
    fault (dropped or reordered webhooks, failing polls, truncated downloads) belong here
    too, each as a small queue or flag read by the part of the server it affects.
    """

    fail_submits: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def fail_next_submit_with(self) -> int | None:
        """The status the next create request will get, if any."""
        with self._lock:
            return self.fail_submits[0] if self.fail_submits else None

    @fail_next_submit_with.setter
    def fail_next_submit_with(self, status: int | None) -> None:
        """Queue one failing create request (``None`` clears the queue)."""
        with self._lock:
            if status is None:
                self.fail_submits.clear()
            else:
                self.fail_submits.append(status)

    def take_submit_failure(self) -> int | None:
        with self._lock:
            return self.fail_submits.pop(0) if self.fail_submits else None


@dataclass
class SandboxConfig:
    """Everything the sandbox can be told; the defaults suit an interactive local stack."""

    freepik_api_key: str = "sandbox-freepik-key"
    uniall_api_key: str = "sandbox-uniall-key"
    aihubmax_api_key: str = "sandbox-aihubmax-key"
    # Freepik signs webhooks with HMAC-SHA256 keyed by the secret's UTF-8 bytes ("raw");
    # "base64" keys it with the base64-decoded secret (a "whsec_" prefix dropped) instead.
    freepik_webhook_secret: str = "sandbox-webhook-secret"
    freepik_webhook_key_encoding: WebhookKeyEncoding = "raw"
    # Seconds between status steps; None disables the clock (use ProviderSandbox.advance).
    step_seconds: float | None = 0.3
    # How long a result link works after the task completes.
    link_ttl_seconds: float = 600.0
    video_bytes: bytes = field(default_factory=_sample_video, repr=False)
    host: str = "127.0.0.1"
    port: int = 0  # 0 picks a free port
    # Base for the URLs the sandbox hands out (result links); defaults to http://host:port.
    public_url: str | None = None
    # Accept http:// (not only https://) for input media URLs such as reference images.
    allow_http_inputs: bool = False
    # Result shapes the providers' documents leave open.
    freepik_generated_objects: bool = False  # generated: [{"url": ...}] instead of [url]
    uniall_result_shape: UniallResultShape = "video_url"
    aihubmax_result_objects: bool = False  # results: [{"url": ...}] instead of [url]
    # AIHubMax reports "completed" with empty results once before the real completion.
    aihubmax_early_completed: bool = False
    webhook_timeout_seconds: float = 10.0
    webhook_attempts: int = 4  # first try plus retries on connection errors and 5xx
    webhook_backoff_seconds: float = 0.1  # doubled after every failed attempt
    log_requests: bool = False
    faults: Faults = field(default_factory=Faults)
