"""The menu cache: encoded menu responses kept in memory, answered in the async layer.

An entry is a menu call's response (body and headers) stored with the menu generation
(`presto.generations`) read *before* the request went to the database. It answers a later
request only while the generation is unchanged, so a write that has been answered is never
followed by an older menu. There is no time-to-live: a menu stays cached until it changes or
is pushed out by the byte budget (least recently used first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web

# Headers of a cached response worth sending again.
CACHED_HEADERS = ("Content-Type", "ETag", "Cache-Control")
# RFC 9211 `Cache-Status` of a menu served stale because the database could not be reached.
STALE_IF_ERROR = ("Cache-Status", "presto; hit; detail=stale-if-error")


class StaleMenuResponse(web.Response):
    """A cached menu answered while the database is unreachable; the access log says so."""


@dataclass(frozen=True)
class CachedMenu:
    """One cached response of `GET /restaurant/<id>/item?<query>`."""

    generation: int
    etag: str
    body: bytes
    headers: tuple[tuple[str, str], ...]

    @property
    def size(self) -> int:
        """Bytes this entry counts against the budget (the body dominates)."""
        return len(self.body) + 256


class MenuCache:
    """A least-recently-used map from (restaurant id, query string) to `CachedMenu`.

    Used from the event loop thread only, so it needs no lock.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[int, str], CachedMenu] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[int, str], generation: int) -> CachedMenu | None:
        """The entry for `key` if it was stored under `generation`."""
        entry = self._entries.get(key)
        if entry is None or entry.generation != generation:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def peek(self, key: tuple[int, str]) -> CachedMenu | None:
        """The newest entry for `key` whatever its generation (`stale-if-error` only)."""
        return self._entries.get(key)

    def put(self, key: tuple[int, str], entry: CachedMenu) -> None:
        """Store `entry`, evicting the least recently used entries to stay in budget."""
        old = self._entries.get(key)
        if old is not None:
            if old.generation > entry.generation:
                return  # a slower request of an older generation finished last
            del self._entries[key]
            self.bytes -= old.size
        if entry.size > self.max_bytes:
            return
        while self.bytes + entry.size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.size
        self._entries[key] = entry
        self.bytes += entry.size
