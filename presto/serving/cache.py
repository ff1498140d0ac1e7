"""The menu cache: encoded menu responses kept in memory, answered in the async layer.

An entry is a menu call's response stored with the menu generation
(`presto.serving.generations`) read *before* the request went to the database. It answers a
later request only while the generation is unchanged, so a write that has been answered is
never followed by an older menu. A menu with schedules also carries `expires`, the Unix
time its next window opens or closes: from then on it misses, so the next request renders
the new period. Otherwise there is no time-to-live: a menu stays cached until it changes or
is pushed out by the byte budget.

Every entry keeps its response gzip-compressed (made once, when the entry is made: a demo
menu shrinks 25 times), and the plain bytes only while they are in use. When the budget is
full, the entries whose plain bytes were used least recently lose them first (the gzip bytes
stay: plain bytes are one decompression away); only when no entry has plain bytes left do
whole entries go, least recently used first, and only for a busy menu's plain copy (read
plain again within `BUSY_SECONDS`): a catalog menu read now and then is decompressed for
each plain read rather than push some 20 compressed menus out. So a worker holds a catalog
of thousands of menus compressed, and its busy menus ready in both encodings.

Filtered menu calls (`category=`, `tags=`, any query string that is not a published
variant) are kept too, but in a share of the budget of their own (`FILTERED_SHARE`): one
is pushed out only by another, least recently used first, never a full menu. Anyone can
ask for a new category each time, so without the share a flood of them would push every
real menu out. Most are made from a cached full menu's items on the loop
(`presto.serving.menu_filters`, the index kept with the menu's entry and counted with it).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from aiohttp import web

from presto.menus.representation import QUERY_STRINGS, encoding_headers, gzip_etag
from presto.serving.menu_filters import (
    AllergenIndex,
    MenuIndex,
    Selection,
    index_allergens,
    index_menu,
)
from presto.serving.prepared import STATUS_LINE, header_lines
from presto.storage.compression import compress, compress_fast, decompress

# Headers of a cached response worth sending again.
CACHED_HEADERS = ("Content-Type", "ETag", "Cache-Control")
# RFC 9211 `Cache-Status` of a menu served stale because the database could not be reached.
STALE_IF_ERROR = ("Cache-Status", "presto; hit; detail=stale-if-error")
# A menu read plain again within this many seconds of its last decompression is busy: it
# may push whole entries out to keep its plain bytes (100 plain reads a second and more).
BUSY_SECONDS = 0.01
# Bytes an entry counts against the budget besides its bodies: its objects (the entry, two
# representations with their headers and prepared heads, the key, two map slots) measured
# with tracemalloc at about 1,350 bytes.
ENTRY_OVERHEAD = 1400
# The share of the budget that entries of filtered menu calls may hold at most.
FILTERED_SHARE = 0.125
# Filtered answers kept with a full menu, by what they keep (`MenuCache.answer`): at most
# this many per menu, compressed unless their body is at most `PLAIN_ANSWER_BYTES`.
MAX_ANSWERS = 16
PLAIN_ANSWER_BYTES = 4096

Key = tuple[int, str]


def is_filtered(key: Key) -> bool:
    """A menu call other than the published variants (a filter, a preview, a spelling of
    its own): kept within the filtered share."""
    return key[1] not in QUERY_STRINGS


class StaleMenuResponse(web.Response):
    """A cached menu answered while the database is unreachable; the access log says so."""


@dataclass(frozen=True)
class Representation:
    """One encoding of a cached response: its entity tag and headers (and gzip bytes);
    `head` is the status line and `headers` of its 200, serialized once."""

    etag: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    head: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "head", STATUS_LINE + header_lines(self.headers))

    def with_body(self, body: bytes) -> Representation:
        """The same representation (tag, headers, head) of another body; made without
        `__init__`, which would serialize the same head again."""
        other = object.__new__(Representation)
        other.__dict__.update(self.__dict__, body=body)
        return other


@dataclass(slots=True)
class CachedMenu:
    """One cached response of `GET /restaurant/<id>/item?<query>`, in both encodings.

    Each encoding has its own strong `ETag` (RFC 9110 8.8.3), and both vary by
    `Accept-Encoding`. `plain` is the uncompressed body while the cache keeps it.
    """

    generation: int
    identity: Representation
    gzip: Representation
    plain: bytes | None
    # Unix time from which the entry no longer answers; None: only a write ends it.
    expires: float | None = None
    # `time.monotonic()` of the last plain read that had to decompress (0: none yet).
    decompressed_at: float = 0.0
    # Once a filtered call was answered from it (`menu_filters`): its items; and, for the
    # normalized menu of every item, what each item contains.
    index: MenuIndex | None = None
    contents: AllergenIndex | None = None
    # Filtered answers made from it, by what they keep, and the bytes they count.
    answers: dict[Selection, CachedMenu] | None = None
    answers_bytes: int = 0

    @classmethod
    def of(
        cls,
        generation: int,
        etag: str,
        body: bytes | None,
        headers: tuple[tuple[str, str], ...],
        expires: float | None = None,
        *,
        gzip_body: bytes | None = None,
    ) -> CachedMenu:
        """The entry of a response: `headers` are its own, `ETag` among them (the identity
        tag); `gzip_body`, if given, is the body compressed already (`body` may be None)."""
        if gzip_body is None:
            assert body is not None
            gzip_body = compress(body)
        kept = tuple((name, value) for name, value in headers if name != "ETag")
        gzip_tag = gzip_etag(etag)
        return cls(
            generation,
            Representation(etag, (*kept, *encoding_headers(etag, gzip=False))),
            Representation(gzip_tag, (*kept, *encoding_headers(gzip_tag, gzip=True)), gzip_body),
            body,
            expires,
        )

    @classmethod
    def filtered(cls, menu: CachedMenu, body: bytes) -> CachedMenu:
        """The entry of a filtered call answered from `menu`'s items (`body`): the menu's
        generation, tag, headers and expiry."""
        gzip = menu.gzip.with_body(compress_fast(body))
        return cls(menu.generation, menu.identity, gzip, body, menu.expires)

    @property
    def size(self) -> int:
        """Bytes this entry counts against the budget (the bodies dominate)."""
        plain = len(self.plain) if self.plain is not None else 0
        index = self.index.size if self.index is not None else 0
        contents = self.contents.size if self.contents is not None else 0
        extra = index + contents + self.answers_bytes
        return len(self.gzip.body) + plain + extra + ENTRY_OVERHEAD

    def copy(self) -> CachedMenu:
        """The same answer as an entry of its own (sharing the bodies), to be stored."""
        return replace(self, index=None, contents=None, answers=None, answers_bytes=0)


class MenuCache:
    """A map from (restaurant id, query string) to `CachedMenu` within a byte budget.

    Used from the event loop thread only, so it needs no lock.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        # Of `bytes`, those of plain bodies (each one decompression away from its gzip).
        self.plain_bytes = 0
        # Every entry, least recently used first.
        self._entries: OrderedDict[Key, CachedMenu] = OrderedDict()
        # The keys of entries holding plain bytes, least recently used (plain) first.
        self._plain: OrderedDict[Key, None] = OrderedDict()
        # Of `bytes`, those of filtered entries; their keys, least recently used first.
        self.filtered_bytes = 0
        self.max_filtered_bytes = int(max_bytes * FILTERED_SHARE)
        self._filtered: OrderedDict[Key, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key, generation: int, *, count: bool = True) -> CachedMenu | None:
        """The entry for `key` if it was stored under `generation` and has not expired;
        counted as a hit or a miss unless `count` is false (then the caller counts)."""
        entry = self._entries.get(key)
        if (
            entry is None
            or entry.generation != generation
            or (entry.expires is not None and time.time() >= entry.expires)
        ):
            self.misses += count
            return None
        self._entries.move_to_end(key)
        if key in self._filtered:
            self._filtered.move_to_end(key)
        self.hits += count
        return entry

    def counted(self, hit: bool) -> None:
        """Count a menu call the caller answered from memory (`hit`) or not."""
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    def index(self, key: Key, entry: CachedMenu) -> MenuIndex:
        """The index of a full menu's top-level items, made on first use and kept with
        the entry (counted against the budget, as its bodies are)."""
        if entry.index is None:
            index = index_menu(self.plain_body(key, entry))
            self._account(key, entry, index.size)
            entry.index = index
        return entry.index

    def allergen_index(self, key: Key, entry: CachedMenu) -> AllergenIndex:
        """What each item contains, from the normalized menu of every item (`entry`),
        made on first use and kept with the entry as `index` is."""
        if entry.contents is None:
            contents = index_allergens(self.plain_body(key, entry))
            self._account(key, entry, contents.size)
            entry.contents = contents
        return entry.contents

    def answer(
        self, key: Key, entry: CachedMenu, index: MenuIndex, selection: Selection
    ) -> tuple[CachedMenu, bool]:
        """The filtered answer of `entry` (the full menu of `key`, indexed by `index`)
        that keeps `selection`, and whether it is worth caching under the call's own
        query string too: made now, and keeping an item. Made (joined and compressed)
        once per selection and kept with the entry, compressed, up to `MAX_ANSWERS`
        (counted against the budget as its index is), so that a filter spelled another
        way (an order, a category no item has) costs no join and no compression. A
        nested selection of every item is the entry itself (the same bytes). The caller
        must not store the answer as it is (`CachedMenu.copy`)."""
        if index.by_id is None and len(selection) == len(index.items or ()):
            return entry, False
        answers = entry.answers
        if answers is not None:
            known = answers.get(selection)
            if known is not None:
                return known, False
        answer = CachedMenu.filtered(entry, index.join(self.plain_body(key, entry), selection))
        if answers is None:
            answers = entry.answers = {}
        if len(answers) < MAX_ANSWERS:
            # Kept compressed, but for a small body (a few items, none: `[]`), which
            # would cost more to decompress each time than to keep.
            small = answer.plain is not None and len(answer.plain) <= PLAIN_ANSWER_BYTES
            kept = answer if small else replace(answer, plain=None)
            answers[selection] = kept
            entry.answers_bytes += kept.size
            self._account(key, entry, kept.size)
        return answer, bool(selection)

    def _account(self, key: Key, entry: CachedMenu, size: int) -> None:
        """Count `size` more bytes of `entry` (an index made for it) if it is stored."""
        if self._entries.get(key) is entry:
            self._make_room(size, keep=key)
            self._count(key, size, 0)

    def plain_body(self, key: Key, entry: CachedMenu) -> bytes:
        """The entry's uncompressed body: kept, or decompressed and kept again.

        `entry` need not be the one stored for `key` any more: a reader that waited on
        another's load holds an entry that a newer generation may have replaced, or the
        budget pushed out, meanwhile. Only the stored entry is counted and kept.
        """
        stored = self._entries.get(key) is entry
        if entry.plain is not None:
            if stored:
                self._plain.move_to_end(key)
            return entry.plain
        body = decompress(entry.gzip.body)
        now = time.monotonic()
        busy, entry.decompressed_at = now - entry.decompressed_at < BUSY_SECONDS, now
        # Kept where other plain bodies can make room; whole entries go for it only if the
        # menu is busy: a 63 KB plain copy costs some 20 compressed menus of a catalog.
        if stored and self._may_keep_plain(key, entry, len(body), busy):
            self._make_room(len(body), keep=key)
            entry.plain = body
            self._count(key, len(body), len(body))
            self._plain[key] = None
        return body

    def _may_keep_plain(self, key: Key, entry: CachedMenu, size: int, busy: bool) -> bool:
        """Whether a decompressed body may be kept: within the budget; for a filtered
        entry, only in room its share has free (it pushes nothing out)."""
        if key in self._filtered:
            return (
                self.filtered_bytes + size <= self.max_filtered_bytes
                and self.bytes + size <= self.max_bytes
            )
        return entry.size + size <= self.max_bytes and (
            busy or self.bytes - self.plain_bytes + size <= self.max_bytes
        )

    def peek(self, key: Key) -> CachedMenu | None:
        """The newest entry for `key` whatever its generation (`stale-if-error` only)."""
        return self._entries.get(key)

    def put(self, key: Key, entry: CachedMenu) -> None:
        """Store `entry`, making room within the budget (a filtered entry, within its
        share, by pushing out other filtered entries only)."""
        old = self._entries.get(key)
        if old is not None:
            if old.generation > entry.generation:
                return  # a slower request of an older generation finished last
            self._remove(key)
        filtered = is_filtered(key)
        if filtered:
            entry.plain = None  # kept compressed: its share is small
            if not self._make_filtered_room(entry.size):
                return
        else:
            if entry.size - len(entry.plain or b"") > self.max_bytes:
                return
            if (
                entry.plain is not None
                and self.bytes - self.plain_bytes + entry.size > self.max_bytes
            ):
                entry.plain = None  # kept compressed only, as `plain_body` would
            self._make_room(entry.size)
        self._entries[key] = entry
        if filtered:
            self._filtered[key] = None
        self._count(key, entry.size, len(entry.plain or b""))
        if entry.plain is not None:
            self._plain[key] = None

    def _make_filtered_room(self, needed: int) -> bool:
        """Push filtered entries out, least recently used first, until `needed` more
        bytes fit in their share and the budget; False if they cannot."""
        if needed > self.max_filtered_bytes:
            return False
        while (
            self.filtered_bytes + needed > self.max_filtered_bytes
            or self.bytes + needed > self.max_bytes
        ) and self._filtered:
            self._remove(next(iter(self._filtered)))
            self.evictions += 1
        return self.bytes + needed <= self.max_bytes

    def _count(self, key: Key, size: int, plain: int) -> None:
        """Add `size` bytes (`plain` of them plain) to the totals of `key`'s entry."""
        self.bytes += size
        self.plain_bytes += plain
        if key in self._filtered:
            self.filtered_bytes += size

    def _make_room(self, needed: int, keep: Key | None = None) -> None:
        """Drop plain bodies, then whole entries, least recently used first, until
        `needed` more bytes fit; `keep`'s entry is not dropped."""
        while self.bytes + needed > self.max_bytes and self._plain:
            key = next(iter(self._plain))
            del self._plain[key]
            entry = self._entries[key]
            assert entry.plain is not None
            self._count(key, -len(entry.plain), -len(entry.plain))
            entry.plain = None
        while self.bytes + needed > self.max_bytes and self._entries:
            key = next(iter(self._entries))
            if key == keep:
                self._entries.move_to_end(key)
                if len(self._entries) == 1:
                    return
                continue
            self._remove(key)
            self.evictions += 1

    def _remove(self, key: Key) -> None:
        entry = self._entries[key]
        self._count(key, -entry.size, -len(entry.plain or b""))
        del self._entries[key]
        self._plain.pop(key, None)
        self._filtered.pop(key, None)
