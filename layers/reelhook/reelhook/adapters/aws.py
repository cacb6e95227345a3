"""AWS clients, created lazily and once per process.

Plain botocore clients: boto3's session adds its resource layer and s3transfer to every
cold start, and reelhook uses neither. ``AWS_ENDPOINT_URL`` (honoured by botocore itself)
points every client at a local stand-in such as moto's server.

S3 requests go with ``UNSIGNED-PAYLOAD``: every upload reelhook makes carries a checksum
header (SHA-256 or CRC32) that is signed and that S3 verifies, which binds the body as
firmly; botocore would otherwise SHA-256 the whole body once more to sign it (it skips that
on its own only for checksums it computed itself, and never over plain http).
"""

from __future__ import annotations

import threading
from typing import Any

# A Lambda environment runs one event at a time, with at most 16 threads calling AWS at once (the
# poller's shard passes; a submit batch or a poll worker uses 10, a copy 4 parts): each keeps
# its connection.
POOL_CONNECTIONS = 16
_pool_connections = POOL_CONNECTIONS
_clients: dict[str, Any] = {}
_session: Any = None
_lock = threading.Lock()


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is not None:
        return found
    global _session
    with _lock:
        if service not in _clients:
            import botocore.session
            from botocore.config import Config

            # One session for every client: each new session re-reads botocore's data files.
            if _session is None:
                _session = botocore.session.get_session()
            extra: dict[str, Any] = {"s3": {"payload_signing_enabled": False}} if service == "s3" else {}
            _clients[service] = _session.create_client(
                service,
                config=Config(
                    retries={"mode": "standard", "max_attempts": 4},
                    connect_timeout=3,
                    read_timeout=20,
                    max_pool_connections=_pool_connections,
                    **extra,
                ),
            )
        return _clients[service]


def reset_clients() -> None:
    """Forget every client (tests switch endpoints between runs)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None


def set_pool_connections(connections: int) -> int:
    """Size the connection pool of every client made from now on; returns the size it replaces.

    A process that runs many functions' events at once (the local stack) needs one connection
    per thread: beyond the pool, urllib3 opens a connection for each request and closes it.
    """
    global _pool_connections
    with _lock:
        previous, _pool_connections = _pool_connections, max(1, connections)
    reset_clients()
    return previous
