"""Request bodies, read on the event loop before a request may take a WSGI thread.

aiohttp-wsgi reads the body itself, with no deadline, after admission has counted the
request against the thread pool: a body trickled one byte every few seconds held a
request slot for as long as the client liked, and 68 of them made every uncached request
503. presto reads the body first, under `--body-timeout` (from the end of the headers to
the body's last byte) and `--max-body-bytes`, and only then asks admission for a thread.
A late body gets 408 and its connection closes; a large one 413.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from presto.errors import PROBLEM_JSON, problem_document
from presto.serving.telemetry.counters import ProtectionCounters


class ClosingResponse(web.Response):
    """A response that ends its connection: the server's side is shut down (FIN) right
    after it, so the client sees the answer and the end at once.

    `force_close()` alone closes the connection only after aiohttp has read what is left of
    the body, for up to its lingering time (10 s), which a client trickling its body would
    use in full; closing outright instead would reset a connection whose client is still
    sending, and the reset can destroy the answer before the client reads it. aiohttp
    still reads and drops what arrives for that lingering time, on no thread.
    """

    def __init__(self, request: web.BaseRequest, *, body: bytes, status: int) -> None:
        super().__init__(body=body, status=status, content_type=PROBLEM_JSON)
        self.force_close()
        self._transport = request.transport

    async def write_eof(self, data: bytes = b"") -> None:
        """Send the rest, then shut down writing: the transport sends what it holds first."""
        await super().write_eof(data)
        transport = self._transport
        if transport is not None and not transport.is_closing() and transport.can_write_eof():
            transport.write_eof()


def body_problem(request: web.BaseRequest, status: int, detail: str) -> web.Response:
    """A 408 or 413 problem, after which the connection closes (the rest of the body is
    unread). After a 413 aiohttp first reads what the client is still sending, so that it
    reads the answer rather than a reset; after a 408 the client has had its time."""
    body = problem_document(status, detail, request.path)
    if status == 408:
        return ClosingResponse(request, body=body, status=status)
    response = web.Response(body=body, status=status, content_type=PROBLEM_JSON)
    response.force_close()
    return response


@dataclass
class BodyReader:
    """Reads a request's whole body within `timeout` seconds (0: no deadline) and
    `max_bytes`; a problem response instead when it cannot."""

    max_bytes: int
    timeout: float
    counters: ProtectionCounters

    async def __call__(self, request: web.BaseRequest) -> bytes | web.Response:
        """The body, or the 408/413 problem to answer instead."""
        too_large = f"The request body is larger than {self.max_bytes} bytes."
        length = request.content_length
        if length is not None and length > self.max_bytes:
            return body_problem(request, 413, too_large)
        if not request.body_exists:
            return b""
        try:
            async with asyncio.timeout(self.timeout or None):
                body = await self._read(request)
        except TimeoutError:
            self.counters.body_timeouts += 1
            detail = f"The request body did not arrive within {self.timeout:g} seconds."
            return body_problem(request, 408, detail)
        return body_problem(request, 413, too_large) if body is None else body

    async def _read(self, request: web.BaseRequest) -> bytes | None:
        """The body's bytes; None once they pass `max_bytes` (a chunked body has no length)."""
        chunks: list[bytes] = []
        size = 0
        while block := await request.content.readany():
            size += len(block)
            if size > self.max_bytes:
                return None
            chunks.append(block)
        return b"".join(chunks)
