"""Which webhook URLs presto may POST to: the guard against server-side request forgery.

By default an endpoint must be `https` and its host must resolve to public addresses only:
no loopback, private, link-local (169.254.169.254, the cloud metadata service), shared,
multicast or reserved ranges. The check runs when an endpoint is registered and again
when each delivery connects (presto.serving.webhook_relay), against a name that resolved
to a public address once and to a private one later (DNS rebinding). `allow_private`
(`--webhook-allow-private`, for tests and private networks) lifts both rules.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrlError(ValueError):
    """A URL presto will not send webhooks to; the message says why."""


def is_public(address: IpAddress) -> bool:
    """Whether an address is on the public internet (an IPv4-mapped IPv6 address as the
    IPv4 address it carries)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_address(host: str, address: str, *, allow_private: bool) -> None:
    """Refuse `address` (what `host` resolved to) unless it is public or private ones are
    allowed."""
    if allow_private:
        return
    if not is_public(ipaddress.ip_address(address.split("%", 1)[0])):
        raise UnsafeUrlError(
            f"{host} resolves to {address}, which is not a public address "
            "(allowed only with --webhook-allow-private)."
        )


def resolve(host: str) -> list[str]:
    """Every address `host` resolves to (itself, for an address literal)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrlError(f"{host} does not resolve: {exc}.") from None
    return sorted({str(info[4][0]) for info in infos})


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a URL presto must not POST to: not `https` (or `http` with `allow_private`),
    with credentials, without a host, or whose host resolves to a non-public address."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number in range)
    except ValueError as exc:
        raise UnsafeUrlError(f"Not a URL: {exc}.") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeUrlError(
            "The URL must be https (http only with --webhook-allow-private)."
            if parts.scheme == "http"
            else "The URL must be https."
        )
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrlError("The URL must not carry credentials.")
    host = parts.hostname
    if not host:
        raise UnsafeUrlError("The URL has no host.")
    if allow_private:
        return
    for address in resolve(host):
        check_address(host, address, allow_private=False)
