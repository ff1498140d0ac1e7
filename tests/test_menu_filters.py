"""Filtered menu calls answered on the event loop from the cached full menu
(`presto.serving.menu_filters`): the same bytes and headers as the route, no database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from flask.testing import FlaskClient

from presto.serving.cache import MAX_ANSWERS, MenuCache
from presto.serving.fastpath import MenuFastPath
from presto.serving.generations import MenuGenerations
from presto.serving.menu_filters import (
    INDEX_OVERHEAD,
    INDEXED_ITEM_BYTES,
    MAX_INDEXED_BYTES,
    AllergenIndex,
    LoopFilter,
    MenuIndex,
    index_allergens,
    index_menu,
    parse_filter,
)
from presto.storage.compression import decompress
from presto.storage.models import CATEGORY_LENGTH
from tests.helpers.fast_path import call, published_answers
from tests.helpers.items import create
from tests.helpers.responses import FlaskAsWSGI

# Query strings the loop answers, and the filter it reads from each.
ANSWERED = {
    "category=Salads": LoopFilter(False, None, "Salads", frozenset()),
    "all=1&available=false": LoopFilter(True, False, None, frozenset()),
    "tags=vegan,spicy&shape=nested": LoopFilter(False, None, None, frozenset({"vegan", "spicy"})),
    "category=Entr%C3%A9es&all=true&available=1": LoopFilter(True, True, "Entrées", frozenset()),
    "category=Sides+%26+more&tags=vegan,vegan": LoopFilter(
        False, None, "Sides & more", frozenset({"vegan"})
    ),
    "all=0": LoopFilter(False, None, None, frozenset()),
    "external_id=pos-1&all=true": LoopFilter(True, None, None, frozenset(), "pos-1"),
    "external_id=%20PLU%207%C3%A9": LoopFilter(False, None, None, frozenset(), " PLU 7é"),
    "exclude_allergens=milk": LoopFilter(False, None, None, frozenset(), None, frozenset({"milk"})),
    "exclude_allergens=nuts,gluten&category=Mains": LoopFilter(
        False, None, "Mains", frozenset(), None, frozenset({"nuts", "gluten"})
    ),
    # A repeated parameter is read as the route reads it: the first value, the others
    # neither read nor checked.
    "category=Salads&category=Mains": LoopFilter(False, None, "Salads", frozenset()),
    "tags=vegan&category=Mains&tags=meaty&category=": LoopFilter(
        False, None, "Mains", frozenset({"vegan"})
    ),
    "available=false&available=true&available=yes": LoopFilter(False, False, None, frozenset()),
    "shape=normalized&category=Salads": LoopFilter(
        False, None, "Salads", frozenset(), None, frozenset(), normalized=True
    ),
    "all=true&shape=normalized&exclude_allergens=milk&available=true": LoopFilter(
        True, True, None, frozenset(), None, frozenset({"milk"}), normalized=True
    ),
}
# Query strings left to Flask: valid ones it answers, invalid ones it refuses with 422.
DEFERRED = [
    "shape=flat&category=Salads",
    "category=&category=Salads",
    "category=Salads&colour=red&colour=blue",
    "category=Salads&at=2026-12-01T12:00:00Z&at=x",
    "exclude_allergens=",
    "exclude_allergens=milk,",
    "exclude_allergens=cheese",
    "at=2026-12-01T12:00:00Z",
    "external_id=",
    "external_id=%20%20",
    "external_id=a%0Ab",
    f"external_id={'x' * 256}",
    "category=",
    f"category={'x' * (CATEGORY_LENGTH + 1)}",
    "category=%01",
    "category=%FF",
    "tags=",
    "tags=vegan,",
    "tags=meaty",
    "available=yes",
    "all=TRUE",
    "colour=red",
]


@pytest.mark.parametrize(("query", "expected"), ANSWERED.items())
def test_parses_what_the_route_reads_the_same(query: str, expected: LoopFilter) -> None:
    assert parse_filter(query) == expected


@pytest.mark.parametrize("query", DEFERRED)
def test_leaves_anything_else_to_flask(query: str) -> None:
    assert parse_filter(query) is None


def select(
    index: MenuIndex, body: bytes, menu_filter: LoopFilter, contents: AllergenIndex | None = None
) -> bytes | None:
    """The body `index` answers `menu_filter` with; None if the loop cannot answer it."""
    selection = index.selection(menu_filter, contents)
    return None if selection is None else index.join(body, selection)


def test_indexes_only_the_compact_array_the_renderer_writes() -> None:
    items: list[dict[str, Any]] = [
        {"id": 1, "category": "Mains", "available": True, "tags": ["spicy"], "modifiers": []},
        {"id": 2, "category": None, "available": False, "tags": [], "modifiers": []},
    ]
    body = orjson.dumps(items)
    index = index_menu(body)
    assert index.items is not None
    assert [body[item.start : item.end] for item in index.items] == [
        orjson.dumps(item) for item in items
    ]
    assert select(index, body, LoopFilter(False, True, None, frozenset())) == orjson.dumps(
        items[:1]
    )
    assert select(index, body, LoopFilter(False, None, "None", frozenset())) == b"[]"
    assert index.size == INDEX_OVERHEAD + 2 * INDEXED_ITEM_BYTES
    assert select(index_menu(b"[]"), b"[]", LoopFilter(False, None, None, frozenset())) == b"[]"
    # Anything else is left to Flask: spaces, another value, an item without the fields.
    for other in (b"[ " + body[1:], b'{"id": 1}', b"[1]", b'[{"id":1}]', b"[", body + b" "):
        assert index_menu(other).items is None
    # The normalized shape: entries, then every item once, modifiers by id.
    flat = [{**item, "modifiers": [2] if item["id"] == 1 else []} for item in items]
    body = orjson.dumps({"entries": [1], "items": flat})
    index = index_menu(body)
    assert index.entries == (1,) and index.items is not None
    assert index.size > index_menu(orjson.dumps(items)).size  # modifier ids, by id
    assert [item.modifiers for item in index.items] == [(2,), ()]
    spicy = LoopFilter(False, None, None, frozenset({"spicy"}), normalized=True)
    assert select(index, body, spicy) == body  # the entry and the modifier it reaches
    assert select(index, body, LoopFilter(False, False, None, frozenset(), normalized=True)) == (
        b'{"entries":[],"items":[]}'
    )
    for other in (
        orjson.dumps({"items": flat, "entries": [1]}),
        orjson.dumps({"entries": [3], "items": flat}),
        orjson.dumps({"entries": [1], "items": flat[:1]}),  # names a modifier it lacks
        body + b"\n",
    ):
        assert index_menu(other).items is None


def normalized(items: dict[int, tuple[list[str], int, list[int]]]) -> bytes:
    """A normalized menu body of `items`: id -> (allergens, min_choices, modifier ids)."""
    return orjson.dumps(
        {
            "entries": list(items),
            "items": [
                {"id": i, "allergens": a, "min_choices": m, "modifiers": mods}
                for i, (a, m, mods) in items.items()
            ],
        }
    )


def test_what_each_item_contains_follows_required_groups_at_any_depth() -> None:
    contents = index_allergens(
        normalized(
            {
                1: (["gluten"], 0, [2, 5]),  # pasta: a required sauce group, optional cheese
                2: ([], 1, [3, 4]),  # the sauce group: pick one
                3: (["nuts", "milk"], 0, []),  # pesto
                4: (["milk"], 1, [6]),  # cream, which needs a required choice of its own
                5: (["milk"], 0, []),  # cheese, optional
                6: (["eggs"], 0, []),
                7: ([], 1, []),  # a required group with no choice left forces nothing
            }
        )
    ).contains
    assert contents is not None
    assert contents[4] == {"milk", "eggs"}
    # Milk is in every choice, nuts in one; cream is a required group itself
    # (`min_choices` > 0), so what it forces is forced too.
    assert contents[2] == {"milk", "eggs"}
    assert contents[1] == {"gluten", "milk", "eggs"}  # the group is required; cheese is not
    assert contents[3] == {"nuts", "milk"} and contents[5] == {"milk"}
    assert contents[7] == frozenset()
    # Deeper than the interpreter's stack, as plain SQL may chain items.
    chain = {
        n: (["fish"] if n == 5000 else [], 1, [n + 1] if n < 5000 else []) for n in range(1, 5001)
    }
    deep = index_allergens(normalized(chain)).contains
    assert deep is not None and deep[1] == {"fish"}


def test_a_body_too_large_to_index_on_the_loop_is_left_to_flask() -> None:
    item = {"id": 1, "category": "x" * 1000, "available": True, "tags": [], "modifiers": []}
    items = [{**item, "id": n} for n in range(1, 1100)]
    body = orjson.dumps(items)
    assert len(body) > MAX_INDEXED_BYTES
    assert index_menu(body).items is None
    assert index_menu(orjson.dumps(items[:900])).items is not None  # under the bound
    graph: dict[int, tuple[list[str], int, list[int]]] = {n: ([], 0, []) for n in range(1, 30000)}
    assert len(normalized(graph)) > MAX_INDEXED_BYTES
    assert index_allergens(normalized(graph)).contains is None


def test_a_cycle_or_a_missing_item_is_left_to_flask() -> None:
    assert index_allergens(normalized({1: ([], 1, [2]), 2: ([], 1, [1])})).contains is None
    assert index_allergens(normalized({1: ([], 1, [1])})).contains is None
    assert index_allergens(normalized({1: ([], 1, [9])})).contains is None
    assert index_allergens(b"[]").contains is None
    menu = orjson.dumps([{"id": 1, "category": None, "available": True, "tags": []}])
    no_contents = select(
        index_menu(menu),
        menu,
        LoopFilter(False, None, None, frozenset(), None, frozenset({"milk"})),
    )
    assert no_contents is None


@pytest.fixture
def generations() -> Iterator[MenuGenerations]:
    generations = MenuGenerations()
    yield generations
    generations.close()


def over_flask(
    client: FlaskClient, generations: MenuGenerations, cache: MenuCache | None = None
) -> tuple[MenuFastPath, FlaskAsWSGI]:
    """A fast path (with `cache`, or one of 1 MB) and the Flask app behind it."""
    cache = MenuCache(1_000_000) if cache is None else cache
    return MenuFastPath(cache, generations), FlaskAsWSGI(client)


def filtered_menu(client: FlaskClient, restaurant_id: int, key: dict[str, str]) -> None:
    """Items of every kind the filters tell apart."""
    create(client, restaurant_id, key, name="Caesar", category="Salads", tags=["vegetarian"])
    create(client, restaurant_id, key, name="Chili", category="Mains", tags=["vegan", "spicy"])
    create(client, restaurant_id, key, name="Tofu", category="Mains", tags=["vegan"])
    create(client, restaurant_id, key, name="Crêpe", category="Entrées", available=False)
    create(client, restaurant_id, key, name="Fries", category="Sides & more", tags=["vegan"])
    dressing = create(client, restaurant_id, key, name="Dressing", standalone=False)
    salad = create(client, restaurant_id, key, name="Salad", category="Salads")
    linked = client.put(
        f"/restaurant/{restaurant_id}/item/{salad}/modifiers", json=[dressing], headers=key
    )
    assert linked.status_code == 200, linked.get_json()
    create(client, restaurant_id, key, name="Plain", tags=["vegan", "spicy"], external_id="pos-1")
    create(client, restaurant_id, key, name="Soup", external_id=" PLU 7é")
    pasta = create(client, restaurant_id, key, name="Pasta", category="Mains", allergens=["gluten"])
    sauce = create(client, restaurant_id, key, name="Sauce", standalone=False, min_choices=1)
    pesto = create(client, restaurant_id, key, name="Pesto", allergens=["nuts", "milk"])
    cream = create(client, restaurant_id, key, name="Cream", allergens=["milk"], min_choices=1)
    egg = create(client, restaurant_id, key, name="Egg", standalone=False, allergens=["eggs"])
    for parent, modifiers in ((pasta, [sauce]), (sauce, [pesto, cream]), (cream, [egg])):
        linked = client.put(
            f"/restaurant/{restaurant_id}/item/{parent}/modifiers", json=modifiers, headers=key
        )
        assert linked.status_code == 200, linked.get_json()


def answered_as_route(
    fast_path: MenuFastPath, wsgi: FlaskAsWSGI, client: FlaskClient, target: str
) -> bytes:
    """`GET target` through the fast path, plain and gzip: the route's bytes both times
    (returned)."""
    route = client.get(target).get_data()
    assert call(fast_path, wsgi, target).body == route, target
    gzipped = call(fast_path, wsgi, target, **{"Accept-Encoding": "gzip"})
    assert isinstance(gzipped.body, bytes) and decompress(gzipped.body) == route, target
    return route


def test_answers_as_the_route_does_without_flask(
    client: FlaskClient, diner: int, key: dict[str, str], generations: MenuGenerations
) -> None:
    filtered_menu(client, diner, key)
    fast_path, wsgi = over_flask(client, generations)
    path = f"/restaurant/{diner}/item"

    def get(target: str) -> web.Response:
        return call(fast_path, wsgi, target)

    get(path), get(f"{path}?all=true")  # the full menus, cached
    assert wsgi.calls == 2
    # What items contain comes from the normalized menu of every item: the first filter
    # that needs it has the route render it (there is no published store here), once.
    get(f"{path}?exclude_allergens=milk")
    assert wsgi.paths[2:] == [f"{path}?shape=normalized&all=true"]
    get(f"{path}?shape=normalized&all=true"), get(f"{path}?shape=normalized")
    assert wsgi.calls == 4
    for query in [
        *ANSWERED,
        "category=Mains&tags=spicy",
        "category=Nowhere",
        "available=true",
        "external_id=pos-1",
        "external_id=pos-2",
        "exclude_allergens=nuts",
        "exclude_allergens=eggs&all=true",
        "exclude_allergens=milk,gluten",
        "shape=normalized&category=Mains",
        "shape=normalized&all=true&tags=vegan",
        "shape=normalized&exclude_allergens=nuts&category=Mains",
        "shape=normalized&category=Nowhere",
    ]:
        answer, route = get(f"{path}?{query}"), client.get(f"{path}?{query}")
        assert route.status_code == answer.status == 200, query
        assert answer.body == route.get_data(), query
        for name in ("ETag", "Cache-Control", "Content-Type", "Vary"):
            assert answer.headers[name] == route.headers[name], (query, name)
        # Gzip clients get the same bytes compressed, under the gzip tag.
        gzipped = call(fast_path, wsgi, f"{path}?{query}", **{"Accept-Encoding": "gzip"})
        assert gzipped.headers["Content-Encoding"] == "gzip"
        assert gzipped.headers["ETag"] == route.headers["ETag"][:-1] + '-gzip"'
    assert wsgi.calls == 4, "every filter was answered from the cached menus"
    spicy_mains = get(f"{path}?category=Mains&tags=spicy").body
    assert isinstance(spicy_mains, bytes)
    assert [item["name"] for item in orjson.loads(spicy_mains)] == ["Chili"]
    by_external_id = get(f"{path}?external_id=%20PLU%207%C3%A9").body
    assert isinstance(by_external_id, bytes)
    assert [item["name"] for item in orjson.loads(by_external_id)] == ["Soup"]
    without_milk = get(f"{path}?exclude_allergens=milk&category=Mains").body
    assert isinstance(without_milk, bytes)
    # Pasta's sauce is required and every sauce has milk.
    assert [item["name"] for item in orjson.loads(without_milk)] == ["Chili", "Tofu"]
    normalized = get(f"{path}?shape=normalized&category=Mains&exclude_allergens=nuts").body
    assert isinstance(normalized, bytes)
    # The entries kept and every item they reach, each once: Pasta brings its sauces.
    menu = orjson.loads(normalized)
    assert [item["name"] for item in menu["items"]][:2] == ["Chili", "Tofu"]
    assert {"Sauce", "Pesto", "Cream", "Egg"} <= {item["name"] for item in menu["items"]}
    assert len(menu["entries"]) == 3
    for query in DEFERRED:
        answer, route = get(f"{path}?{query}"), client.get(f"{path}?{query}")
        assert answer.status == route.status_code, query
    assert wsgi.calls == 4 + len(DEFERRED)


def test_a_filter_that_keeps_nothing_is_not_cached_under_its_query_string(
    client: FlaskClient, diner: int, key: dict[str, str], generations: MenuGenerations
) -> None:
    filtered_menu(client, diner, key)
    fast_path, wsgi = over_flask(client, generations)
    path = f"/restaurant/{diner}/item"
    call(fast_path, wsgi, path), call(fast_path, wsgi, f"{path}?shape=normalized")
    for n in range(20):
        assert answered_as_route(fast_path, wsgi, client, f"{path}?category=Nowhere-{n}") == b"[]"
        normalized = f"{path}?shape=normalized&category=Nowhere-{n}"
        assert answered_as_route(fast_path, wsgi, client, normalized) == (
            b'{"entries":[],"items":[]}'
        )
    # Every one answered from the cached full menus, and none of them kept.
    assert wsgi.calls == 2
    assert len(fast_path.cache) == 2 and fast_path.cache.filtered_bytes == 0
    assert fast_path.cache.hits == 80 and fast_path.cache.evictions == 0
    # A filter that keeps items is kept, as before.
    assert call(fast_path, wsgi, f"{path}?category=Mains").status == 200
    assert len(fast_path.cache) == 3 and fast_path.cache.filtered_bytes > 0


def test_filters_that_keep_the_same_items_share_one_answer(
    client: FlaskClient, diner: int, key: dict[str, str], generations: MenuGenerations
) -> None:
    filtered_menu(client, diner, key)
    for n in range(MAX_ANSWERS):
        create(client, diner, key, name=f"Dish {n}", category=f"Category {n}")
    cache = MenuCache(1_000_000)
    fast_path, wsgi = over_flask(client, generations, cache)
    path = f"/restaurant/{diner}/item"
    call(fast_path, wsgi, path), call(fast_path, wsgi, f"{path}?shape=normalized&all=true")
    full = cache.get((diner, ""), generations.get(diner), count=False)
    assert full is not None

    def answers() -> int:
        return len(full.answers or {})

    def check(query: str) -> None:
        answered_as_route(fast_path, wsgi, client, f"{path}?{query}")

    # Every order of a list, and a repeated parameter's ignored values: one answer.
    for query in [
        "exclude_allergens=nuts,fish",
        "exclude_allergens=fish,nuts",
        "exclude_allergens=nuts&exclude_allergens=milk",
        "exclude_allergens=nuts,fish,lupin",
    ]:
        check(query)
    assert answers() == 1
    # Every category no item has: one more.
    for n in range(10):
        check(f"category=Nowhere-{n}")
    assert answers() == 2
    # Kept with the full menu, and counted against the budget with it.
    assert full.answers_bytes > 0
    assert cache.bytes == sum(entry.size for entry in cache._entries.values())
    # Past `MAX_ANSWERS` distinct selections, answers are still right, made each time.
    queries = [f"category=Category+{n}" for n in range(MAX_ANSWERS)]
    for query in queries:
        check(query)
    assert answers() == MAX_ANSWERS
    assert cache.bytes == sum(entry.size for entry in cache._entries.values())
    assert wsgi.calls == 2


def test_a_filter_of_an_unknown_restaurant_goes_to_flask_once(
    client: FlaskClient, generations: MenuGenerations
) -> None:
    fast_path, wsgi = over_flask(client, generations)
    for query in ("category=Mains", "exclude_allergens=milk"):
        answer = call(fast_path, wsgi, f"/restaurant/999999/item?{query}")
        assert answer.status == 404
        assert wsgi.paths[-1] == f"/restaurant/999999/item?{query}"
    # No menu rendered on its behalf: one Flask call per request.
    assert wsgi.calls == 2


def test_a_change_ends_the_filtered_answers_with_the_menu(
    client: FlaskClient, diner: int, key: dict[str, str], generations: MenuGenerations
) -> None:
    filtered_menu(client, diner, key)
    fast_path, wsgi = over_flask(client, generations)
    path = f"/restaurant/{diner}/item"

    def names(target: str) -> list[str]:
        response = call(fast_path, wsgi, target)
        assert isinstance(response.body, bytes)
        return [item["name"] for item in orjson.loads(response.body)]

    assert names(path)[0] == "Caesar"
    assert names(f"{path}?category=Salads") == ["Caesar", "Salad"]
    assert names(f"{path}?category=Salads") == ["Caesar", "Salad"]
    assert wsgi.calls == 1
    create(client, diner, key, name="Greek", category="Salads")
    generations.bump(diner)  # as the commit's hook does
    assert names(f"{path}?category=Salads") == ["Caesar", "Salad", "Greek"]
    # Without the full menu of the new generation cached, Flask answered the filter.
    assert wsgi.calls == 2
    assert names(path)[-1] == "Greek" and names(f"{path}?category=Mains") == [
        "Chili",
        "Tofu",
        "Pasta",
    ]
    assert wsgi.calls == 3
    assert fast_path.cache.hits == 3 and fast_path.cache.misses == 3


def test_the_menus_a_filter_needs_are_read_from_the_published_store(
    client: FlaskClient, db_url: str, demo: None
) -> None:
    queries = [
        "category=Burgers",
        "exclude_allergens=gluten",
        "tags=vegan&exclude_allergens=milk",
        "shape=normalized&category=Burgers",
    ]
    for query in ("", "shape=normalized", "shape=normalized&all=true"):
        assert client.get(f"/restaurant/1/item?{query}").status_code == 200  # published
    routes = [client.get(f"/restaurant/1/item?{query}") for query in queries]
    sent_to_flask: list[str] = []

    async def flask(request: web.BaseRequest) -> web.StreamResponse:
        sent_to_flask.append(request.path_qs)
        return web.Response(status=500)

    requests: list[tuple[str, dict[str, str]]] = [
        (f"/restaurant/1/item?{query}", {}) for query in queries
    ]
    answers = published_answers(db_url, requests, flask)
    assert sent_to_flask == []
    for query, answer, route in zip(queries, answers, routes, strict=True):
        assert answer.status == route.status_code == 200, query
        assert answer.body == route.get_data(), query
        for name in ("ETag", "Cache-Control", "Content-Type", "Vary"):
            assert answer.headers[name] == route.headers[name], (query, name)
    assert len(orjson.loads(routes[1].get_data())) < len(
        orjson.loads(client.get("/restaurant/1/item").get_data())
    )
