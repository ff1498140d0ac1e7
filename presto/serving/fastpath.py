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
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from werkzeug.http import parse_etags, unquote_etag

from presto.api.content_coding import accepts_gzip
from presto.api.converters import digits_up_to
from presto.menus.representation import (
    PUBLISHED_HEADERS,
    QUERY_STRINGS,
    VALID_UNTIL_HEADER,
    identity_etag,
)
from presto.serving.cache import (
    CACHED_HEADERS,
    STALE_IF_ERROR,
    CachedMenu,
    MenuCache,
    Representation,
    StaleMenuResponse,
    is_filtered,
)
from presto.serving.generations import MenuChangeListener, MenuGenerations
from presto.serving.menu_filters import EVERY_ITEM_NORMALIZED, LoopFilter, parse_filter
from presto.serving.prepared import PreparedResponse, is_preparable
from presto.serving.request import TrackedRequest
from presto.serving.telemetry.counters import ProtectionCounters
from presto.serving.wsgi_environ import PREFER_GZIP_KEY
from presto.storage.availability import DatabaseAvailability
from presto.storage.compression import decompress
from presto.storage.models import MAX_ID
from presto.storage.published_menus import Published

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

# The routes' ids (1 to `MAX_ID`): any other goes on to Flask's 404, never to the database.
_MENU_PATH = re.compile(rf"/restaurant/({digits_up_to(MAX_ID)})/item")


class MenuFastPath:
    """Serves `GET /restaurant/<id>/item` from `cache` while its generation holds."""

    def __init__(
        self,
        cache: MenuCache,
        generations: MenuGenerations,
        listener: MenuChangeListener | None = None,
        on_load: Callable[[float], None] | None = None,
        *,
        availability: DatabaseAvailability | None = None,
        counters: ProtectionCounters | None = None,
        reader: Callable[[int, str], Awaitable[Published | None]] | None = None,
    ) -> None:
        self.cache = cache
        # Told how many seconds each menu load (a miss sent to the database) took.
        self.on_load = on_load
        self.generations = generations
        # Menus being loaded by a request now, by (cache key, generation).
        self._loading: dict[tuple[tuple[int, str], int], asyncio.Future[CachedMenu | None]] = {}
        # On PostgreSQL: while the listener is down, changes on other hosts go unheard.
        self.listener = listener
        # While the database is unreachable, a failed menu call gets the cached menu, stale.
        self.availability = availability
        self.counters = counters or ProtectionCounters()
        # Reads a current published menu body off the event loop (None: none, or not now).
        self.reader = reader

    async def handle(self, request: web.BaseRequest, wsgi: Handler) -> web.StreamResponse:
        """Answer from the cache, or from `wsgi` (keeping a cacheable answer): the entry the
        request handler (`presto.serving.handler`) and the tests both use."""
        response = self.hit(request)
        if response is not None:
            return response
        return await self.load(request, wsgi)

    def hit(self, request: web.BaseRequest) -> web.StreamResponse | None:
        """The cached answer to a menu call, if the cache holds its current menu (for a
        filter, the full menu it filters); None otherwise (then `load` answers it). No
        coroutine: most requests end here."""
        key = menu_call(request)
        if key is None or (self.listener is not None and not self.listener.connected):
            return None
        generation = self.generations.get(key[0])
        if not is_filtered(key):
            entry = self.cache.get(key, generation)
            return None if entry is None else self._respond(request, key, entry)
        entry = self.cache.get(key, generation, count=False)
        if entry is not None:
            self.cache.counted(True)
            return self._respond(request, key, entry)
        menu_filter = parse_filter(request.rel_url.raw_query_string)
        found = None if menu_filter is None else self._filter_cached(key, menu_filter, generation)
        self.cache.counted(found is not None)
        if found is None:
            return None
        return self._answer_filtered(request, key, *found)

    def _filter_cached(
        self, key: tuple[int, str], menu_filter: LoopFilter, generation: int
    ) -> tuple[CachedMenu, bool] | None:
        """A filtered call answered from the cached full menu (`presto.serving.menu_filters`),
        and whether to cache it under its own query string (`MenuCache.answer`); None if
        the loop cannot answer it so."""
        menu_key = (key[0], menu_filter.full_menu)
        menu = self.cache.get(menu_key, generation, count=False)
        if menu is None:
            return None
        contents = None
        if menu_filter.exclude_allergens:
            every_item_key = (key[0], EVERY_ITEM_NORMALIZED)
            every_item = self.cache.get(every_item_key, generation, count=False)
            if every_item is None:
                return None
            contents = self.cache.allergen_index(every_item_key, every_item)
        index = self.cache.index(menu_key, menu)
        selection = index.selection(menu_filter, contents)
        if selection is None:
            return None
        return self.cache.answer(menu_key, menu, index, selection)

    def _answer_filtered(
        self, request: web.BaseRequest, key: tuple[int, str], entry: CachedMenu, keep: bool
    ) -> web.StreamResponse:
        """Answer a filtered call made on the loop; if `keep` (a new answer that keeps an
        item: `MenuCache.answer`), cache it under the call's query string too, so that
        the same call is a plain hit. Another spelling of a filter before it, or one
        that keeps nothing, is answered from the menu's answers each time: a flood of
        them pushes nothing out."""
        response = self._respond(request, key, entry)
        if keep:
            self.cache.put(key, entry.copy())
        return response

    async def _filter_published(
        self, request: web.BaseRequest, key: tuple[int, str], generation: int, wsgi: Handler
    ) -> tuple[CachedMenu, bool] | None:
        """A filtered call whose full menu (or, for `exclude_allergens`, normalized menu of
        every item) is not cached: what is missing read from the published store, or
        rendered by the route if it is not published (and kept), then filtered; None if
        the loop cannot answer it so (or the call is not filtered)."""
        menu_filter = parse_filter(request.rel_url.raw_query_string) if is_filtered(key) else None
        if menu_filter is None:
            return None
        needed = [menu_filter.full_menu]
        if menu_filter.exclude_allergens:
            needed.append(EVERY_ITEM_NORMALIZED)
        for query_string in needed:
            menu_key = (key[0], query_string)
            if self.cache.get(menu_key, generation, count=False) is not None:
                continue
            # Rendered only beside a full menu of this generation: the restaurant exists
            # (a call for an unknown one, or any menu not published, goes to Flask once).
            render = query_string != menu_filter.full_menu
            if await self._load_full(request, wsgi, menu_key, generation, render) is None:
                return None
        return self._filter_cached(key, menu_filter, generation)

    async def _load_full(
        self,
        request: web.BaseRequest,
        wsgi: Handler,
        menu_key: tuple[int, str],
        generation: int,
        render: bool,
    ) -> CachedMenu | None:
        """A full menu a filter needs, read from the published store or (if `render`)
        rendered, and kept: one load of it at a time (the filtered calls that need it
        meanwhile wait for it, as the menu's own callers do in `load`)."""
        pending = self._loading.get((menu_key, generation))
        if pending is not None:
            return await asyncio.shield(pending)
        loading: asyncio.Future[CachedMenu | None] = asyncio.get_running_loop().create_future()
        self._loading[(menu_key, generation)] = loading
        started = time.perf_counter()
        full = None
        try:
            full = await self._read_published(menu_key[0], menu_key[1], generation)
            if full is None and render:
                full = await self._render_full(request, wsgi, menu_key[1], generation)
            if full is not None:
                # A load that found nothing is counted with the Flask call that follows.
                if self.on_load is not None:
                    self.on_load(time.perf_counter() - started)
                self.cache.put(menu_key, full)
        finally:
            del self._loading[(menu_key, generation)]
            loading.set_result(full)
        return full

    async def _render_full(
        self, request: web.BaseRequest, wsgi: Handler, query_string: str, generation: int
    ) -> CachedMenu | None:
        """The full menu of `query_string` a filter needs and the published store has no
        current copy of (a variant nobody read since the menu last changed: the normalized
        menu of every item, until the first `exclude_allergens`), asked of the route as a
        client's call for it would be: admitted, rendered and published once; None if it
        was not answered with a menu (shed, an error)."""
        full_request = request.clone(rel_url=f"{request.path}?{query_string}")
        if isinstance(request, TrackedRequest) and isinstance(full_request, TrackedRequest):
            full_request.request_id, full_request.started = request.request_id, request.started
        # A published menu comes back as its stored gzip bytes: no compression here.
        full_request[PREFER_GZIP_KEY] = True
        return self._cacheable(await wsgi(full_request), generation)

    async def load(self, request: web.BaseRequest, wsgi: Handler) -> web.StreamResponse:
        """Answer a request `hit` did not: from `wsgi`, keeping a cacheable menu."""
        key = menu_call(request)
        if key is None:
            return without_validity_header(await wsgi(request))
        restaurant_id = key[0]
        if self.listener is not None and not self.listener.connected:
            return self._stale_if_error(request, key, without_validity_header(await wsgi(request)))
        # Read before the request reaches the database: a write committed meanwhile bumps
        # the generation, so what this request stores can't answer a later request.
        generation = self.generations.get(restaurant_id)
        # Right after a change, every reader of the menu misses at once: let the first
        # one load it and the others, of the same generation, wait for its answer.
        pending = self._loading.get((key, generation))
        if pending is not None:
            entry = await asyncio.shield(pending)
            if entry is not None:
                return self._respond(request, key, entry)
            return self._stale_if_error(request, key, without_validity_header(await wsgi(request)))
        loading: asyncio.Future[CachedMenu | None] = asyncio.get_running_loop().create_future()
        self._loading[(key, generation)] = loading
        started = time.perf_counter()
        entry = None
        try:
            entry = await self._read_published(restaurant_id, request.query_string, generation)
            if entry is not None:
                if self.on_load is not None:
                    self.on_load(time.perf_counter() - started)
                self.cache.put(key, entry)
                return self._respond(request, key, entry)
            found = await self._filter_published(request, key, generation, wsgi)
            if found is not None:
                entry = found[0]
                return self._answer_filtered(request, key, *found)
            # A published menu comes back as its stored gzip bytes: no compression here.
            request[PREFER_GZIP_KEY] = True
            response = await wsgi(request)
            if self.on_load is not None:
                self.on_load(time.perf_counter() - started)
            entry = self._cacheable(response, generation)
            if entry is not None:
                self.cache.put(key, entry)
                # The client asked before the entry existed: answer it as a hit would.
                return self._respond(request, key, entry)
            return self._stale_if_error(request, key, as_accepted(request, response))
        finally:
            del self._loading[(key, generation)]
            loading.set_result(entry)

    async def _read_published(
        self, restaurant_id: int, query_string: str, generation: int
    ) -> CachedMenu | None:
        """The entry of the menu's published body, read without Flask; None if there is no
        current one (or the reader cannot run now): Flask then answers the request."""
        variant = QUERY_STRINGS.get(query_string)
        if self.reader is None or variant is None:
            return None
        published = await self.reader(restaurant_id, variant)
        if published is None:
            return None
        return CachedMenu.of(
            generation,
            f'"{published.etag}"',
            None,
            PUBLISHED_HEADERS,
            expires=published.valid_until,
            gzip_body=published.body_gzip,
        )

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
        return self._respond(request, key, entry, stale=True)

    @staticmethod
    def _cacheable(response: web.StreamResponse, generation: int) -> CachedMenu | None:
        """The entry to keep for a menu call's response, if it is a full menu.

        A menu with schedules says until when it holds (`VALID_UNTIL_HEADER`, taken off
        the response here); one already past that (an `at=` preview) is not kept.
        """
        valid_until = response.headers.popall(VALID_UNTIL_HEADER, None)
        expires = float(valid_until[0]) if valid_until else None
        if expires is not None and expires <= time.time():
            return None
        if not (
            response.status == 200
            and isinstance(response, web.Response)
            and isinstance(response.body, bytes)
            and "ETag" in response.headers
        ):
            return None
        etag: str = response.headers["ETag"]
        body: bytes | None = response.body
        gzip_body: bytes | None = None
        if response.headers.get("Content-Encoding") == "gzip":
            etag, body, gzip_body = identity_etag(etag), None, response.body
        return CachedMenu.of(
            generation,
            etag,
            body,
            tuple(
                (name, response.headers[name])
                for name in CACHED_HEADERS
                if name in response.headers
            ),
            expires=expires,
            gzip_body=gzip_body,
        )

    def _respond(
        self,
        request: web.BaseRequest,
        key: tuple[int, str],
        entry: CachedMenu,
        *,
        stale: bool = False,
    ) -> web.StreamResponse:
        """The representation the client accepts, or 304 if it holds that one already;
        `stale` marks a menu served because the database cannot be reached."""
        accept_encoding = request.headers.get("Accept-Encoding")
        chosen: Representation = entry.identity
        if accept_encoding and accepts_gzip(accept_encoding):
            chosen = entry.gzip
        headers = (*chosen.headers, STALE_IF_ERROR) if stale else chosen.headers
        response_class = StaleMenuResponse if stale else web.Response
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match and parse_etags(if_none_match).contains_weak(unquote_etag(chosen.etag)[0]):
            headers = tuple(
                (name, value)
                for name, value in headers
                if name not in ("Content-Type", "Content-Encoding")
            )
            return response_class(status=304, headers=headers)
        body = chosen.body if chosen is entry.gzip else self.cache.plain_body(key, entry)
        if not stale and is_preparable(request):
            return PreparedResponse(chosen.head, body, chosen.headers)
        return response_class(body=body, headers=headers)


def menu_call(request: web.BaseRequest) -> tuple[int, str] | None:
    """The cache key (restaurant id, query string) of a `GET /restaurant/<id>/item`; None
    for any other request."""
    if request.method != "GET":
        return None
    match = _MENU_PATH.fullmatch(request.path)
    return None if match is None else (int(match[1]), request.query_string)


def as_accepted(request: web.BaseRequest, response: web.StreamResponse) -> web.StreamResponse:
    """`response`, decompressed if it is gzip the client did not ask for (a menu asked for
    as gzip on its behalf that the cache did not keep)."""
    if response.headers.get("Content-Encoding") != "gzip" or not isinstance(response, web.Response):
        return response
    if accepts_gzip(request.headers.get("Accept-Encoding", "")) or not isinstance(
        response.body, bytes
    ):
        return response
    headers = response.headers.copy()
    del headers["Content-Encoding"]
    headers.popall("Content-Length", None)
    if "ETag" in headers:
        headers["ETag"] = identity_etag(headers["ETag"])
    return web.Response(status=response.status, body=decompress(response.body), headers=headers)


def without_validity_header(response: web.StreamResponse) -> web.StreamResponse:
    """The response without `VALID_UNTIL_HEADER`, which is for the warm path only."""
    response.headers.popall(VALID_UNTIL_HEADER, None)
    return response
