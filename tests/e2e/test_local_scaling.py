"""The local stack under load: the front's listen backlog, moto's per-service locks, and drivers
that keep up (and recover) instead of being the bottleneck."""

from __future__ import annotations

import select
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from reelhook_local.front import LocalFront
from reelhook_local.template import functions

CONNECTIONS = 500


def _connect_all(address: tuple[str, int], count: int, wait: float) -> tuple[list[socket.socket], int]:
    """Start ``count`` TCP connections at once; how many the kernel completed within ``wait``."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(address)
        sockets.append(sock)
    pending = set(sockets)
    established = 0
    end = time.monotonic() + wait
    while pending and time.monotonic() < end:
        _, writable, _ = select.select([], list(pending)[:900], [], max(0.0, end - time.monotonic()))
        for sock in writable:
            pending.discard(sock)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                established += 1
    return sockets, established


def test_front_accepts_500_simultaneous_connections_before_it_reads_any() -> None:
    # Not started yet: nothing accepts, so every connection must wait in the listen backlog
    # (the kernel completes the handshake only for as many as the backlog holds).
    front = LocalFront(functions())
    sockets, established = _connect_all(front.server.server_address[:2], CONNECTIONS, wait=2.0)
    try:
        assert established == CONNECTIONS
        front.start()

        def ask(sock: socket.socket) -> bytes:
            sock.setblocking(True)
            sock.settimeout(30)
            sock.sendall(b"GET /no-such-route HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data

        with ThreadPoolExecutor(64) as pool:
            answers = list(pool.map(ask, sockets))
        assert sum(a.startswith(b"HTTP/1.1 404") for a in answers) == CONNECTIONS
    finally:
        for sock in sockets:
            sock.close()
        front.stop()
