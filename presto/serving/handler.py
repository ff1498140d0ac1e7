"""The request handler every connection's requests go to, on the event loop.

It tags each request with an id, answers CORS preflights, `/healthz` and `/metrics`
itself, menu calls from the warm path (`presto.serving.fastpath`) and everything else
through admission and the WSGI app; it counts each request for `/metrics` and as in flight,
so that shutdown (`presto.serving.lifecycle`) can wait for them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from presto.errors import PROBLEM_JSON, problem_document
from presto.serving.cors import CorsPolicy
from presto.serving.fastpath import Handler, MenuFastPath, without_validity_header
from presto.serving.prepared import PreparedResponse
from presto.serving.request import TrackedRequest
from presto.serving.telemetry.metrics import METRICS_PATH, Telemetry

log = logging.getLogger("presto.server")

# A client's X-Request-ID is echoed back only if it looks like an id, not arbitrary text.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Liveness is answered on the event loop, so that a database outage holding every WSGI
# thread does not make a live worker look dead (the Flask route documents it, and answers
# under other WSGI servers).
LIVENESS_PATH = "/healthz"
LIVENESS_BODY = b'{"status":"alive"}'
LOOP_PATHS = frozenset({LIVENESS_PATH, METRICS_PATH})


def problem_response(request: web.BaseRequest, status: int, detail: str) -> web.Response:
    """An RFC 9457 problem made in the async layer, for errors before Flask runs."""
    body = problem_document(status, detail, request.path)
    return web.Response(body=body, status=status, content_type=PROBLEM_JSON)


class InFlight:
    """Counts requests being handled, so that shutdown can wait for them.

    aiohttp's own `Server.shutdown` stops reading from connections at once, which would
    cut off a request whose body is still arriving; presto waits for its requests first.
    """

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self._idle: asyncio.Event | None = None

    def started(self) -> None:
        self.count += 1

    def finished(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for no request in flight; True if none is."""
        self.draining = True
        if self.count == 0:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


class RequestIds:
    """The client's `X-Request-ID` if it looks like one, else a new id: unique across
    processes and restarts, cheaper to make than a uuid4."""

    def __init__(self) -> None:
        self.prefix = os.urandom(4).hex() + "-"
        self.numbers = itertools.count(1)

    def of(self, headers: Mapping[str, str]) -> str:
        request_id = headers.get("X-Request-ID")
        if request_id is None or not _REQUEST_ID.fullmatch(request_id):
            request_id = f"{self.prefix}{next(self.numbers):x}"
        return request_id


def tag_response(response: web.StreamResponse, request_id: str) -> None:
    """Echo the request id (a cache hit writes it as a line of its own, no dictionary)."""
    if isinstance(response, PreparedResponse):
        response.request_id = request_id
    else:
        response.headers["X-Request-ID"] = request_id


def make_handler(
    admit: Handler,
    in_flight: InFlight,
    fast_path: MenuFastPath | None,
    telemetry: Telemetry,
    cors: CorsPolicy,
) -> Callable[[TrackedRequest], Awaitable[web.StreamResponse]]:
    """The request handler: tag the request with an id, answer CORS preflights and
    `/metrics`, cached menu calls from the fast path, everything else through `admit`
    (admission, then the WSGI app); count each request for `/metrics`."""

    request_ids = RequestIds()

    async def handle(request: TrackedRequest) -> web.StreamResponse:
        started = time.perf_counter()
        headers = request.headers
        request.request_id = request_id = request_ids.of(headers)
        request.started = started
        origin = headers.get("Origin")
        in_flight.started()
        try:
            if origin is not None and cors.is_preflight(request):
                response: web.StreamResponse = cors.preflight(request, origin)
            elif request.path in LOOP_PATHS:
                response = answer_on_loop(request, telemetry)
            elif fast_path is None:
                response = without_validity_header(await admit(request))
            else:
                response = await fast_path.handle(request, admit)
        except Exception:
            log.exception("unhandled error, request id %s", request_id)
            response = problem_response(request, 500, "The server failed to answer this request.")
        finally:
            in_flight.finished()
        tag_response(response, request_id)
        if origin is not None:
            cors.decorate(request, response, origin)
        if in_flight.draining:
            response.force_close()
        telemetry.request_done(request, response.status, time.perf_counter() - started)
        return response

    return handle


def answer_on_loop(request: web.BaseRequest, telemetry: Telemetry) -> web.Response:
    """`/healthz` and `/metrics` for `GET` and `HEAD`, answered without a thread; 405 for
    other methods."""
    if request.method not in ("GET", "HEAD"):
        response = problem_response(request, 405, "The method is not allowed for this URL.")
        response.headers["Allow"] = "GET, HEAD"
        return response
    if request.path == LIVENESS_PATH:
        return web.Response(body=LIVENESS_BODY, content_type="application/json")
    return telemetry.respond()
