"""Fault bookkeeping and the pieces of fault injection that are not HTTP plumbing.

- ``FaultCounters``: what was injected, for ``ProviderSandbox.fault_counts()``;
- ``ForgedDelivery`` / ``DroppedWebhook``: records of forged and dropped webhooks;
- ``forge``: builds one forged webhook next to a real one;
- ``choose_download_fault``: decides how (and whether) one download misbehaves.

The decisions themselves draw from ``Faults`` (config.py), the one seeded random source.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .config import DownloadFaultKind, Faults, ForgedKind, SandboxConfig
from .freepik import sign, webhook_key
from .protocol import Outgoing, encode_json
from .tasks import Phase, Task

STALE_BY_SECONDS = 300  # the tolerance window receivers are expected to enforce
TOKEN_PARAM = "token"
SIGNED_ONLY: frozenset[ForgedKind] = frozenset({"bad_signature", "stale_timestamp", "replay"})
TOKEN_KINDS: frozenset[ForgedKind] = frozenset({"bad_token", "missing_token"})

COUNTERS = (
    "webhooks_sent",  # real deliveries made (each copy counts once, retries do not)
    "webhook_duplicates",  # extra copies scheduled beyond the first
    "webhooks_dropped",  # real webhooks never sent (all their copies)
    "forged_sent",
    "api_faults",  # creates and status GETs answered with an injected error
    "rate_limited",  # creates and status GETs refused by a provider's rate limit (429)
    "truncated",
    "stalled",
    "expired",
    "download_errors",  # injected S3 500s (download_failure_kind="error")
    "empty_bodies",  # 200 video/mp4 with Content-Length 0
    "html_answers",  # 200 text/html (a CDN's error or login page)
    "not_video_bodies",  # 200 video/mp4 whose bytes are not a video
    "tasks_never_finishing",  # tasks created with NEVER_FINISH: running for ever
    "tasks_vanished",  # tasks created with TASK_VANISHES: 404 on every status GET
    "task_missing_404s",  # status GETs answered 404 for a vanished task
    "tasks_not_video",  # tasks created with NOT_VIDEO_ALWAYS: every result GET is no video
    "downloads_ok",  # GETs of a result file served without an injected fault
    "forged_url_fetches",  # downloads of a result URL that only a forged webhook named
)


class FaultCounters:
    """Thread-safe counters of injected faults (every name in ``COUNTERS``, from 0)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)

    def add(self, name: str, amount: int = 1) -> None:
        if name not in self._counts:
            raise KeyError(f"unknown fault counter {name!r}")
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


@dataclass(frozen=True)
class DroppedWebhook:
    """A real webhook that was never sent, and why: "task", "marker" or "rate"."""

    task_id: str
    delivery_id: str
    status: str
    reason: Literal["task", "marker", "rate"]
    at: float


@dataclass(frozen=True)
class ForgedDelivery:
    """One forged webhook as sent, and the receiver's answer."""

    kind: ForgedKind
    task_id: str  # the real task it was sent alongside
    claimed_task_id: str  # the task id the body names (a fake one for "fake_task")
    url: str
    headers: dict[str, str]
    body: bytes
    response_status: int | None  # None when no HTTP answer came back
    response_body: bytes
    error: str | None
    sent_at: float

    def response_json(self) -> Any:
        """The receiver's answer as JSON, or None if it is not JSON."""
        try:
            return json.loads(self.response_body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None


@dataclass(frozen=True)
class Forgery:
    """A forged webhook waiting to be sent (``after_original``: only once the real one was)."""

    kind: ForgedKind
    task_id: str
    claimed_task_id: str
    outgoing: Outgoing
    after_original: bool


def forgeable_kinds(faults: Faults, task: Task, original: Outgoing, dropped: bool) -> list[ForgedKind]:
    """The configured kinds that make sense for this webhook.

    Signature kinds need a signed (Freepik) webhook; token kinds need a ``token`` query
    parameter to tamper with; a replay needs the original to be delivered first.
    """
    has_token = any(name == TOKEN_PARAM for name, _ in parse_qsl(urlsplit(original.url).query))
    kinds: list[ForgedKind] = []
    for kind in faults.forged_kinds:
        if kind in SIGNED_ONLY and task.provider != "freepik":
            continue
        if kind in TOKEN_KINDS and not has_token:
            continue
        if kind == "replay" and dropped:
            continue
        kinds.append(kind)
    return kinds


def forge(kind: ForgedKind, task: Task, original: Outgoing, config: SandboxConfig, root_url: str,
          now: float) -> Forgery:
    """A forged webhook of ``kind`` for ``task``, to the original's URL.

    Every forged body claims completion with a result URL the real task never had (under
    ``/files/forged-...``, which the sandbox counts as ``forged_url_fetches`` if fetched).
    ``fake_task`` names another, made-up task; the others name the real one.

    - ``bad_signature``: signed with the wrong key;
    - ``stale_timestamp``: validly signed, but timestamped more than 300 s ago;
    - ``bad_token`` / ``missing_token``: the URL's ``token`` replaced by a random one, or removed;
    - ``replay``: the original's ``webhook-id`` again, validly signed over a different body;
    - ``fake_task``: validly signed (Freepik) or plain (AIHubMax), about a fake task.
    """
    faults = config.faults
    forged_url = f"{root_url}/files/forged-{faults.token_hex(8)}.mp4?expires={int(now) + 600}"
    claimed = task.task_id
    if kind == "fake_task":
        hex_id = faults.token_hex(16)
        if task.provider == "freepik":
            claimed = str(uuid.UUID(hex=hex_id, version=4))
        else:
            claimed = f"task-unified-{int(now)}-{hex_id[:8]}"
    body = encode_json(_completed_body(task, claimed, forged_url, config))
    url = original.url
    if kind == "bad_token":
        url = _with_token(url, "forged-" + faults.token_hex(8))
    elif kind == "missing_token":
        url = _with_token(url, None)
    headers = {key: value for key, value in original.headers.items() if not key.startswith("webhook-")}
    delivery_id = f"forged-{kind}-{faults.token_hex(4)}"
    if task.provider == "freepik":
        key = webhook_key(config.freepik_webhook_secret, config.freepik_webhook_key_encoding)
        webhook_id = original.delivery_id if kind == "replay" else "msg_" + faults.token_hex(16)
        timestamp = int(now)
        if kind == "stale_timestamp":
            timestamp -= STALE_BY_SECONDS + faults.randint(60, 3600)
        if kind == "bad_signature":
            key = b"forged-" + faults.token_hex(16).encode()
        headers |= {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(key, webhook_id, timestamp, body),
        }
        delivery_id = webhook_id
    outgoing = Outgoing(url, body, headers, original.status, delivery_id)
    return Forgery(kind, task.task_id, claimed, outgoing, after_original=kind == "replay")


def _completed_body(task: Task, claimed_id: str, url: str, config: SandboxConfig) -> dict[str, Any]:
    completed = task.statuses[Phase.COMPLETED]
    if task.provider == "freepik":
        item: Any = {"url": url} if config.freepik_generated_objects else url
        return {"task_id": claimed_id, "status": completed, "generated": [item]}
    return {
        "id": claimed_id,
        "model": task.model,
        "object": "video.generation.task",
        "progress": 100,
        "status": completed,
        "created": int(task.created_at),
        "type": "video",
        "results": [{"url": url} if config.aihubmax_result_objects else url],
    }


def _with_token(url: str, token: str | None) -> str:
    parts = urlsplit(url)
    query = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name != TOKEN_PARAM]
    if token is not None:
        query.append((TOKEN_PARAM, token))
    return urlunsplit(parts._replace(query=urlencode(query)))


def choose_download_fault(faults: Faults, earlier_downloads: int) -> DownloadFaultKind | None:
    """How this download misbehaves, if at all.

    A task's first ``download_failures_before_success`` downloads always fail (with
    ``download_failure_kind``), then ``first_download_faults`` are used up; after that,
    ``expire_rate``, ``empty_rate``, ``html_rate``, ``not_video_rate``, ``truncate_rate`` and
    ``stall_rate`` are tried in that order.
    """
    if earlier_downloads < faults.download_failures_before_success:
        return faults.download_failure_kind
    first = faults.take_first_download_fault()
    if first is not None:
        return first
    if faults.chance(faults.expire_rate):
        return "expire"
    if faults.chance(faults.empty_rate):
        return "empty"
    if faults.chance(faults.html_rate):
        return "html"
    if faults.chance(faults.not_video_rate):
        return "not_video"
    if faults.chance(faults.truncate_rate):
        return "truncate"
    if faults.chance(faults.stall_rate):
        return "stall"
    return None
