"""Filtered menu calls answered from the cached full menu, on the event loop.

A front end's category tabs (`?category=Salads`) and dietary chips (`?tags=vegan`) are
read as often as the menu itself, and anyone can ask for a new category each time. Each
one used to be a miss: a thread, the database and a render, for a list the cached menu
already holds. Now the call is answered from the cached full menu of its shape (the
published variant it filters: `""`, `all=true`, `shape=normalized` or both): its items
are indexed once per cached body (byte ranges, id, category, availability, tags, external
id; in the normalized shape each item's modifier ids too) and a filter joins the ranges it
keeps: the nested shape's top-level items it keeps; the normalized shape's entries it keeps
and every item they reach (`presto.services.menus.reachable_items`), in menu order. The
answer is byte for byte the route's (`presto.services.menu_view.select_entries` over the
same items: `tests/test_menu_filters.py` compares them), with the full menu's tag, headers
and expiry: a filter picks items, it does not change the menu's version or period.

`exclude_allergens` needs what each item unavoidably contains (`presto.services.dietary`:
its own allergens and those every choice of a required group forces, at any depth), which
the nested body cannot tell where the renderer cut a cycle or the depth cap. It is read
from the normalized menu of every item (`shape=normalized&all=true`, cached or published
like the others), which lists every link; a graph with a cycle (bad data, plain SQL) is
left to Flask, whose rule for one depends on the order items are visited.

What a call answers depends only on what its filter keeps (`MenuIndex.selection`), and
endless query strings keep the same: every category no item has (nothing), every order
of a list. So answers are made once per selection and kept
with the full menu (`presto.serving.cache.MenuCache.answer`); a query string is cached
under its own key only when it made a new answer that keeps an item, so a flood of new
spellings pushes no filtered menu out of the cache.

An index is made on the event loop, once per cached body: about 4 ms a megabyte, so a
body over `MAX_INDEXED_BYTES` is not indexed and its filters go to Flask as before (a menu
that large is better read in the normalized shape, whose body lists each item once).

A query string is answered here only if it holds the route's parameters but `at`, and
each value passes the route's own field (`MenuQuerySchema`, so the two cannot read a value
differently); a repeated parameter is read as the route reads it, by its first value.
Anything else (`at=` previews, an unknown parameter, an invalid value) goes to Flask as
before, which answers it or its 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from marshmallow import ValidationError

from presto.schemas.queries import MenuQuerySchema

# The route's query schema, whose fields read each parameter here as they do there.
_FIELDS = MenuQuerySchema().fields
# The parameters read here: every one of the schema's but `at` (a preview is rendered).
_PARAMETERS = frozenset(_FIELDS) - {"at"}
# The published menu whose links say what each item unavoidably contains.
EVERY_ITEM_NORMALIZED = "shape=normalized&all=true"
# Bytes an indexed item costs beside the menu's body, counted against the cache's budget
# with the entry (tracemalloc, 2,000 items, half with an external id): its object and
# slot; in the normalized shape, its modifier ids and place in `by_id` besides; in an
# allergen index, its id, dict slot and share of the distinct sets.
INDEXED_ITEM_BYTES = 240
NORMALIZED_ITEM_BYTES = 150
CONTENTS_ITEM_BYTES = 210
INDEX_OVERHEAD = 200
# The largest body indexed on the event loop (about 4 ms of it, once per cached body).
MAX_INDEXED_BYTES = 1024 * 1024


# What a filter keeps of an indexed menu (`MenuIndex.selection`).
Selection = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LoopFilter:
    """A menu call's filters that the loop answers; None or empty: no filter."""

    include_all: bool
    available: bool | None
    category: str | None
    tags: frozenset[str]
    external_id: str | None = None
    exclude_allergens: frozenset[str] = frozenset()
    normalized: bool = False

    @property
    def full_menu(self) -> str:
        """The query string of the published menu this call filters."""
        if self.normalized:
            return EVERY_ITEM_NORMALIZED if self.include_all else "shape=normalized"
        return "all=true" if self.include_all else ""


def parse_filter(raw_query: str) -> LoopFilter | None:
    """The filter of a menu call's raw query string, if the loop answers it exactly as
    the route would (see the module doc); None: Flask answers the call."""
    if not raw_query.isascii():
        return None
    try:
        # As Werkzeug parses `request.args`; undecodable bytes are left to Flask.
        pairs = parse_qsl(raw_query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return None
    query: dict[str, str] = {}
    for name, value in pairs:
        # A repeated parameter as the route reads it (webargs over `request.args`): its
        # first value; the others are neither read nor checked.
        query.setdefault(name, value)
    if not query.keys() <= _PARAMETERS:
        return None
    try:
        # Each value through the route's own field: its parsing and its validators.
        values = {name: _FIELDS[name].deserialize(value) for name, value in query.items()}
    except ValidationError:
        return None
    return LoopFilter(
        values.get("all", False),
        values.get("available"),
        values.get("category"),
        frozenset(values.get("tags", ())),
        values.get("external_id"),
        frozenset(values.get("exclude_allergens", ())),
        values.get("shape", "nested") == "normalized",
    )


@dataclass(frozen=True, slots=True)
class IndexedItem:
    """An item of a cached menu body: where its JSON lies in the body, what the filters
    read, and (in the normalized shape) its modifiers' ids."""

    start: int
    end: int
    id: int
    category: str | None
    available: bool
    tags: frozenset[str]
    external_id: str | None
    modifiers: tuple[int, ...] = ()

    def kept_by(self, menu_filter: LoopFilter, contains: dict[int, frozenset[str]] | None) -> bool:
        """Whether the call filtered by `menu_filter` lists this entry, as
        `presto.services.menu_view.select_entries` decides (`contains`: what each item
        unavoidably contains, needed for `exclude_allergens`)."""
        excluded = menu_filter.exclude_allergens
        return (
            (menu_filter.category is None or self.category == menu_filter.category)
            and (menu_filter.available is None or self.available is menu_filter.available)
            and menu_filter.tags <= self.tags
            and (menu_filter.external_id is None or self.external_id == menu_filter.external_id)
            and (not excluded or contains is None or excluded.isdisjoint(contains[self.id]))
        )


@dataclass(frozen=True, slots=True)
class MenuIndex:
    """The items of one cached menu body, in body order: the nested shape's top-level
    items, or every item of the normalized shape (then `entries` are the entries' ids).
    `items` is None for a body this module cannot index (then Flask answers the filters)."""

    items: tuple[IndexedItem, ...] | None
    entries: tuple[int, ...] | None = None
    # The normalized shape's items by id, to follow modifiers.
    by_id: dict[int, IndexedItem] | None = None

    @property
    def size(self) -> int:
        """Bytes it counts against the cache's budget."""
        per_item = INDEXED_ITEM_BYTES + (NORMALIZED_ITEM_BYTES if self.by_id is not None else 0)
        return INDEX_OVERHEAD + per_item * len(self.items or ())

    def selection(
        self, menu_filter: LoopFilter, contents: AllergenIndex | None = None
    ) -> Selection | None:
        """What the filtered call keeps, which alone makes its body: the positions of the
        nested shape's items kept, or the ids of the normalized shape's entries kept; None
        if the loop cannot answer it. Many filters keep the same (every order of a list,
        every category no item has): their answers are one (`MenuCache.answer`)."""
        contains = contents.contains if contents is not None else None
        if self.items is None or (menu_filter.exclude_allergens and contains is None):
            return None
        if self.by_id is None:
            return tuple(
                position
                for position, item in enumerate(self.items)
                if item.kept_by(menu_filter, contains)
            )
        assert self.entries is not None
        by_id = self.by_id
        return tuple(i for i in self.entries if by_id[i].kept_by(menu_filter, contains))

    def join(self, body: bytes, selection: Selection) -> bytes:
        """The body of what `selection` keeps: the kept items' bytes joined; in the
        normalized shape, the entries kept and every item they reach
        (`presto.services.menus.reachable_items`), in the body's (menu) order."""
        assert self.items is not None
        items = self.items
        if self.by_id is None:
            return b"[" + b",".join(body[items[i].start : items[i].end] for i in selection) + b"]"
        by_id = self.by_id
        reachable = set(selection)
        stack = list(selection)
        while stack:
            for child in by_id[stack.pop()].modifiers:
                if child not in reachable:
                    reachable.add(child)
                    stack.append(child)
        kept = b",".join(body[item.start : item.end] for item in items if item.id in reachable)
        return b'{"entries":' + orjson.dumps(selection) + b',"items":[' + kept + b"]}"


def index_menu(body: bytes) -> MenuIndex:
    """Index a menu call's body, nested or normalized; an index without items if the body
    is not the compact JSON the renderer writes (checked byte for byte) or is larger than
    `MAX_INDEXED_BYTES`."""
    if len(body) > MAX_INDEXED_BYTES:
        return MenuIndex(None)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return MenuIndex(None)
    if isinstance(parsed, list):
        items = _indexed_items(body, 1, parsed, b"]")
        return MenuIndex(None if items is None else tuple(items))
    if not (isinstance(parsed, dict) and list(parsed) == ["entries", "items"]):
        return MenuIndex(None)
    entries, values = parsed["entries"], parsed["items"]
    if not (isinstance(entries, list) and all(isinstance(i, int) for i in entries)):
        return MenuIndex(None)
    head = b'{"entries":' + orjson.dumps(entries) + b',"items":['
    items = _indexed_items(body, len(head), values, b"]}") if body.startswith(head) else None
    if items is None:
        return MenuIndex(None)
    by_id = {item.id: item for item in items}
    if not (by_id.keys() >= set(entries) and all(by_id.keys() >= set(i.modifiers) for i in items)):
        return MenuIndex(None)
    return MenuIndex(tuple(items), tuple(entries), by_id)


def _indexed_items(
    body: bytes, start: int, values: object, tail: bytes
) -> list[IndexedItem] | None:
    """The items of a JSON array `values` written compactly in `body` from `start`, the
    body ending with `tail` after them; None if not."""
    if not isinstance(values, list):
        return None
    items = []
    # One object per distinct category and tag set: menus repeat a few of each.
    categories: dict[str, str] = {}
    tag_sets: dict[frozenset[str], frozenset[str]] = {}
    for value in values:
        if not (isinstance(value, dict) and _has_filtered_fields(value)):
            return None
        part = orjson.dumps(value)
        end = start + len(part)
        if body[start:end] != part:
            return None
        category, modifiers = value.get("category"), value.get("modifiers")
        items.append(
            IndexedItem(
                start,
                end,
                value["id"],
                None if category is None else categories.setdefault(category, category),
                value["available"],
                tag_sets.setdefault(tags := frozenset(value["tags"]), tags),
                value.get("external_id"),
                tuple(modifiers) if isinstance(modifiers, list) and _all_ids(modifiers) else (),
            )
        )
        start = end + 1  # past the comma (or where the tail begins)
    return items if body[start - 1 if items else start :] == tail else None


def _all_ids(values: list[object]) -> bool:
    return all(isinstance(value, int) and not isinstance(value, bool) for value in values)


def _has_filtered_fields(value: dict[str, object]) -> bool:
    category, tags = value.get("category"), value.get("tags")
    external_id = value.get("external_id")
    return (
        isinstance(value.get("id"), int)
        and (category is None or isinstance(category, str))
        and (external_id is None or isinstance(external_id, str))
        and isinstance(value.get("available"), bool)
        and isinstance(tags, list)
        and all(isinstance(tag, str) for tag in tags)
    )


@dataclass(frozen=True, slots=True)
class AllergenIndex:
    """What each item of a menu unavoidably contains, by item id (`dietary`'s rule); None
    for a body that is not an acyclic normalized menu of every item."""

    contains: dict[int, frozenset[str]] | None

    @property
    def size(self) -> int:
        """Bytes it counts against the cache's budget."""
        return INDEX_OVERHEAD + CONTENTS_ITEM_BYTES * len(self.contains or ())


def index_allergens(body: bytes) -> AllergenIndex:
    """What each item contains, from the normalized menu of every item: its allergens,
    with those every choice of a required group forces (`min_choices` > 0, on the item
    itself or on a modifier group of it), at any depth."""
    graph = _normalized_graph(body)
    if graph is None:
        return AllergenIndex(None)
    contains: dict[int, frozenset[str]] = {}
    shared: dict[frozenset[str], frozenset[str]] = {}  # one set per distinct result
    visiting: set[int] = set()
    for root in graph:
        # Depth first, iteratively (plain SQL may chain items deeper than the stack).
        stack = [(root, False)]
        while stack:
            item_id, children_done = stack.pop()
            if item_id in contains:
                continue
            allergens, min_choices, modifiers = graph[item_id]
            if not children_done:
                if item_id in visiting:
                    return AllergenIndex(None)  # a cycle
                visiting.add(item_id)
                stack.append((item_id, True))
                stack.extend((child, False) for child in modifiers if child not in contains)
                continue
            visiting.discard(item_id)
            found = set(allergens)
            if min_choices > 0 and modifiers:
                found |= frozenset.intersection(*(contains[child] for child in modifiers))
            for child in modifiers:
                if graph[child][1] > 0:
                    found |= contains[child]
            contains[item_id] = shared.setdefault(result := frozenset(found), result)
    return AllergenIndex(contains)


def _normalized_graph(
    body: bytes,
) -> dict[int, tuple[list[str], int, list[int]]] | None:
    """Each item's allergens, `min_choices` and modifier ids, from a normalized menu
    body; None if it is not one, names a modifier it does not list, or is larger than
    `MAX_INDEXED_BYTES`."""
    if len(body) > MAX_INDEXED_BYTES:
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    items = parsed.get("items") if isinstance(parsed, dict) else None
    if not isinstance(items, list):
        return None
    graph: dict[int, tuple[list[str], int, list[int]]] = {}
    for item in items:
        if not isinstance(item, dict):
            return None
        item_id, allergens = item.get("id"), item.get("allergens")
        min_choices, modifiers = item.get("min_choices"), item.get("modifiers")
        if not (
            isinstance(item_id, int)
            and isinstance(allergens, list)
            and isinstance(min_choices, int)
            and isinstance(modifiers, list)
            and all(isinstance(child, int) for child in modifiers)
        ):
            return None
        graph[item_id] = (allergens, min_choices, modifiers)
    if any(child not in graph for _, _, modifiers in graph.values() for child in modifiers):
        return None
    return graph
