"""Responses of the warm path as tests inspect them."""

from __future__ import annotations

from aiohttp import web
from flask.testing import FlaskClient

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


class FlaskAsWSGI:
    """The Flask app behind the fast path, as the WSGI bridge would call it; counts calls
    and keeps the path and query of each."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.paths: list[str] = []

    @property
    def calls(self) -> int:
        return len(self.paths)

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        self.paths.append(request.path_qs)
        response = self.client.get(request.path_qs, headers=dict(request.headers))
        headers = {
            name: value
            for name, value in response.headers.items()
            if name not in ("Content-Type", "Content-Length")
        }
        return web.Response(
            status=response.status_code,
            body=response.get_data(),
            headers=headers,
            content_type=response.mimetype,
        )
