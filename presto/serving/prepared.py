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
"""

from __future__ import annotations

import time
from collections.abc import Collection
from email.utils import formatdate

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11

STATUS_LINE = b"HTTP/1.1 200 OK\r\n"
# Bodies below this go out joined to their head in one bytes object (as aiohttp does).
JOIN_BELOW = 16 * 1024
_SERVER = f"Server: {SERVER_SOFTWARE}\r\n".encode("latin-1")
_CLOSE = b"Connection: close\r\n"


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
    """A 200 of `head` (status line and `fixed_headers`, serialized) and `body`, for an
    HTTP/1.1 `GET`. Headers set on it (`response.headers[...] = ...`) are sent after `head`.
    """

    def __init__(
        self, head: bytes, body: bytes, fixed_headers: tuple[tuple[str, str], ...]
    ) -> None:
        super().__init__()
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
