"""Connections: a cap per worker, a header-read timeout, and parse errors as problems.

aiohttp's `web.Server` builds a `RequestHandler` (the protocol) per connection; presto's
`GuardedServer` builds a `GuardedRequestHandler` instead, which

- keeps at most `max_connections` open, so a flood of connections cannot use up the
  process's file descriptors: at the cap, a new connection first makes room by closing the
  oldest connection that has not completed a request head, else the oldest idle keep-alive
  one (as nginx and HAProxy do), and is refused with a 503 problem only when every open
  connection is busy with a request; so slow clients cannot keep others out;
- closes a connection whose request line and headers are not complete `header_timeout`
  seconds (give or take `SWEEP_SECONDS`) after their first byte (or after the connection
  opened): aiohttp has no such bound, so a client sending a header every few seconds would
  hold a connection forever;
- answers HTTP parse errors (a request line or header too long, a malformed request) with
  an RFC 9457 problem instead of aiohttp's `text/plain`.

Idle keep-alive connections are closed by aiohttp itself (`keepalive_timeout`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import resource
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from presto.errors import PROBLEM_JSON, problem_document
from presto.serving.telemetry.counters import ProtectionCounters

log = logging.getLogger(__name__)


def refusal_bytes(detail: str) -> bytes:
    """A whole HTTP 503 problem response, written to a connection before closing it."""
    body = problem_document(503, detail, "/")
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        f"Content-Type: {PROBLEM_JSON}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def raise_file_limit(max_connections: int) -> None:
    """Raise the soft limit on open files to fit `max_connections` (up to the hard limit):
    the common default of 1,024 is barely over the default cap, and a worker that runs
    out of descriptors cannot accept a connection to close another one for it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + FILE_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    if max_connections and soft != resource.RLIM_INFINITY and soft < max_connections + 64:
        log.warning(
            "open-file limit %d is under --max-connections %d: connections past it fail",
            soft,
            max_connections,
        )


TOO_MANY_CONNECTIONS = refusal_bytes("The server has too many open connections; try again.")
# Seconds a refused connection is still read from (and what arrives dropped).
REFUSAL_LINGER = 1.0
# Seconds between two checks for connections whose request headers are overdue.
SWEEP_SECONDS = 0.25
# File descriptors a worker needs beside its connections: database connections, the
# listening socket, log and shared-memory files, connections closing.
FILE_HEADROOM = 256


class ConnectionState(enum.Enum):
    """What a connection is doing, as the cap sees it when it must make room."""

    # Opened, or started a request, and its request line and headers are not complete.
    AWAITING_HEAD = "awaiting head"
    # Answered its last request and waits, sending nothing, for the next one.
    IDLE = "idle"
    # A request is being read, handled or answered.
    BUSY = "busy"


@dataclass(frozen=True)
class ConnectionLimits:
    """The per-connection bounds; 0 turns one off."""

    header_timeout: float
    max_connections: int


def refuse(transport: asyncio.Transport) -> None:
    """Answer 503 and close: at once for writing, after `REFUSAL_LINGER` seconds (or when
    the client closes) for reading, so the client reads the answer instead of a reset."""
    transport.write(TOO_MANY_CONNECTIONS)
    if transport.can_write_eof():
        transport.write_eof()
    asyncio.get_running_loop().call_later(REFUSAL_LINGER, transport.close)


class GuardedServer(web.Server):
    """aiohttp's low-level server, making `GuardedRequestHandler`s, counting them, and
    closing those whose request headers are overdue.

    The header timeout costs a request two attribute writes: a request's start is stamped
    with a clock that a sweep over the open connections moves on every `SWEEP_SECONDS`, and
    the sweep closes overdue ones (so a connection gets `header_timeout`, give or take
    `SWEEP_SECONDS`). A timer per request would cost the warm path more.
    """

    def __init__(
        self,
        handler: Any,
        *,
        limits: ConnectionLimits,
        counters: ProtectionCounters,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.counters = counters
        # Open connections, oldest first (a dict keeps insertion order).
        self.open: dict[GuardedRequestHandler, None] = {}
        # The sweep's clock (the event loop's time at its last tick).
        self.clock = 0.0
        self._sweeping: asyncio.TimerHandle | None = None
        # What `web.Server.__call__` passes on to each `RequestHandler`.
        self._handler_options = {
            name: value
            for name, value in kwargs.items()
            if name not in ("request_factory", "handler_cancellation", "loop")
        }

    def __call__(self) -> RequestHandler:
        """The protocol of one new connection (`loop.create_server` calls this)."""
        return GuardedRequestHandler(self, loop=asyncio.get_running_loop(), **self._handler_options)

    def opened(self, handler: GuardedRequestHandler) -> bool:
        """Count a new connection in, making room at the cap; False if every open
        connection is busy with a request."""
        cap = self.limits.max_connections
        if cap and len(self.open) >= cap and not self._make_room():
            self.counters.connections_refused += 1
            return False
        self.open[handler] = None
        if self._sweeping is None and self.limits.header_timeout:
            self._sweep()
        return True

    def _make_room(self) -> bool:
        """Close the oldest connection awaiting a request head, else the oldest idle one;
        False if there is neither. One pass over the open connections, only at the cap."""
        victim: GuardedRequestHandler | None = None
        for handler in self.open:
            state = handler.state()
            if state is ConnectionState.AWAITING_HEAD:
                victim = handler
                break
            if victim is None and state is ConnectionState.IDLE:
                victim = handler
        if victim is None:
            return False
        self.counters.connections_evicted += 1
        self.open.pop(victim, None)
        victim.force_close()
        return True

    async def shutdown(self, timeout: float | None = None) -> None:
        """aiohttp's shutdown of every connection, then no more sweeps."""
        await super().shutdown(timeout)
        if self._sweeping is not None:
            self._sweeping.cancel()
            self._sweeping = None

    def _sweep(self) -> None:
        """Move the clock on and close connections whose headers are overdue."""
        loop = asyncio.get_running_loop()
        self.clock = loop.time()
        deadline = self.clock - self.limits.header_timeout
        for handler in [handler for handler in self.open if handler.headers_overdue(deadline)]:
            self.counters.header_timeouts += 1
            handler.force_close()
        # Runs while there are connections; the next one starts it again.
        self._sweeping = loop.call_later(SWEEP_SECONDS, self._sweep) if self.open else None


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection protocol with presto's connection cap, header timeout and
    problem documents for parse errors."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._refused = False
        # The sweep clock when this connection began waiting for a request's headers.
        self._headers_since: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._guard.opened(self):
            self._refused = True
            refuse(cast(asyncio.Transport, transport))
            return
        self._headers_since = self._guard.clock
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        self._guard.open.pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped, so that closing does not reset the answer
        if self._headers_since is None and self._current_request is None and not self._messages:
            self._headers_since = self._guard.clock  # the first bytes of a new request
        parsed = len(self._messages)
        super().data_received(data)
        if len(self._messages) > parsed:
            self._headers_since = None

    def state(self) -> ConnectionState:
        """Awaiting a request head, idle between requests, or busy with a request."""
        if self._request_in_progress or self._messages:
            return ConnectionState.BUSY
        if self._headers_since is not None:
            return ConnectionState.AWAITING_HEAD
        return ConnectionState.IDLE

    def headers_overdue(self, deadline: float) -> bool:
        """True if the connection has waited for a request's headers since before
        `deadline`; never during a body upload or a response."""
        since = self._headers_since
        return (
            since is not None
            and since < deadline
            and self._waiter is not None
            and not self._waiter.done()
            and not self._messages
        )

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A problem document for what aiohttp answers itself; the connection closes."""
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already sent; cannot send an error")
        if status >= 500:
            self.log_exception("error handling request from %s", request.remote, exc_info=exc)
            detail = "The server failed to answer this request."
        else:
            # The client's doing: one line, no traceback, none of what it sent (a key?).
            status, detail = parse_error(status, exc)
            log.info("malformed request from %s: %d %s", request.remote, status, detail)
        body = problem_document(status, detail, request.path)
        response = web.Response(body=body, status=status, content_type=PROBLEM_JSON)
        response.force_close()
        return response


def parse_error(status: int, exc: BaseException | None) -> tuple[int, str]:
    """The status and detail of an HTTP parse error, naming nothing the client sent.

    A line over aiohttp's limit is 414 when it is the request target (which starts with
    `/`) and 431 when it is a header field, as RFC 9110 and RFC 6585 name them.
    """
    if isinstance(exc, LineTooLong):
        line = exc.args[0] if exc.args else b""
        if isinstance(line, bytes | bytearray) and line.startswith(b"/"):
            return 414, "The request target is too long."
        return 431, "A request header field is too long."
    return status, "The request is not valid HTTP/1.1."
