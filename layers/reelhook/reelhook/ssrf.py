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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Explicit, so the answer is the same on every Python release (``is_global`` has changed
# between patch releases). IPv4-mapped IPv6 addresses are unwrapped and checked as IPv4;
# every other form that embeds or translates an IPv4 address is refused outright, since
# whatever gateway translates it may reach a private network.
_DENIED_V4 = tuple((ipaddress.IPv4Network(net), why) for net, why in (
    ("0.0.0.0/8", "unspecified"), ("10.0.0.0/8", "private"), ("100.64.0.0/10", "shared (carrier NAT)"),
    ("127.0.0.0/8", "loopback"), ("169.254.0.0/16", "link-local"), ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol"), ("192.0.2.0/24", "documentation"), ("192.88.99.0/24", "6to4 relay"),
    ("192.168.0.0/16", "private"), ("198.18.0.0/15", "benchmarking"), ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"), ("224.0.0.0/4", "multicast"), ("240.0.0.0/4", "reserved"),
))
_DENIED_V6 = tuple((ipaddress.IPv6Network(net), why) for net, why in (
    ("::/128", "unspecified"), ("::1/128", "loopback"), ("::/96", "IPv4-compatible"),
    ("::ffff:0:0:0/96", "IPv4-translated"), ("64:ff9b::/96", "NAT64"),
    ("64:ff9b:1::/48", "NAT64"), ("100::/64", "discard"), ("2001::/32", "Teredo"), ("2001:10::/28", "ORCHID"),
    ("2001:20::/28", "ORCHID"), ("2001:db8::/32", "documentation"), ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"), ("5f00::/16", "segment routing"),
))
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")


def address_refusal(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be connected to (a category such as "link-local"), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return address_refusal(ip.ipv4_mapped)
        for network, why in _DENIED_V6:
            if ip in network:
                return why
        if ip not in _GLOBAL_UNICAST_V6:  # loopback, ULA, link-local, multicast, reserved
            return "non-global IPv6"
        return None
    for network, why in _DENIED_V4:
        if ip in network:
            return why
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, in any form a resolver accepts (2852039166, 0xA9FEA9FE,
    0251.0376.0251.0376, 169.254.43518, [::ffff:a9fe:a9fe]), or None for a name."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdecimal():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))  # the classic inet_aton forms
        except OSError:
            return None
    return None


def literal_refusal(host: str, *, allow_loopback: bool = False) -> str | None:
    """Why a URL's host may not be used if it is a literal address ("a link-local address"); no DNS."""
    ip = literal_address(host)
    if ip is None or (allow_loopback and ip.is_loopback):
        return None
    why = address_refusal(ip)
    return None if why is None else f"names a {why} address ({ip}); only public hosts are allowed"


def _is_public(address: str) -> bool:
    return address_refusal(ipaddress.ip_address(address.split("%", 1)[0])) is None


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
