"""A local double of the video providers' HTTP APIs, for development and tests only.

``ProviderSandbox`` serves Freepik (``/freepik``), UniAll (``/uniall``) and AIHubMax
(``/aihubmax``) under one root URL, moves submitted tasks through their statuses on a
clock, sends the providers' webhooks, and serves the finished video from ``/files``.
``Faults`` (``SandboxConfig.faults``) injects seeded misbehaviour for chaos tests.
"""

from .config import NO_WEBHOOK_MARKER, Faults, SandboxConfig
from .faults import DroppedWebhook, ForgedDelivery
from .rate_limits import FREEPIK_LIMITS, RateLimit
from .server import PROVIDERS, LoggedRequest, ProviderSandbox
from .tasks import FAIL_MARKER, Phase, StatusChange, Task, WebhookDelivery
from .video import TaskVideo

__all__ = [
    "FAIL_MARKER",
    "FREEPIK_LIMITS",
    "NO_WEBHOOK_MARKER",
    "PROVIDERS",
    "DroppedWebhook",
    "Faults",
    "ForgedDelivery",
    "LoggedRequest",
    "Phase",
    "ProviderSandbox",
    "RateLimit",
    "SandboxConfig",
    "StatusChange",
    "Task",
    "TaskVideo",
    "WebhookDelivery",
]
