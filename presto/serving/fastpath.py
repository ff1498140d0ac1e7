"""Menu calls answered in the async layer, before the WSGI bridge.

A cached menu costs a path match, a shared-memory read and a dict lookup on the event loop:
no thread hop, no Flask routing, no database, no serialization. A miss goes through Flask
as usual and its response is kept for the next request of the same menu generation.
While the database cannot be reached, a menu call that fails is answered with the cached
menu instead, marked stale (RFC 5861 `stale-if-error`, doc/reliability.md).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from werkzeug.http import parse_etags, unquote_etag

from presto.serving.cache import (
    CACHED_HEADERS,
    STALE_IF_ERROR,
    CachedMenu,
    MenuCache,
    StaleMenuResponse,
)
from presto.serving.counters import ProtectionCounters
from presto.serving.generations import MenuChangeListener, MenuGenerations
from presto.storage.availability import DatabaseAvailability

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_MENU_PATH = re.compile(r"/restaurant/([0-9]{1,18})/item")


class MenuFastPath:
    """Serves `GET /restaurant/<id>/item` from `cache` while its generation holds."""

    def __init__(
        self,
        cache: MenuCache,
        generations: MenuGenerations,
        listener: MenuChangeListener | None = None,
        *,
        availability: DatabaseAvailability | None = None,
        counters: ProtectionCounters | None = None,
    ) -> None:
        self.cache = cache
        self.generations = generations
        # Menus being loaded by a request now, by (cache key, generation).
        self._loading: dict[tuple[tuple[int, str], int], asyncio.Future[CachedMenu | None]] = {}
        # On PostgreSQL: while the listener is down, changes on other hosts go unheard.
        self.listener = listener
        # While the database is unreachable, a failed menu call gets the cached menu, stale.
        self.availability = availability
        self.counters = counters or ProtectionCounters()

    async def handle(self, request: web.BaseRequest, wsgi: Handler) -> web.StreamResponse:
        """Answer from the cache, or from `wsgi` (keeping a cacheable answer)."""
        match = _MENU_PATH.fullmatch(request.path) if request.method == "GET" else None
        if match is None:
            return await wsgi(request)
        restaurant_id = int(match[1])
        key = (restaurant_id, request.query_string)
        if self.listener is not None and not self.listener.connected:
            return self._stale_if_error(request, key, await wsgi(request))
        # Read before the request reaches the database: a write committed meanwhile bumps
        # the generation, so what this request stores can't answer a later request.
        generation = self.generations.get(restaurant_id)
        entry = self.cache.get(key, generation)
        if entry is not None:
            return self._respond(request, entry)
        # Right after a change, every reader of the menu misses at once: let the first
        # one load it and the others, of the same generation, wait for its answer.
        pending = self._loading.get((key, generation))
        if pending is not None:
            entry = await asyncio.shield(pending)
            if entry is not None:
                return self._respond(request, entry)
            return self._stale_if_error(request, key, await wsgi(request))
        loading: asyncio.Future[CachedMenu | None] = asyncio.get_running_loop().create_future()
        self._loading[(key, generation)] = loading
        try:
            response = await wsgi(request)
            entry = self._cacheable(response, generation)
            if entry is not None:
                self.cache.put(key, entry)
            return self._stale_if_error(request, key, response)
        finally:
            del self._loading[(key, generation)]
            loading.set_result(entry)

    def _stale_if_error(
        self, request: web.BaseRequest, key: tuple[int, str], response: web.StreamResponse
    ) -> web.StreamResponse:
        """RFC 5861 `stale-if-error`: the last cached menu instead of a 5xx, but only while
        the database is unreachable; while it answers, a menu is never served stale."""
        if response.status < 500 or self.availability is None or self.availability.available:
            return response
        entry = self.cache.peek(key)
        if entry is None:
            return response
        self.counters.stale_if_error += 1
        return self._respond(request, entry, stale=True)

    @staticmethod
    def _cacheable(response: web.StreamResponse, generation: int) -> CachedMenu | None:
        """The entry to keep for a menu call's response, if it is a full menu."""
        if not (
            response.status == 200
            and isinstance(response, web.Response)
            and isinstance(response.body, bytes)
            and "ETag" in response.headers
        ):
            return None
        return CachedMenu(
            generation=generation,
            etag=response.headers["ETag"],
            body=response.body,
            headers=tuple(
                (name, response.headers[name])
                for name in CACHED_HEADERS
                if name in response.headers
            ),
        )

    @staticmethod
    def _respond(
        request: web.BaseRequest, entry: CachedMenu, *, stale: bool = False
    ) -> web.Response:
        if_none_match = request.headers.get("If-None-Match")
        headers = (*entry.headers, STALE_IF_ERROR) if stale else entry.headers
        response_class = StaleMenuResponse if stale else web.Response
        if if_none_match and parse_etags(if_none_match).contains_weak(unquote_etag(entry.etag)[0]):
            headers = tuple((name, value) for name, value in headers if name != "Content-Type")
            return response_class(status=304, headers=headers)
        return response_class(body=entry.body, headers=headers)
