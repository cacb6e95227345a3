"""reelhook's Python client: one call to generate a video, typed results, checked downloads.

    from reelhook_client import Client

    with Client("https://<api id>.execute-api.<region>.amazonaws.com", auth="iam") as client:
        job = client.run("freepik/veo-3-1-reference-to-video", prompt="...", reference_images=["https://..."])
        client.download(job, "video.mp4")
"""

from reelhook_client._core import NoOutputs
from reelhook_client._version import __version__
from reelhook_client.async_client import AsyncClient
from reelhook_client.auth import BearerAuth, SigV4Auth
from reelhook_client.client import Client
from reelhook_client.errors import (
    ApiError,
    ApiUnreachable,
    AuthError,
    ConfigurationError,
    Conflict,
    DownloadFailed,
    IntegrityError,
    JobCancelled,
    JobFailed,
    NotFound,
    RateLimited,
    ReelhookError,
    ServerError,
    UnexpectedResponse,
    ValidationFailed,
    WaitTimeout,
)
from reelhook_client.models import (
    TERMINAL_STATUSES,
    Attempt,
    Audio,
    Cancellation,
    Circuit,
    Event,
    FieldError,
    InFlight,
    Job,
    JobError,
    JobPage,
    Media,
    ModelDefault,
    ModelInfo,
    ModelLimit,
    Output,
    ProviderHealth,
    RateBudget,
    Route,
)

__all__ = [
    "TERMINAL_STATUSES", "ApiError", "ApiUnreachable", "AsyncClient", "Attempt", "Audio", "AuthError", "BearerAuth",
    "Cancellation", "Circuit", "Client", "ConfigurationError", "Conflict", "DownloadFailed", "Event", "FieldError",
    "InFlight", "IntegrityError", "Job", "JobCancelled", "JobError", "JobFailed", "JobPage", "Media", "ModelDefault",
    "ModelInfo", "ModelLimit", "NoOutputs", "NotFound", "Output", "ProviderHealth", "RateBudget", "RateLimited",
    "ReelhookError", "Route", "ServerError", "SigV4Auth", "UnexpectedResponse", "ValidationFailed", "WaitTimeout",
    "__version__",
]
