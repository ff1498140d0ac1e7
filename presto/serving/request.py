"""The request object of presto's server: aiohttp's low-level request with the routing
piece the WSGI bridge reads and what presto's handler notes about the request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler


class TrackedRequest(web.BaseRequest):
    """A low-level request with the one piece of routing `WSGIHandler` reads.

    `request_id` and `started` (its `time.perf_counter()` start) are set by the request
    handler for the access log: plain attributes, cheaper than the request's mapping.
    """

    request_id = "-"
    started: float | None = None

    @property
    def match_info(self) -> dict[str, str]:
        """The whole path goes to the WSGI app: it is mounted at the root."""
        return {"path_info": self.path}


def wsgi_request_factory(
    loop: asyncio.AbstractEventLoop,
) -> Callable[..., TrackedRequest]:
    """aiohttp's request factory, making `TrackedRequest`s on `loop`."""

    def make_request(
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> TrackedRequest:
        return TrackedRequest(message, payload, protocol, writer, task, loop)

    return make_request
