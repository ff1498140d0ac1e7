"""Admission to the WSGI app: rate limits, the database circuit breaker, load shedding.

Every request the fast path does not answer passes here before it takes a thread. Each
refusal is immediate, costs no thread and no database connection, and is written from a
head and body prepared once (`presto.serving.prepared.PreparedProblem`), so a flood of
refusals costs about what a flood of cache hits does:

- 429 for a write over its API key's limit, or for a write from a client that had too
  many failed authentications (401s) lately; a request that needs no key (every read) is
  never refused for failed authentications;
- 429 for a menu preview (`GET /restaurant/<id>/item?at=...`) past its client's limit:
  a preview is rendered for each request (it is never cached), so it is what an
  anonymous client could send to make presto render without end;
- 503 with `Retry-After` while the database is unreachable (the breaker is open), for
  every path that needs it;
- 503 with `Retry-After` when more than `max_queue` requests already wait for one of the
  `threads` WSGI threads: past saturation a quick refusal beats a queue that grows
  without bound;
- 503 with `Retry-After` for a read that needs a thread while the event loop runs more
  than `shed_loop_lag` behind (`presto.serving.looplag`) and another request holds a
  thread: the threads' work would take the interpreter lock from the loop, which answers
  the cached menus. One such read at a time still goes on, so menus keep loading.

The client is the address the access log names (`presto.serving.clients`, through
`--trusted-proxies`); a key is the secret its `Authorization: Bearer` header carries, however
the header is spelled. The body is read (`presto.serving.bodies`, under `--body-timeout`)
before a request counts against the threads, so a slow upload holds no thread slot.
Cached menu reads never get here (`presto.serving.fastpath`), so they never queue.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web

from presto.errors import DatabaseUnavailableError
from presto.services.keys import bearer_token
from presto.serving.clients import IPNetwork, client_address
from presto.serving.looplag import LoopLag
from presto.serving.prepared import PreparedProblem
from presto.serving.ratelimit import RateLimit, TokenBuckets, Verdict
from presto.serving.telemetry.counters import ProtectionCounters
from presto.storage.availability import DatabaseAvailability

T = TypeVar("T")

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
# Reads a request's body: its bytes, or the problem to answer instead (408, 413).
BodyReader = Callable[[web.BaseRequest], Awaitable[bytes | web.Response]]
# Runs the WSGI app on a request whose body has been read.
Runner = Callable[[web.BaseRequest, bytes], Awaitable[web.StreamResponse]]

# Methods that change nothing: not writes, whatever their credentials.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths answered without the database: the API description and its viewer.
DATABASE_FREE_PREFIXES = ("/openapi.json", "/docs")
SHED_RETRY_AFTER_SECONDS = 1
TOO_MANY_WRITES = "Too many writes."
TOO_MANY_FAILURES = "Too many failed authentications from this address; try again later."
TOO_MANY_PREVIEWS = "Too many menu previews (at=) from this address; try again later."
OVERLOADED = "The server is overloaded; try again shortly."
DATABASE_DOWN = "The database cannot be reached; try again shortly."


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
        trusted_proxies: tuple[IPNetwork, ...] = (),
        preview_limit: RateLimit | None = None,
        loop_lag: LoopLag | None = None,
        shed_loop_lag: float = 0.0,
    ) -> None:
        self.threads = threads
        self.max_queue = max_queue
        self.loop_lag = loop_lag
        self.shed_loop_lag = shed_loop_lag
        self.writes = Limit.of(write_limit, TOO_MANY_WRITES)
        self.auth_failures = Limit.of(auth_failure_limit, TOO_MANY_FAILURES)
        self.previews = Limit.of(preview_limit, TOO_MANY_PREVIEWS)
        self.availability = availability
        self.counters = counters
        self.trusted_proxies = trusted_proxies
        # Requests inside the WSGI bridge: running on a thread or waiting for one.
        self.in_wsgi = 0
        retry = {"Retry-After": str(SHED_RETRY_AFTER_SECONDS)}
        self.overloaded = PreparedProblem(503, OVERLOADED, retry)
        database_down = DatabaseUnavailableError(DATABASE_DOWN)
        self.database_down = PreparedProblem(503, DATABASE_DOWN, database_down.headers())

    def wrap(self, read_body: BodyReader, run: Runner) -> Handler:
        """The WSGI app (`run`, once `read_body` has read the body) behind this admission."""

        async def admitted(request: web.BaseRequest) -> web.StreamResponse:
            return await self.call(request, read_body, run)

        return admitted

    async def call(
        self, request: web.BaseRequest, read_body: BodyReader, run: Runner
    ) -> web.StreamResponse:
        """`run(request, body)` if the request is admitted, else the refusal."""
        write: Verdict | None = None
        if request.method not in SAFE_METHODS:
            refusal = self._failed_too_often(request)
            if refusal is not None:
                return refusal
            write = self._take_write(request)
            if write is not None and not write.allowed and self.writes is not None:
                return self._too_many(request, write, self.writes)
        elif self.previews is not None and is_preview(request):
            client = client_address(request, self.trusted_proxies)
            preview = self.previews.buckets.take(client, time.monotonic())
            if not preview.allowed:
                return self._too_many(request, preview, self.previews)
        refusal = self._unavailable(request)
        if refusal is not None:
            return refusal
        body = await read_body(request)
        if isinstance(body, web.StreamResponse):
            return body
        refusal = self._overloaded(request)
        if refusal is not None:
            return refusal
        self.in_wsgi += 1
        try:
            response = await run(request, body)
        finally:
            self.in_wsgi -= 1
        if write is not None and self.writes is not None:
            response.headers.update(write.headers(self.writes.limit))
        failures = self.auth_failures
        if response.status == 401 and failures is not None:
            client = client_address(request, self.trusted_proxies)
            failure = failures.buckets.take(client, time.monotonic())
            response.headers.update(failure.headers(failures.limit))
        return response

    async def read(self, read: Callable[[], Awaitable[T]]) -> T | None:
        """`read()` counted as a request in the WSGI bridge (it takes one of its threads),
        or None if a request would be refused now (breaker open, queue full)."""
        available = self.availability is None or self.availability.available
        if not available or self._full("GET"):
            return None
        self.in_wsgi += 1
        try:
            return await read()
        finally:
            self.in_wsgi -= 1

    def _take_write(self, request: web.BaseRequest) -> Verdict | None:
        """Spend one write of the key's budget; None for a write without a bearer key
        (it will be a 401, counted against its client instead)."""
        if self.writes is None:
            return None
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return None
        return self.writes.buckets.take(key_fingerprint(token), time.monotonic())

    def _failed_too_often(self, request: web.BaseRequest) -> web.StreamResponse | None:
        if self.auth_failures is None:
            return None
        client = client_address(request, self.trusted_proxies)
        verdict = self.auth_failures.buckets.check(client, time.monotonic())
        if verdict.allowed:
            return None
        return self._too_many(request, verdict, self.auth_failures)

    def _too_many(
        self, request: web.BaseRequest, verdict: Verdict, limit: Limit
    ) -> web.StreamResponse:
        self.counters.rate_limited += 1
        response = limit.refusal.respond(request)
        response.headers.update(verdict.changing_headers(limit.limit))
        return response

    def _unavailable(self, request: web.BaseRequest) -> web.StreamResponse | None:
        availability = self.availability
        if availability is None or availability.available:
            return None
        if request.path.startswith(DATABASE_FREE_PREFIXES):
            return None
        self.counters.database_unavailable += 1
        return self.database_down.respond(request)

    def _overloaded(self, request: web.BaseRequest) -> web.StreamResponse | None:
        if not self._full(request.method):
            return None
        self.counters.shed += 1
        return self.overloaded.respond(request)

    def _full(self, method: str) -> bool:
        """Whether a request of `method` that needs a thread must be refused now."""
        if self.max_queue and self.in_wsgi - self.threads >= self.max_queue:
            return True
        return (
            self.in_wsgi > 0
            and method in SAFE_METHODS
            and self.shed_loop_lag > 0
            and self.loop_lag is not None
            and self.loop_lag.seconds > self.shed_loop_lag
        )


@dataclass(frozen=True)
class Limit:
    """A rate limit's buckets and its 429, prepared once: the policy is fixed, what is left
    and when come per answer."""

    limit: RateLimit
    buckets: TokenBuckets
    refusal: PreparedProblem

    @classmethod
    def of(cls, limit: RateLimit | None, detail: str) -> Limit | None:
        """The limit, or None when it is off."""
        if limit is None:
            return None
        refusal = PreparedProblem(429, detail, {"RateLimit-Policy": limit.policy})
        return cls(limit, TokenBuckets(limit), refusal)


def is_preview(request: web.BaseRequest) -> bool:
    """A menu call asking for the menu at another moment (`?at=`)."""
    return (
        request.method == "GET"
        and "at=" in request.query_string
        and request.path.endswith("/item")
        and "at" in request.query
    )


def key_fingerprint(token: str) -> str:
    """What identifies a key in memory: a digest of its secret, so the worker keeps no
    key itself. A secret names exactly one key (only its hash is stored), so a bucket per
    secret is a bucket per key, whatever the `Authorization` header's spelling."""
    digest = hashlib.blake2b(token.encode("utf-8", "surrogateescape"), digest_size=16)
    return digest.hexdigest()
