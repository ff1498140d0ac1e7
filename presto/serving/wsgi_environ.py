"""The WSGI environ as PEP 3333 wants it: every string is bytes read as Latin-1.

aiohttp hands over the path (percent-decoded) and header values already decoded (UTF-8,
with invalid bytes kept as surrogates), and aiohttp-wsgi passes them on as they are.
Werkzeug then encodes them as Latin-1 to get the bytes back, which fails on any character
past U+00FF: `DELETE /restaurant/Li%F4%84%B7%9D%C3%A4o` ended in a `UnicodeEncodeError`
(a 500) before Flask ran, and a header of raw UTF-8 was read as mojibake. Re-encoding
those strings to the bytes the client sent, read as Latin-1, lets Werkzeug decode every
request as it decodes any other server's, so such a request reaches Flask and gets its
answer (a 404 for a path no route matches).
"""

from __future__ import annotations

import asyncio
import io
from typing import IO, cast

from aiohttp import web
from aiohttp_wsgi import WSGIHandler
from aiohttp_wsgi.wsgi import WSGIEnviron, _run_application

from presto.api.content_coding import PREFER_GZIP

# Set by the menu cache on a request it sends on: ask for a published menu's gzip bytes.
PREFER_GZIP_KEY = web.RequestKey(PREFER_GZIP, bool)
# Environ keys that carry the request's own text; `HTTP_*` headers are added to these.
_TEXT_KEYS = ("PATH_INFO", "QUERY_STRING", "RAW_URI", "REQUEST_URI", "CONTENT_TYPE")


def latin1_native(text: str) -> str:
    """`text` as PEP 3333 carries it: its UTF-8 bytes, each read as one Latin-1 character."""
    if text.isascii():
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A surrogate that did not come from an undecodable byte: keep it as UTF-8 would.
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("latin-1")


class Pep3333WSGIHandler(WSGIHandler):
    """aiohttp-wsgi's handler, with request text in the environ as PEP 3333 says, running
    the app on a body presto has already read (`presto.serving.bodies`)."""

    async def respond(self, request: web.BaseRequest, body: bytes) -> web.Response:
        """The app's answer to `request` with `body`, run on the executor.

        aiohttp-wsgi's own `handle_request` reads the body with no deadline; this is the
        rest of it (environ, then `_run_application` on the executor, as it does).
        """
        # `_get_environ` is typed for routed requests but reads only `match_info`.
        environ = self._get_environ(cast(web.Request, request), io.BytesIO(body), len(body))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, _run_application, self._application, environ
        )

    def _get_environ(
        self, request: web.Request, body: IO[bytes], content_length: int
    ) -> WSGIEnviron:
        environ = super()._get_environ(request, body, content_length)
        for key, value in environ.items():
            if (key in _TEXT_KEYS or key.startswith("HTTP_")) and isinstance(value, str):
                environ[key] = latin1_native(value)
        if request.get(PREFER_GZIP_KEY):
            environ[PREFER_GZIP] = True
        return environ
