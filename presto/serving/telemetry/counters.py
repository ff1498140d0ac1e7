"""What a worker counts of the protections it applies: one place for metrics to read.

Each counter only grows; the event loop thread is the only writer. The database circuit
breaker keeps its own state (`presto.storage.availability.DatabaseAvailability`:
`available`, `openings`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ProtectionCounters:
    """Requests and connections a worker refused or answered specially, since it started."""

    # 429s: writes over an API key's limit, requests from an address with too many failed
    # authentications.
    rate_limited: int = 0
    # 503s because too many requests waited for a WSGI thread.
    shed: int = 0
    # 503s because the database circuit breaker was open.
    database_unavailable: int = 0
    # Cached menus served stale because the database could not be reached.
    stale_if_error: int = 0
    # Connections refused past `--max-connections` (every open one busy with a request).
    connections_refused: int = 0
    # Connections closed at `--max-connections` to make room for a new one: awaiting a
    # request head, or idle between requests.
    connections_evicted: int = 0
    # Connections closed because their request line and headers took too long.
    header_timeouts: int = 0
    # 408s: request bodies not complete within `--body-timeout`.
    body_timeouts: int = 0
