"""Who the client is: the peer's address, or behind a trusted reverse proxy the address
its `X-Forwarded-For` names. One rule for the access log and the failed-authentication
limit, so that the limit counts the client the log names (behind nginx, every peer is
nginx, and a limit keyed by the peer would lock every client out together).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(proxies: Iterable[str]) -> tuple[IPNetwork, ...]:
    """`--trusted-proxies` as networks (a single address is a network of one)."""
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def parse_address(text: str) -> IPAddress | None:
    """`text` as an IP address, or None if it is not one (a hop may be anything a client
    wrote: `unknown`, a host name, text meant to forge a log line)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_trusted(address: str, trusted: tuple[IPNetwork, ...]) -> bool:
    """Whether `address` is in one of the trusted networks (an unparsable one is not)."""
    ip = parse_address(address)
    return ip is not None and any(ip in network for network in trusted)


def client_address(request: web.BaseRequest, trusted: tuple[IPNetwork, ...]) -> str:
    """The peer's address; behind a trusted proxy, the nearest untrusted address its
    `X-Forwarded-For` names (hops a client wrote itself further left are ignored).

    Every hop used must be an IP address: at the first one that is not, the client is
    the nearest address known to be real, the trusted hop that passed it on.
    """
    peer = request.remote or "-"
    if not trusted or not is_trusted(peer, trusted):
        return peer
    forwarded = request.headers.get("X-Forwarded-For")
    if not forwarded:
        return peer
    nearest = peer
    for hop in reversed(forwarded.split(",")):
        hop = hop.strip()
        if not hop:
            continue
        address = parse_address(hop)
        if address is None:
            return nearest
        nearest = str(address)
        if not any(address in network for network in trusted):
            return nearest
    return nearest
