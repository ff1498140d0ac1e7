"""Admission to the WSGI app: rate limits, the database circuit breaker, load shedding.

Every request the fast path does not answer passes here before it takes a thread. Each
refusal is immediate and costs no thread and no database connection:

- 429 for a write over its API key's limit, or for any request carrying credentials or
  writing from an address with too many failed authentications (401s) lately;
- 503 with `Retry-After` while the database is unreachable (the breaker is open), for
  every path that needs it;
- 503 with `Retry-After` when more than `max_queue` requests already wait for one of the
  `threads` WSGI threads: past saturation a quick refusal beats a queue that grows
  without bound.

Cached menu reads never get here (`presto.serving.fastpath`), so they never queue.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from presto.errors import PROBLEM_JSON, DatabaseUnavailableError, problem_document
from presto.serving.counters import ProtectionCounters
from presto.serving.ratelimit import RateLimit, TokenBuckets, Verdict
from presto.storage.availability import DatabaseAvailability

T = TypeVar("T")

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

# Methods that change nothing: not writes, whatever their credentials.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths answered without the database: the API description and its viewer.
DATABASE_FREE_PREFIXES = ("/openapi.json", "/docs")
SHED_RETRY_AFTER_SECONDS = 1


def problem(
    request: web.BaseRequest, status: int, detail: str, headers: dict[str, str]
) -> web.Response:
    """An RFC 9457 problem made before the WSGI app runs."""
    body = problem_document(status, detail, request.path)
    return web.Response(body=body, status=status, content_type=PROBLEM_JSON, headers=headers)


class Admission:
    """Decides, per request, whether it may go on to the WSGI app."""

    def __init__(
        self,
        *,
        threads: int,
        max_queue: int,
        write_limit: RateLimit | None,
        auth_failure_limit: RateLimit | None,
        availability: DatabaseAvailability | None,
        counters: ProtectionCounters,
    ) -> None:
        self.threads = threads
        self.max_queue = max_queue
        self.writes = TokenBuckets(write_limit) if write_limit else None
        self.auth_failures = TokenBuckets(auth_failure_limit) if auth_failure_limit else None
        self.availability = availability
        self.counters = counters
        # Requests inside the WSGI bridge: running on a thread or waiting for one.
        self.in_wsgi = 0

    def wrap(self, wsgi: Handler) -> Handler:
        """`wsgi` behind this admission."""

        async def admitted(request: web.BaseRequest) -> web.StreamResponse:
            return await self.call(request, wsgi)

        return admitted

    async def call(self, request: web.BaseRequest, wsgi: Handler) -> web.StreamResponse:
        """`wsgi(request)` if the request is admitted, else the refusal."""
        writing = request.method not in SAFE_METHODS
        write: Verdict | None = None
        if writing or "Authorization" in request.headers:
            refusal = self._failed_too_often(request)
            if refusal is not None:
                return refusal
        if writing and self.writes is not None and "Authorization" in request.headers:
            write = self.writes.take(
                key_fingerprint(request.headers["Authorization"]), time.monotonic()
            )
            if not write.allowed:
                return self._too_many(request, write, self.writes.limit, "Too many writes.")
        refusal = self._unavailable(request) or self._overloaded(request)
        if refusal is not None:
            return refusal
        self.in_wsgi += 1
        try:
            response = await wsgi(request)
        finally:
            self.in_wsgi -= 1
        if write is not None and self.writes is not None:
            response.headers.update(write.headers(self.writes.limit))
        if response.status == 401 and self.auth_failures is not None:
            failure = self.auth_failures.take(client_address(request), time.monotonic())
            response.headers.update(failure.headers(self.auth_failures.limit))
        return response

    async def read(self, read: Callable[[], Awaitable[T]]) -> T | None:
        """`read()` counted as a request in the WSGI bridge (it takes one of its threads),
        or None if a request would be refused now (breaker open, queue full)."""
        available = self.availability is None or self.availability.available
        if not available or (self.max_queue and self.in_wsgi - self.threads >= self.max_queue):
            return None
        self.in_wsgi += 1
        try:
            return await read()
        finally:
            self.in_wsgi -= 1

    def _failed_too_often(self, request: web.BaseRequest) -> web.Response | None:
        if self.auth_failures is None:
            return None
        verdict = self.auth_failures.check(client_address(request), time.monotonic())
        if verdict.allowed:
            return None
        detail = "Too many failed authentications from this address; try again later."
        return self._too_many(request, verdict, self.auth_failures.limit, detail)

    def _too_many(
        self, request: web.BaseRequest, verdict: Verdict, limit: RateLimit, detail: str
    ) -> web.Response:
        self.counters.rate_limited += 1
        return problem(request, 429, detail, verdict.headers(limit))

    def _unavailable(self, request: web.BaseRequest) -> web.Response | None:
        availability = self.availability
        if availability is None or availability.available:
            return None
        if request.path.startswith(DATABASE_FREE_PREFIXES):
            return None
        self.counters.database_unavailable += 1
        error = DatabaseUnavailableError("The database cannot be reached; try again shortly.")
        return problem(request, 503, error.detail, error.headers())

    def _overloaded(self, request: web.BaseRequest) -> web.Response | None:
        if not self.max_queue or self.in_wsgi - self.threads < self.max_queue:
            return None
        self.counters.shed += 1
        detail = "The server is overloaded; try again shortly."
        return problem(request, 503, detail, {"Retry-After": str(SHED_RETRY_AFTER_SECONDS)})


def client_address(request: web.BaseRequest) -> str:
    """The peer's IP address (a proxy in front must do its own limiting)."""
    return request.remote or "unknown"


def key_fingerprint(authorization: str) -> str:
    """What identifies a key in memory: a digest, so the worker keeps no key itself."""
    digest = hashlib.blake2b(authorization.encode("utf-8", "surrogateescape"), digest_size=16)
    return digest.hexdigest()
