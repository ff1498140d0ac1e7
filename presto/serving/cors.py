"""CORS: menus readable by a browser page on any origin, writes only from configured ones.

Reads (`GET`, `HEAD`) answer every origin with `Access-Control-Allow-Origin: *` and expose
`ETag`, so a front end can revalidate. A write needs a preflight (it sends `Authorization`
and JSON); presto answers it itself, granting write methods and headers only to the origins
of `--cors-origins`, whose actual responses then name the origin. Browsers cache a preflight
for `MAX_AGE` seconds. Requests without `Origin` (not from a browser page) are untouched.
"""

from __future__ import annotations

from aiohttp import web

READ_METHODS = "GET, HEAD, OPTIONS"
WRITE_METHODS = "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"
READ_HEADERS = "If-None-Match, X-Request-ID"
WRITE_HEADERS = (
    "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, X-Request-ID"
)
EXPOSED_HEADERS = "ETag, Idempotent-Replayed, Location, X-Request-ID"
# Seconds a browser may reuse a preflight answer (Chromium caps it at two hours).
MAX_AGE = "7200"


class CorsPolicy:
    """The cross-origin rules of one server."""

    def __init__(self, write_origins: tuple[str, ...]) -> None:
        self.write_origins = frozenset(origin.rstrip("/") for origin in write_origins)

    @staticmethod
    def is_preflight(request: web.BaseRequest) -> bool:
        """An `OPTIONS` request a browser sends before a cross-origin call."""
        return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers

    def preflight(self, request: web.BaseRequest, origin: str) -> web.Response:
        """The answer to a preflight: what this origin may send."""
        if origin in self.write_origins:
            headers = {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": WRITE_METHODS,
                "Access-Control-Allow-Headers": WRITE_HEADERS,
                "Vary": "Origin",
            }
        else:
            headers = {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": READ_METHODS,
                "Access-Control-Allow-Headers": READ_HEADERS,
            }
        headers["Access-Control-Max-Age"] = MAX_AGE
        return web.Response(status=204, headers=headers)

    def decorate(self, request: web.BaseRequest, response: web.StreamResponse, origin: str) -> None:
        """Let the page read `response`, if its origin may make this request."""
        headers = response.headers
        if origin in self.write_origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers.add("Vary", "Origin")
        elif request.method in ("GET", "HEAD"):
            headers["Access-Control-Allow-Origin"] = "*"
        else:
            return
        headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
