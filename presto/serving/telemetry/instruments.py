"""Prometheus metrics of a presto process, one coherent set across worker processes.

prometheus-client's multiprocess mode keeps each process's values in a memory-mapped file
of a directory the workers share (`PROMETHEUS_MULTIPROC_DIR`); `/metrics`, whichever worker
answers it, adds up every file. A write to such a value costs 5-20 microseconds (a lock, a
`getpid` and an `mmap` write), a large part of a cached menu call, so request counts and
latencies are first counted in plain Python and handed to prometheus-client in batches
(`FLUSH_SECONDS`), as the access log is: a scrape sees another worker's requests up to
that late.
"""

from __future__ import annotations

import bisect
import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from sqlalchemy import event

__all__ = ["CONTENT_TYPE", "FLUSH_SECONDS", "MULTIPROC_DIR_VARIABLE", "RequestMetrics"]

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# The listener verified (None: none), the replica available (None: none), read counts.
RoleState = tuple[bool | None, bool | None, dict[str, int]]
# How often a worker hands its counts to the shared files.
FLUSH_SECONDS = 0.5
# Latency buckets (seconds): a cached menu takes well under a millisecond, a cold large
# one hundreds of milliseconds.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def enable_multiprocess(directory: str) -> None:
    """Keep this process's values in `directory`, shared with the other workers.

    prometheus-client picks its value class when first imported; set it again here, so the
    order of imports does not matter.
    """
    os.environ[MULTIPROC_DIR_VARIABLE] = directory
    values.ValueClass = values.MultiProcessValue()


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (in-flight requests, pool, cache bytes); its
    counters stay, so totals never go down."""
    if MULTIPROC_DIR_VARIABLE in os.environ:
        multiprocess.mark_process_dead(pid)


def exposition() -> bytes:
    """Every worker's metrics in the Prometheus text format."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


def process_restarts() -> Counter:
    """Helper processes restarted after they died (counted by the process that runs them)."""
    return Counter(
        "presto_process_restarts",
        "Helper processes restarted after they died, by process.",
        ("process",),
        registry=None,
    )


class Instruments:
    """The metric families; made once per process, after `enable_multiprocess`."""

    def __init__(self) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=None)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, registry=None, multiprocess_mode="livesum")

        self.requests = counter(
            "presto_http_requests", "Requests answered.", ("route", "method", "status")
        )
        self.latency = Histogram(
            "presto_http_request_duration_seconds",
            "Time from request parsed to response ready, by route template.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.in_flight = gauge("presto_http_requests_in_flight", "Requests being handled.")
        self.cache_hits = counter("presto_menu_cache_hits", "Menu calls answered from memory.")
        self.cache_misses = counter("presto_menu_cache_misses", "Menu calls not in memory.")
        self.cache_evictions = counter(
            "presto_menu_cache_evictions", "Menus pushed out of memory by the byte budget."
        )
        self.cache_bytes = gauge("presto_menu_cache_bytes", "Bytes of cached menus.")
        self.menu_loads = Histogram(
            "presto_menu_load_duration_seconds",
            "Menu calls the cache missed, loaded from the database (the count is the loads).",
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self.pool_size = gauge("presto_db_pool_size", "Connections the pools may hold.")
        self.pool_in_use = gauge("presto_db_pool_in_use", "Pooled connections checked out.")
        self.pool_waits = counter(
            "presto_db_pool_waits", "Checkouts that found no idle connection and waited."
        )
        self.pool_wait_seconds = counter(
            "presto_db_pool_wait_seconds", "Time spent waiting for a pooled connection."
        )
        self._add_protection_families()
        self._add_role_families()

    def _add_protection_families(self) -> None:
        """What the protections against outages, overload and abuse count."""
        self.protections = Counter(
            "presto_protection_events",
            "Requests and connections refused or answered specially, by kind: rate_limited "
            "(429), shed (503, thread queue full), database_unavailable (503, breaker open), "
            "stale_if_error (cached menu served while the database is unreachable), "
            "connections_refused (over --max-connections, every connection busy), "
            "connections_evicted (closed at the cap to make room: awaiting a request head or "
            "idle), header_timeouts, body_timeouts.",
            ("kind",),
            registry=None,
        )
        self.database_available = Gauge(
            "presto_database_available",
            "1 while every worker's database circuit breaker is closed, 0 while one is open.",
            registry=None,
            multiprocess_mode="livemin",
        )
        self.breaker_openings = Counter(
            "presto_database_breaker_openings",
            "Times a worker found the database unreachable.",
            registry=None,
        )

    def _add_role_families(self) -> None:
        """The connections beside the pool: the listener's and the replica's."""
        self.published_reads = Counter(
            "presto_published_reads",
            "Published menus read on a cache miss with a replica configured, by source: "
            "replica or primary.",
            ("source",),
            registry=None,
        )
        self.replica_fallbacks = Counter(
            "presto_replica_fallbacks",
            "Published reads sent to the primary after the replica was tried, by reason: "
            "behind (its row older than this host knows of, or missing) or unavailable.",
            ("reason",),
            registry=None,
        )
        self.listener_verified = Gauge(
            "presto_listener_verified",
            "0 while a worker's change listener does not hear its own notification (its "
            "menus are not cached), else 1.",
            registry=None,
            multiprocess_mode="livemin",
        )
        self.replica_available = Gauge(
            "presto_replica_available",
            "0 while a worker reads published menus from the primary because the replica "
            "failed, else 1.",
            registry=None,
            multiprocess_mode="livemin",
        )
        # Nothing known to be wrong until a worker says so (a new worker's file would say 0).
        self.listener_verified.set(1)
        self.replica_available.set(1)


class PendingHistogram:
    """Observations of one histogram child, counted per bucket until flushed."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds

    def flush_into(self, child: Any) -> None:
        """Add the counts to a prometheus-client histogram child, whose `_buckets` and
        `_sum` are the per-bucket values its own `observe` increments."""
        for index, count in enumerate(self.counts):
            if count:
                child._buckets[index].inc(count)
                self.counts[index] = 0
        if self.total:
            child._sum.inc(self.total)
            self.total = 0.0


class RequestMetrics:
    """What one worker counts, handed to the shared files by `flush`.

    Used from the event loop thread, except `pool_*`, which update prometheus-client
    directly (its values have their own lock) from the threads that use the pool.
    """

    def __init__(self) -> None:
        self.instruments = Instruments()
        self.in_flight = 0
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[str, PendingHistogram] = {}
        self._loads = PendingHistogram()
        self._cache_totals: Callable[[], tuple[int, int, int, int]] | None = None
        self._cache_flushed = (0, 0, 0)
        self._protections: Callable[[], dict[str, int]] | None = None
        self._protections_flushed: dict[str, int] = {}
        self._database: Callable[[], tuple[bool, int]] | None = None
        self._openings_flushed = 0
        self._roles: Callable[[], RoleState] | None = None
        self._roles_flushed: dict[str, int] = {}

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request (a dict update: cheap enough for every request)."""
        key = (route, method, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        latency = self._latency.get(route)
        if latency is None:
            latency = self._latency[route] = PendingHistogram()
        latency.observe(seconds)

    def menu_loaded(self, seconds: float) -> None:
        """Count one menu the cache missed and the database served."""
        self._loads.observe(seconds)

    def watch_cache(self, totals: Callable[[], tuple[int, int, int, int]]) -> None:
        """Report a cache's (hits, misses, evictions, bytes) at each flush."""
        self._cache_totals = totals

    def watch_protections(
        self, totals: Callable[[], dict[str, int]], database: Callable[[], tuple[bool, int]]
    ) -> None:
        """Report the protections' counts by kind, and the database breaker's state
        (available, openings so far), at each flush."""
        self._protections = totals
        self._database = database

    def flush(self) -> None:
        """Hand everything counted since the last flush to the shared files."""
        instruments = self.instruments
        requests, self._requests = self._requests, {}
        for (route, method, status), count in requests.items():
            instruments.requests.labels(route, method, str(status)).inc(count)
        for route, latency in self._latency.items():
            latency.flush_into(instruments.latency.labels(route))
        self._loads.flush_into(instruments.menu_loads)
        instruments.in_flight.set(self.in_flight)
        if self._cache_totals is not None:
            self._flush_cache(*self._cache_totals())
        if self._protections is not None and self._database is not None:
            self._flush_protections(self._protections(), *self._database())
        if self._roles is not None:
            self._flush_roles(*self._roles())

    def watch_roles(self, state: Callable[[], RoleState]) -> None:
        """Report the listener's check (None: no listener) and the replica's state (None:
        no replica) and read counts (`replica`, `primary`, `behind`, `unavailable`)."""
        self._roles = state

    def _flush_roles(
        self, verified: bool | None, replica: bool | None, reads: dict[str, int]
    ) -> None:
        instruments = self.instruments
        # Without a listener or a replica there is nothing wrong to report: 1.
        instruments.listener_verified.set(0 if verified is False else 1)
        instruments.replica_available.set(0 if replica is False else 1)
        for name, total in reads.items():
            grown = total - self._roles_flushed.get(name, 0)
            if grown:
                family = (
                    instruments.published_reads
                    if name in ("replica", "primary")
                    else instruments.replica_fallbacks
                )
                family.labels(name).inc(grown)
        self._roles_flushed = dict(reads)

    def _flush_protections(self, totals: dict[str, int], available: bool, openings: int) -> None:
        for kind, total in totals.items():
            grown = total - self._protections_flushed.get(kind, 0)
            if grown:
                self.instruments.protections.labels(kind).inc(grown)
        self._protections_flushed = dict(totals)
        self.instruments.database_available.set(1 if available else 0)
        self.instruments.breaker_openings.inc(openings - self._openings_flushed)
        self._openings_flushed = openings

    def _flush_cache(self, hits: int, misses: int, evictions: int, size: int) -> None:
        last_hits, last_misses, last_evictions = self._cache_flushed
        self.instruments.cache_hits.inc(hits - last_hits)
        self.instruments.cache_misses.inc(misses - last_misses)
        self.instruments.cache_evictions.inc(evictions - last_evictions)
        self.instruments.cache_bytes.set(size)
        self._cache_flushed = (hits, misses, evictions)

    def watch_pool(self, pool: Any) -> None:
        """Count a SQLAlchemy `QueuePool`'s connections in use and the checkouts that wait.

        In use comes from the pool's `checkout` and `checkin` events; they fire only once a
        connection is had, so a wait is timed around `_do_get`, the method every checkout
        goes through.
        """
        instruments = self.instruments
        instruments.pool_size.inc(pool.size())
        event.listen(pool, "checkout", lambda *_: instruments.pool_in_use.inc())
        event.listen(pool, "checkin", lambda *_: instruments.pool_in_use.dec())
        do_get = pool._do_get

        def timed_do_get() -> Any:
            # Every connection the pool may open is out: this checkout waits for one back.
            limit = pool._max_overflow  # -1: no limit, never a wait
            waits = (
                limit >= 0 and pool.checkedin() == 0 and pool.checkedout() >= pool.size() + limit
            )
            started = time.perf_counter()
            connection = do_get()
            if waits:
                instruments.pool_waits.inc()
                instruments.pool_wait_seconds.inc(time.perf_counter() - started)
            return connection

        pool._do_get = timed_do_get
