"""Deployment configuration, read from the environment once per process.

Nothing secret lives here: provider keys and webhook secrets come from the
Secrets Manager secret named by ``SECRET_ID`` (see ``adapters.secrets``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _env_bool(name: str, default: bool = False) -> bool:
    raw = _env(name)
    if not raw:
        return default
    return raw.lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    return int(raw) if raw else default


@dataclass(frozen=True)
class ProviderSettings:
    """Where a provider family lives and how it authenticates (never the key itself)."""

    base_url: str
    api_key_header: str = "Authorization"
    api_key_prefix: str = "Bearer "
    # Hosts the transfer may download results from; empty means "the base URL's host".
    download_hosts: tuple[str, ...] = ()
    extras: dict[str, str] = field(default_factory=dict)


def _hosts(raw: str) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in raw.split(",") if h.strip())


@dataclass(frozen=True)
class Settings:
    jobs_table: str
    video_bucket: str
    transfer_queue_url: str
    secret_id: str
    callback_base_url: str
    output_prefix: str
    job_ttl_days: int
    reconcile_after_seconds: int
    active_shards: int
    poll_base_seconds: int
    poll_max_seconds: int
    # Local development only: lets the fetcher use http:// and loopback hosts.
    allow_insecure_fetch: bool
    max_download_bytes: int
    providers: dict[str, ProviderSettings]

    def provider(self, family: str) -> ProviderSettings:
        return self.providers[family]


@cache
def settings() -> Settings:
    return Settings(
        jobs_table=_env("JOBS_TABLE", "reelhook-jobs"),
        video_bucket=_env("VIDEO_BUCKET", "reelhook-videos"),
        transfer_queue_url=_env("TRANSFER_QUEUE_URL"),
        secret_id=_env("SECRET_ID", "reelhook/secrets"),
        callback_base_url=_env("CALLBACK_BASE_URL").rstrip("/"),
        output_prefix=_env("OUTPUT_PREFIX", "videos/").lstrip("/"),
        job_ttl_days=_env_int("JOB_TTL_DAYS", 90),
        reconcile_after_seconds=_env_int("RECONCILE_AFTER_SECONDS", 900),
        active_shards=max(1, _env_int("ACTIVE_SHARDS", 4)),
        poll_base_seconds=max(1, _env_int("POLL_BASE_SECONDS", 15)),
        poll_max_seconds=max(1, _env_int("POLL_MAX_SECONDS", 120)),
        allow_insecure_fetch=_env_bool("REELHOOK_ALLOW_INSECURE_FETCH"),
        max_download_bytes=_env_int("MAX_DOWNLOAD_BYTES", 4 * 1024**3),
        providers={
            "freepik": ProviderSettings(
                base_url=_env("FREEPIK_BASE_URL", "https://api.freepik.com").rstrip("/"),
                api_key_header=_env("FREEPIK_API_KEY_HEADER", "x-freepik-api-key"),
                api_key_prefix="",
                download_hosts=_hosts(_env("FREEPIK_DOWNLOAD_HOSTS")),
                extras={
                    "kling_endpoint": _env("FREEPIK_KLING_ENDPOINT", "video-reference"),
                    "webhook_secret_encoding": _env("FREEPIK_WEBHOOK_SECRET_ENCODING", "raw"),
                },
            ),
            "uniall": ProviderSettings(
                base_url=_env("UNIALL_BASE_URL", "https://api.uniall.ai").rstrip("/"),
                download_hosts=_hosts(_env("UNIALL_DOWNLOAD_HOSTS")),
            ),
            "aihubmax": ProviderSettings(
                base_url=_env("AIHUBMAX_BASE_URL", "https://api.aihubmax.com").rstrip("/"),
                download_hosts=_hosts(_env("AIHUBMAX_DOWNLOAD_HOSTS")),
                extras={"callbacks": _env("AIHUBMAX_CALLBACKS", "false")},
            ),
        },
    )
