"""Deployment configuration, read from the environment once per process.

Nothing secret lives here: provider keys and webhook secrets come from the
Secrets Manager secret named by ``SECRET_ID`` (see ``adapters.secrets``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache

from reelhook.records import field, record


def _env(name: str, default: str = "", environ: Mapping[str, str] | None = None) -> str:
    return (os.environ if environ is None else environ).get(name, default).strip()


def _env_bool(name: str, default: bool = False) -> bool:
    raw = _env(name)
    if not raw:
        return default
    return raw.lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    raw = _env(name, environ=environ)
    return int(raw) if raw else default


@record
class ProviderSettings:
    """Where a provider lives and how it authenticates (never the key itself).

    A provider module declares its defaults; ``{NAME}_BASE_URL``, ``{NAME}_API_KEY_HEADER``,
    ``{NAME}_DOWNLOAD_HOSTS`` and ``{NAME}_<EXTRA>`` override them, so a new provider needs
    no change here.
    """

    base_url: str
    api_key_header: str = "Authorization"
    api_key_prefix: str = "Bearer "
    # Hosts the transfer may download results from; empty means any public host.
    download_hosts: tuple[str, ...] = ()
    extras: dict[str, str] = field(default_factory=dict)
    # Governance, shared by every concurrent invocation: requests per second (None: no limit),
    # how many of them may go at once after a quiet spell, and tasks in flight (0: no cap).
    requests_per_second: float | None = None
    burst: int = 5
    max_in_flight: int = 0

    def from_env(self, name: str, environ: Mapping[str, str] | None = None) -> ProviderSettings:
        """These defaults with the overrides in ``environ`` (the process environment by default)."""
        prefix = name.upper()

        def env(suffix: str, default: str = "") -> str:
            return _env(f"{prefix}_{suffix}", default, environ)

        return ProviderSettings(
            base_url=env("BASE_URL", self.base_url).rstrip("/"),
            api_key_header=env("API_KEY_HEADER", self.api_key_header),
            api_key_prefix=self.api_key_prefix,
            download_hosts=_hosts(env("DOWNLOAD_HOSTS", ",".join(self.download_hosts))),
            extras={key: env(key.upper(), value) for key, value in self.extras.items()},
            requests_per_second=_rate(env("REQUESTS_PER_SECOND"), self.requests_per_second),
            burst=max(1, _env_int(f"{prefix}_BURST", self.burst, environ)),
            max_in_flight=max(0, _env_int(f"{prefix}_MAX_IN_FLIGHT", self.max_in_flight, environ)),
        )


def _rate(raw: str, default: float | None) -> float | None:
    """Empty keeps the provider's default; 0 (or "none") means no limit."""
    if not raw:
        return default
    if raw.lower() in {"none", "unlimited"}:
        return None
    value = float(raw)
    return value if value > 0 else None


def _hosts(raw: str) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in raw.split(",") if h.strip())


@record
class Settings:
    jobs_table: str
    video_bucket: str
    transfer_queue_url: str
    submit_queue_url: str
    poll_queue_url: str
    secret_id: str
    callback_base_url: str
    output_prefix: str
    job_ttl_days: int
    reconcile_after_seconds: int
    active_shards: int
    poll_base_seconds: int
    poll_max_seconds: int
    # How often the scheduled poller runs (its schedule's rate): each pass dispatches the checks
    # due before the next one.
    poller_period_seconds: int
    # Local development only: lets the fetcher use http:// and loopback hosts.
    allow_insecure_fetch: bool
    max_download_bytes: int
    # Buckets (besides the stack's own inputs/ prefix) whose objects jobs may name as s3:// inputs.
    input_buckets: tuple[str, ...]
    # Deadlines: a job still queued (waiting for budget or concurrency), or submitted/running,
    # this long fails as deadline_exceeded (a storing job's deadline is its links' expiry).
    queued_max_age_seconds: int = 24 * 3600
    running_max_age_seconds: int = 6 * 3600
    # Status GETs answered 404 in a row before the job fails as provider_task_missing.
    task_missing_polls: int = 5
    # A terminal job whose event the notifier has not recorded this long after the transition
    # is published again by the poll worker.
    event_republish_after_seconds: int = 300
    # Routing of logical models: providers in the order tried (others after them), and when a
    # job moves to its next route ("submit", "any" or "none"; a job's own routing overrides).
    routing_provider_order: tuple[str, ...] = ()
    routing_failover: str = "submit"
    # A submit refused (429/503) this many times in a row moves a job with routes left on.
    refusals_before_failover: int = 3
    # Consecutive submit failures that open a provider's circuit, and how long it stays open
    # before one job probes it again.
    circuit_failure_threshold: int = 5
    circuit_cooldown_seconds: int = 60

    def provider(self, name: str) -> ProviderSettings:
        return _provider_settings(name)


@cache
def settings() -> Settings:
    return Settings(
        jobs_table=_env("JOBS_TABLE", "reelhook-jobs"),
        video_bucket=_env("VIDEO_BUCKET", "reelhook-videos"),
        transfer_queue_url=_env("TRANSFER_QUEUE_URL"),
        submit_queue_url=_env("SUBMIT_QUEUE_URL"),
        poll_queue_url=_env("POLL_QUEUE_URL"),
        secret_id=_env("SECRET_ID", "reelhook/secrets"),
        callback_base_url=_env("CALLBACK_BASE_URL").rstrip("/"),
        output_prefix=_env("OUTPUT_PREFIX", "videos/").lstrip("/"),
        job_ttl_days=_env_int("JOB_TTL_DAYS", 90),
        reconcile_after_seconds=_env_int("RECONCILE_AFTER_SECONDS", 900),
        active_shards=max(1, _env_int("ACTIVE_SHARDS", 4)),
        poll_base_seconds=max(1, _env_int("POLL_BASE_SECONDS", 15)),
        poll_max_seconds=max(1, _env_int("POLL_MAX_SECONDS", 120)),
        poller_period_seconds=max(1, _env_int("POLLER_PERIOD_SECONDS", 60)),
        allow_insecure_fetch=_env_bool("REELHOOK_ALLOW_INSECURE_FETCH"),
        max_download_bytes=_env_int("MAX_DOWNLOAD_BYTES", 4 * 1024**3),
        input_buckets=tuple(b for b in (x.strip() for x in _env("INPUT_BUCKETS").split(",")) if b),
        queued_max_age_seconds=max(1, _env_int("QUEUED_MAX_AGE_SECONDS", 24 * 3600)),
        running_max_age_seconds=max(1, _env_int("RUNNING_MAX_AGE_SECONDS", 6 * 3600)),
        task_missing_polls=max(1, _env_int("TASK_MISSING_POLLS", 5)),
        event_republish_after_seconds=max(1, _env_int("EVENT_REPUBLISH_AFTER_SECONDS", 300)),
        routing_provider_order=tuple(p for p in (x.strip().lower() for x in
                                                 _env("ROUTING_PROVIDER_ORDER").split(",")) if p),
        routing_failover=_env("ROUTING_FAILOVER", "submit").lower() or "submit",
        refusals_before_failover=max(1, _env_int("REFUSALS_BEFORE_FAILOVER", 3)),
        circuit_failure_threshold=max(1, _env_int("CIRCUIT_FAILURE_THRESHOLD", 5)),
        circuit_cooldown_seconds=max(1, _env_int("CIRCUIT_COOLDOWN_SECONDS", 60)),
    )


@cache
def _provider_settings(name: str) -> ProviderSettings:
    from reelhook.providers import get_provider

    return get_provider(name).defaults.from_env(name)
