"""A local double of the video providers' HTTP APIs, for development and tests only.

``ProviderSandbox`` serves Freepik (``/freepik``), UniAll (``/uniall``) and AIHubMax
(``/aihubmax``) under one root URL, moves submitted tasks through their statuses on a
clock, sends the providers' webhooks, and serves the finished video from ``/files``.
"""

from .config import Faults, SandboxConfig
from .server import PROVIDERS, LoggedRequest, ProviderSandbox
from .tasks import FAIL_MARKER, Phase, StatusChange, Task, WebhookDelivery

__all__ = [
    "FAIL_MARKER",
    "PROVIDERS",
    "Faults",
    "LoggedRequest",
    "Phase",
    "ProviderSandbox",
    "SandboxConfig",
    "StatusChange",
    "Task",
    "WebhookDelivery",
]
