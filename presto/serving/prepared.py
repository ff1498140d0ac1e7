"""Cached menu answers written from a header block serialized once per cache entry.

aiohttp's `web.Response` builds a header dictionary, works out length, keep-alive and
defaults, and serializes the headers again for every response: on a cache hit that is
about a third of the worker's time. A cached representation's status line and headers
never change, so `Representation.head` holds them as bytes and `PreparedResponse` adds
only what belongs to this response (`Date`, `Server`, `Content-Length`, headers set on
it such as `X-Request-ID` and CORS, `Connection: close` when the connection ends) and
writes head and body in one call, waiting for the transport to drain like aiohttp does.

It serves HTTP/1.1 `GET` 200s only (`is_preparable`); anything else (`HEAD`, 304,
HTTP/1.0, a menu served stale) is a plain `web.Response`.

`PreparedProblem` does the same for admission's refusals (a shed 503, a 429): under a flood
of requests that must be refused, a refusal made like a `web.Response` with its JSON
encoded each time cost five times a cache hit and starved the warm path of the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from email.utils import formatdate
from http import HTTPStatus

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11

from presto.errors import PROBLEM_JSON, problem_document

STATUS_LINE = b"HTTP/1.1 200 OK\r\n"
# Bodies below this go out joined to their head in one bytes object (as aiohttp does).
JOIN_BELOW = 16 * 1024
_SERVER = f"Server: {SERVER_SOFTWARE}\r\n".encode("latin-1")
_CLOSE = b"Connection: close\r\n"
# Problem bodies a `PreparedProblem` keeps, one per request path, before it starts again.
MAX_PROBLEM_PATHS = 1024


def header_lines(headers: Collection[tuple[str, str]]) -> bytes:
    """`Name: value` lines of `headers`, refused if a value holds a line break (it would
    split the response), as aiohttp's own serializer does."""
    text = "".join([f"{name}: {value}\r\n" for name, value in headers])
    if text.count("\n") != len(headers) or text.count("\r") != len(headers):
        raise ValueError("line break in a header")
    return text.encode("latin-1")


class _Date:
    """The `Date` header line, made once a second."""

    second = -1
    line = b""

    @classmethod
    def now(cls) -> bytes:
        second = int(time.time())
        if second != cls.second:
            cls.line = f"Date: {formatdate(second, usegmt=True)}\r\n".encode("ascii")
            cls.second = second
        return cls.line


def is_preparable(request: web.BaseRequest) -> bool:
    """Whether a cached 200 for `request` can be a `PreparedResponse`."""
    return request.version == HttpVersion11 and request.method == "GET"


class PreparedResponse(web.StreamResponse):
    """A response of `head` (status line and `fixed_headers`, serialized) and `body`, for
    an HTTP/1.1 request other than `HEAD`: a 200 to a `GET` unless `status` says otherwise.
    Headers set on it (`response.headers[...] = ...`) are sent after `head`.
    """

    def __init__(
        self,
        head: bytes,
        body: bytes,
        fixed_headers: tuple[tuple[str, str], ...],
        *,
        status: int = 200,
    ) -> None:
        super().__init__(status=status)
        self._head = head
        self._payload = body
        self.fixed_headers = fixed_headers
        # Sent as `X-Request-ID`; set by the request handler (letters, digits, `._-` only).
        self.request_id: str | None = None
        self._request: web.BaseRequest | None = None
        self._sent = False
        self._alive: bool | None = None
        self._length = 0

    @property
    def prepared(self) -> bool:
        return self._request is not None or self._sent

    @property
    def keep_alive(self) -> bool | None:
        return self._alive

    def force_close(self) -> None:
        self._alive = False

    @property
    def body(self) -> bytes:
        return self._payload

    @property
    def body_length(self) -> int:
        return self._length

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Decide keep-alive; the head goes out with the body in `write_eof`."""
        if self._sent:
            return None
        if self._alive is None:
            self._alive = request.keep_alive
        self._request = request
        return request.writer

    async def write_eof(self, data: bytes = b"") -> None:
        """Send head and body in one write."""
        request = self._request
        if self._sent or request is None:
            return
        self._sent = True
        self._request = None
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        body = self._payload
        parts = [self._head, _Date.now(), _SERVER, b"Content-Length: %d\r\n" % len(body)]
        if self.request_id is not None:
            parts.append(f"X-Request-ID: {self.request_id}\r\n".encode("ascii"))
        headers = self.headers
        if headers:
            parts.append(header_lines(headers.items()))
        if not self._alive:
            parts.append(_CLOSE)
        parts.append(b"\r\n")
        head = b"".join(parts)
        self._length = len(head) + len(body)
        if len(body) < JOIN_BELOW:
            transport.write(head + body)
        else:
            transport.writelines((head, body))
        await request.writer.drain()


class PreparedProblem:
    """An RFC 9457 problem of one status and detail, answered like a cache hit: its head
    serialized once, its body encoded once per request path (the problem's `instance`)."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str]) -> None:
        self.status = status
        self.detail = detail
        self.fixed_headers = (("Content-Type", PROBLEM_JSON), *headers.items())
        phrase = HTTPStatus(status).phrase
        self.head = f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii") + header_lines(
            self.fixed_headers
        )
        self._bodies: dict[str, bytes] = {}

    def respond(self, request: web.BaseRequest) -> web.StreamResponse:
        """The problem for `request`; headers set on the answer are sent after the head."""
        path = request.path
        body = self._bodies.get(path)
        if body is None:
            if len(self._bodies) >= MAX_PROBLEM_PATHS:
                self._bodies.clear()
            body = self._bodies[path] = problem_document(self.status, self.detail, path)
        if request.version == HttpVersion11 and request.method != "HEAD":
            return PreparedResponse(self.head, body, self.fixed_headers, status=self.status)
        return web.Response(body=body, status=self.status, headers=self.fixed_headers)
