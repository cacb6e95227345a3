"""Configuration of the provider sandbox, including the fault hooks tests use."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from .rate_limits import FREEPIK_LIMITS, RateLimit

SAMPLE_VIDEO = Path(__file__).with_name("sample.mp4")
NO_WEBHOOK_MARKER = "NO_WEBHOOK"

UniallResultShape = Literal["video_url", "result.video_url", "result.outputs"]
# The document's only create answer is "{}"; "id" and "task_id" are what reelhook reads if present.
UniallCreateAnswer = Literal["id", "task_id", "empty"]
WebhookKeyEncoding = Literal["raw", "base64"]
ApiRequestKind = Literal["submit", "status"]
# How a forged webhook is wrong; see faults.forge for what each one sends.
ForgedKind = Literal["bad_signature", "stale_timestamp", "bad_token", "missing_token", "replay", "fake_task"]
FORGED_KINDS: tuple[ForgedKind, ...] = (
    "bad_signature", "stale_timestamp", "bad_token", "missing_token", "replay", "fake_task",
)
# How a download fails: cut short, paused mid-body, a 403 "Request has expired", an S3 500,
# a 200 video/mp4 with an empty body, a 200 text/html page, or 200 video/mp4 bytes that are no video.
DownloadFaultKind = Literal["truncate", "stall", "expire", "error", "empty", "html", "not_video"]

_T = TypeVar("_T")


def _sample_video() -> bytes:
    return SAMPLE_VIDEO.read_bytes()


@dataclass
class Faults:
    """Misbehaviour to inject; the default injects nothing.

    Every random decision comes from one ``random.Random(seed)`` (see ``rng``), so a run is
    reproducible for the same sequence of requests and status changes. Decisions are drawn
    when the event happens (a request arrives, a task changes status), so concurrent clients
    can change their order; single-threaded tests are fully deterministic.

    ``fail_submits`` holds HTTP status codes; each create request (after authentication)
    takes the first one and answers with it instead of creating a task.
    """

    fail_submits: list[int] = field(default_factory=list)
    # The same per provider (taken before fail_submits): {"freepik": [402, 402]}.
    fail_submits_for: dict[str, list[int]] = field(default_factory=dict)
    seed: int | None = 0  # None seeds from the OS (not reproducible)

    # -- provider API (after authentication) -----------------------------------------------
    # Chance that a create or a status GET is refused with one of the statuses below.
    api_fault_rate: float = 0.0
    api_fault_statuses: tuple[int, ...] = (429, 500, 503)  # for status GETs
    # For creates: refusals only by default, since a 500 leaves the outcome unknown.
    submit_fault_statuses: tuple[int, ...] = (429, 503)
    retry_after_seconds: int = 1  # the Retry-After of every 429 (0 allowed)

    # -- webhooks (Freepik signed webhooks, AIHubMax callbacks) -------------------------------
    webhook_copies_max: int = 1  # each webhook is delivered 1..N times
    # Hold each task's webhooks until it is final (or webhook_hold_seconds pass), then release
    # them (copies included) in a random order; without shuffle a task's webhooks keep order.
    webhook_shuffle: bool = False
    webhook_hold_seconds: float = 1.0
    # Delay each delivery by a random 0..jitter seconds (with shuffle, each independently).
    webhook_jitter_seconds: float = 0.0
    webhook_drop_rate: float = 0.0  # chance that a webhook (all its copies) is never sent
    drop_all_webhooks_for: set[str] = field(default_factory=set)  # task ids
    # Tasks whose prompt contains this never get webhooks (like FAIL_ME; None turns it off).
    drop_webhooks_marker: str | None = NO_WEBHOOK_MARKER
    # Chance that a webhook is accompanied by one forged delivery to the same URL.
    forged_rate: float = 0.0
    forged_kinds: tuple[ForgedKind, ...] = FORGED_KINDS  # the kinds to pick from

    # -- result downloads (GET /files/...; HEAD is never faulted) ------------------------------
    truncate_rate: float = 0.0  # half the body, then the connection closes
    stall_rate: float = 0.0  # half the body, a pause of stall_seconds, then the rest
    stall_seconds: float = 5.0
    expire_rate: float = 0.0  # 403 "Request has expired"
    empty_rate: float = 0.0  # 200 video/mp4, Content-Length 0
    html_rate: float = 0.0  # 200 text/html
    not_video_rate: float = 0.0  # 200 video/mp4 with bytes that are no video
    # Each task's first K downloads fail with download_failure_kind, later ones succeed.
    download_failures_before_success: int = 0
    download_failure_kind: DownloadFaultKind = "truncate"
    # The sandbox's first downloads (any task, after the per-task failures above) fail with
    # these, in order: a chaos run that must prove a fault was met cannot miss it by chance.
    first_download_faults: list[DownloadFaultKind] = field(default_factory=list)

    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False, compare=False)
    _rng: random.Random | None = field(default=None, init=False, repr=False, compare=False)

    # -- the random source ------------------------------------------------------------------

    @property
    def rng(self) -> random.Random:
        """The one ``random.Random(seed)`` behind every fault decision (made on first use)."""
        with self._lock:
            if self._rng is None:
                self._rng = random.Random(self.seed)
            return self._rng

    def reseed(self, seed: int | None) -> None:
        """Start the random sequence again from ``seed``."""
        with self._lock:
            self.seed = seed
            self._rng = random.Random(seed)

    def chance(self, rate: float) -> bool:
        """True with probability ``rate``; rates of 0 or 1 decide without drawing."""
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        with self._lock:
            return self.rng.random() < rate

    def randint(self, low: int, high: int) -> int:
        if high <= low:
            return low
        with self._lock:
            return self.rng.randint(low, high)

    def uniform(self, high: float) -> float:
        """A random float in ``[0, high]`` (0 without drawing when ``high`` is not positive)."""
        if high <= 0:
            return 0.0
        with self._lock:
            return self.rng.uniform(0, high)

    def choice(self, options: Sequence[_T]) -> _T:
        if len(options) == 1:
            return options[0]
        with self._lock:
            return self.rng.choice(options)

    def shuffle(self, items: list[_T]) -> None:
        with self._lock:
            self.rng.shuffle(items)

    def token_hex(self, nbytes: int = 16) -> str:
        with self._lock:
            return self.rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    # -- provider API faults ----------------------------------------------------------------------

    @property
    def fail_next_submit_with(self) -> int | None:
        """The status the next create request will get from the queue, if any."""
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

    def take_submit_failure(self, provider: str | None = None) -> int | None:
        with self._lock:
            own = self.fail_submits_for.get(provider or "")
            if own:
                return own.pop(0)
            return self.fail_submits.pop(0) if self.fail_submits else None

    def take_first_download_fault(self) -> DownloadFaultKind | None:
        with self._lock:
            return self.first_download_faults.pop(0) if self.first_download_faults else None

    def take_api_fault(self, request: ApiRequestKind, provider: str | None = None) -> int | None:
        """The status to answer this create or status GET with instead, if any.

        Creates take the ``fail_submits`` queue first, then ``api_fault_rate`` with
        ``submit_fault_statuses``; status GETs use ``api_fault_statuses``.
        """
        if request == "submit":
            queued = self.take_submit_failure(provider)
            if queued is not None:
                return queued
            statuses = self.submit_fault_statuses
        else:
            statuses = self.api_fault_statuses
        if not statuses or not self.chance(self.api_fault_rate):
            return None
        return self.choice(statuses)

    def retry_after(self, status: int) -> dict[str, str]:
        """The ``Retry-After`` header an injected failure carries (429 only)."""
        return {"Retry-After": str(max(0, int(self.retry_after_seconds)))} if status == 429 else {}

    # -- webhook faults -------------------------------------------------------------------------

    def drops_all_webhooks(self, task_id: str, prompt: str | None) -> str | None:
        """Why every webhook of this task is dropped ("task" or "marker"), or None."""
        if task_id in self.drop_all_webhooks_for:
            return "task"
        if self.drop_webhooks_marker and self.drop_webhooks_marker in (prompt or ""):
            return "marker"
        return None


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
    # Give every task its own file: video_bytes followed by an ISO-BMFF "free" box naming the
    # task. Off by default, when every task gets video_bytes exactly (served_sha256).
    distinct_videos: bool = False
    # Pad the trailing "free" box so that each file is (at least) this many bytes; streamed
    # in chunks, so 1 GiB files cost no memory. None: no padding.
    video_size_bytes: int | None = None
    host: str = "127.0.0.1"
    port: int = 0  # 0 picks a free port
    # Base for the URLs the sandbox hands out (result links); defaults to http://host:port.
    public_url: str | None = None
    # Accept http:// (not only https://) for input media URLs such as reference images.
    allow_http_inputs: bool = False
    # Result shapes the providers' documents leave open.
    freepik_generated_objects: bool = False  # generated: [{"url": ...}] instead of [url]
    uniall_result_shape: UniallResultShape = "video_url"
    # With "result.outputs": how many links a finished task lists (each a paid video).
    uniall_output_count: int = 1
    uniall_create_answer: UniallCreateAnswer = "id"
    # AIHubMax's document names only "model" and "reference_image_urls". The other fields'
    # names are inferred, so the sandbox takes them under whatever names it is given here
    # (reelhook's inferred name -> the name the sandbox expects), and with
    # aihubmax_strict_fields refuses any field it does not know, as a provider might.
    aihubmax_field_names: dict[str, str] = field(default_factory=dict)
    aihubmax_strict_fields: bool = False
    # Its create and status paths are not documented either: these are reelhook's inference.
    aihubmax_create_path: str = "/v1/videos/generations"
    aihubmax_status_prefix: str = "/v1/tasks/"
    aihubmax_id_field: Literal["id", "task_id"] = "id"  # the document shows a "Task ID" value, unnamed
    aihubmax_result_objects: bool = False  # results: [{"url": ...}] instead of [url]
    # AIHubMax reports "completed" with empty results once before the real completion.
    aihubmax_early_completed: bool = False
    webhook_timeout_seconds: float = 10.0
    webhook_attempts: int = 4  # first try plus retries on connection errors and 5xx
    webhook_backoff_seconds: float = 0.1  # doubled after every failed attempt
    webhook_workers: int = 8  # deliveries in parallel (a task's own stay in order unless shuffled)
    log_requests: bool = False
    # Each provider's limits on its API (creates and status GETs; result files are not
    # limited). Read when the sandbox is built. Freepik's are documented; {} turns them off.
    rate_limits: dict[str, tuple[RateLimit, ...]] = field(default_factory=lambda: {"freepik": FREEPIK_LIMITS})
    faults: Faults = field(default_factory=Faults)
