"""Checks a URL before reelhook fetches it: scheme, host allowlist, resolved addresses.

Provider result links are attacker-influenced input (anyone can forge a webhook body if
a token leaks), so a link must not reach the metadata service or a private network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

from reelhook.records import record

Resolver = Callable[[str, int], list[str]]


class UnsafeUrl(ValueError):
    """The URL may not be fetched; the message says why."""


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """``example.com`` matches itself; ``.example.com`` or ``*.example.com`` match subdomains."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*."):
            entry = entry[1:]
        if entry.startswith("."):
            if host.endswith(entry) and host != entry[1:]:
                return True
        elif host == entry:
            return True
    return False


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@record
class SafeTarget:
    """A checked URL and the address to connect to (pinned, so DNS cannot change it later)."""

    url: str
    host: str
    address: str

    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (the Host header and SNI keep the name)."""
        parts = urlsplit(self.url)
        ip = ipaddress.ip_address(self.address)
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def check_url(
    url: str,
    *,
    allowed_hosts: Sequence[str] = (),
    allow_insecure: bool = False,
    resolver: Resolver = _resolve,
) -> SafeTarget:
    """Return where to connect if the URL is safe to fetch, else raise ``UnsafeUrl``.

    ``allowed_hosts`` empty means any public host. ``allow_insecure`` (local stacks only)
    also admits ``http`` and loopback addresses. Every resolved address must be public,
    and the caller connects to the returned one, so a rebinding DNS answer cannot slip
    a private address in between the check and the connection.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from exc
    schemes = {"https", "http"} if allow_insecure else {"https"}
    if parts.scheme not in schemes:
        raise UnsafeUrl(f"scheme {parts.scheme!r} is not allowed (only {', '.join(sorted(schemes))})")
    host = parts.hostname
    if not host:
        raise UnsafeUrl("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeUrl("credentials in URLs are not allowed")
    if allowed_hosts and not host_allowed(host, allowed_hosts):
        raise UnsafeUrl(f"host {host!r} is not on the allowlist")
    try:
        # getaddrinfo also normalises decimal/octal/hex forms such as 2852039166 or 0251.0376.0251.0376.
        addresses = resolver(host, port or (443 if parts.scheme == "https" else 80))
    except OSError as exc:
        raise UnsafeUrl(f"host {host!r} does not resolve") from exc
    if not addresses:
        raise UnsafeUrl(f"host {host!r} does not resolve")
    for address in addresses:
        if allow_insecure and ipaddress.ip_address(address.split("%", 1)[0]).is_loopback:
            continue
        if not _is_public(address):
            raise UnsafeUrl(f"host {host!r} resolves to a non-public address")
    return SafeTarget(url=url, host=host, address=addresses[0].split("%", 1)[0])
