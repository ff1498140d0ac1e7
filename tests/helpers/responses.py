"""Responses of the warm path as tests inspect them."""

from __future__ import annotations

from aiohttp import web

from presto.serving.prepared import PreparedResponse


def as_response(response: web.StreamResponse) -> web.Response:
    """`response` as a `web.Response`: a `PreparedResponse` (a cache hit) with its fixed
    headers, those set on it and its body, as `write_eof` sends them."""
    if isinstance(response, PreparedResponse):
        headers = (*response.fixed_headers, *response.headers.items())
        if response.request_id is not None:
            headers = (*headers, ("X-Request-ID", response.request_id))
        return web.Response(status=200, body=response.body, headers=headers)
    assert isinstance(response, web.Response)
    return response
