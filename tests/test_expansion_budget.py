"""The expansion budget: no write lets a nested menu hold more than `MAX_MENU_OBJECTS` item
objects, and the renderer refuses past it whatever the database holds, on SQLite and
PostgreSQL.

The graph of issue 16: 9 layers of 10 items, each linking all 10 items of the next layer,
passes every other rule and would nest 10^8 copies of the bottom layer under each entry.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.cli import main
from presto.errors import MenuTooLargeError
from presto.menus.publishing import publish_menus
from presto.services.graph import check_expansion, nested_sizes
from presto.services.limits import MAX_MENU_OBJECTS, MAX_MODIFIER_DEPTH
from presto.storage.engine import make_engine, make_sessionmaker
from tests.helpers.data import (
    add_items,
    add_key,
    add_restaurant,
    bearer,
    layered_menu,
    link,
    snapshot,
)
from tests.helpers.http import request
from tests.helpers.problems import assert_problem
from tests.helpers.server_process import running_presto

# Objects of the 9 x 10 graph: an item of layer k nests (10^(9-k) - 1) / 9 (a repunit).
TOP_OF_NINE_LAYERS = 111_111_111
ALL_OF_NINE_LAYERS = 10 * sum((10**k - 1) // 9 for k in range(1, 10))


def layers_graph(levels: int, width: int) -> dict[int, list[int]]:
    """Item ids `level * width + n`, each linking every item of the next layer."""
    return {
        level * width + n: [(level + 1) * width + m for m in range(width)]
        if level < levels - 1
        else []
        for level in range(levels)
        for n in range(width)
    }


def layers_document(levels: int, width: int) -> list[dict[str, Any]]:
    """The same graph as a menu document; only the first layer is standalone."""
    return [
        {"id": node, "name": f"Item {node}", "standalone": node < width, "modifiers": children}
        for node, children in layers_graph(levels, width).items()
    ]


def nested_objects(items: list[dict[str, Any]]) -> int:
    """Item objects in a nested response, counted in its JSON."""
    return sum(1 + nested_objects(item["modifiers"]) for item in items)


def test_sizes_count_every_copy_of_a_shared_subtree() -> None:
    sizes = nested_sizes(layers_graph(9, 10))
    assert sizes[0] == TOP_OF_NINE_LAYERS
    assert sizes[80] == 1
    assert sum(sizes.values()) == ALL_OF_NINE_LAYERS == 1_234_567_890
    sizes = nested_sizes(layers_graph(3, 100))
    assert (sizes[0], sizes[100], sizes[200]) == (10_101, 101, 1)


def test_a_cycle_counts_as_the_depth_cap_cuts_it() -> None:
    # a -> b -> a ... : the renderer stops at the cap, so the count does too.
    sizes = nested_sizes({"a": ["b"], "b": ["a"]})
    assert sizes == {"a": MAX_MODIFIER_DEPTH + 1, "b": MAX_MODIFIER_DEPTH + 1}


def test_the_bound_itself_is_allowed() -> None:
    graph: dict[int, list[int]] = {n: [] for n in range(MAX_MENU_OBJECTS)}
    check_expansion(graph)
    body = check_refused(lambda: check_expansion(graph, new_items=1))
    assert body["menu_objects"] == MAX_MENU_OBJECTS + 1


def check_refused(write: Callable[[], None]) -> dict[str, Any]:
    """The problem fields of the `MenuTooLargeError` that `write` raises."""
    try:
        write()
    except MenuTooLargeError as error:
        assert error.status == 422
        return error.extra
    raise AssertionError("not refused")


@pytest.mark.slow
def test_the_layered_graph_cannot_be_built_link_by_link(
    client: FlaskClient, session: Session, engine: Engine
) -> None:
    restaurant_id = add_restaurant(session)
    layers = [
        add_items(session, restaurant_id, [f"L{level} {n}" for n in range(10)])
        for level in range(9)
    ]
    session.commit()
    key = bearer(add_key(session, restaurant_id))
    refusals = []
    # Bottom up, as a client building it would.
    for upper, lower in reversed(list(itertools.pairwise(layers))):
        for parent in upper:
            before = snapshot(engine)
            response = client.put(
                f"/restaurant/{restaurant_id}/item/{parent}/modifiers", json=lower, headers=key
            )
            if response.status_code == 422:
                refusals.append((parent, assert_problem(response, 422)))
                assert snapshot(engine) == before
            else:
                assert response.status_code == 200, response.get_json()
    # Layers 8 to 5 link fully (12,390 objects with the 50 unlinked items above); each
    # item of layer 4 adds 11,110: the fourth would make 56,830.
    first_parent, first = refusals[0]
    assert first_parent == layers[4][3]
    assert first["item"] == layers[4][3]
    assert (first["item_objects"], first["menu_objects"]) == (11_111, 56_830)
    assert first["max_menu_objects"] == MAX_MENU_OBJECTS == 50_000
    assert "56,830 item objects" in first["detail"]
    assert len(refusals) > 1
    menu = client.get(f"/restaurant/{restaurant_id}/item?all=true").get_json()
    assert len(menu) == 90
    assert nested_objects(menu) <= MAX_MENU_OBJECTS


def test_a_menu_document_that_explodes_is_refused(
    client: FlaskClient, session: Session, engine: Engine
) -> None:
    restaurant_id = add_restaurant(session)
    session.commit()
    key = bearer(add_key(session, restaurant_id))
    url = f"/restaurant/{restaurant_id}/menu"
    kept = client.put(url, json={"items": [{"id": 1, "name": "Kept"}]}, headers=key)
    assert kept.status_code == 200
    before = snapshot(engine)

    nine = assert_problem(client.put(url, json={"items": layers_document(9, 10)}, headers=key), 422)
    assert (nine["item"], nine["item_objects"]) == (0, TOP_OF_NINE_LAYERS)
    assert nine["menu_objects"] == ALL_OF_NINE_LAYERS
    hundreds = layers_document(3, 100)
    wide = assert_problem(client.put(url, json={"items": hundreds}, headers=key), 422)
    assert (wide["item"], wide["item_objects"]) == (0, 10_101)
    assert wide["menu_objects"] == 100 * 10_101 + 100 * 101 + 100 == 1_020_300
    assert snapshot(engine) == before

    # Two layers of the same width fit: 100 x 101 + 100.
    fits = client.put(url, json={"items": layers_document(2, 100)}, headers=key)
    assert fits.status_code == 200
    assert nested_objects(client.get(f"{url[:-5]}/item?all=true").get_json()) == 10_200


def menu_at_the_bound(session: Session) -> tuple[int, list[int]]:
    """A restaurant whose nested menu holds exactly `MAX_MENU_OBJECTS` objects: 100
    options, 4 groups of all of them (101 each), 122 dishes of all groups (405 each) and
    86 lone items. Returns its id and the lone items."""
    restaurant_id = add_restaurant(session)
    options = add_items(session, restaurant_id, [f"Option {n}" for n in range(100)])
    groups = add_items(session, restaurant_id, [f"Group {n}" for n in range(4)])
    dishes = add_items(session, restaurant_id, [f"Dish {n}" for n in range(122)])
    lone = add_items(session, restaurant_id, [f"Lone {n}" for n in range(86)])
    for group in groups:
        link(session, restaurant_id, group, options)
    for dish in dishes:
        link(session, restaurant_id, dish, groups)
    session.commit()
    assert MAX_MENU_OBJECTS == 100 + 4 * 101 + 122 * 405 + 86
    return restaurant_id, lone


def test_a_menu_at_the_bound_takes_no_new_item(
    client: FlaskClient, session: Session, engine: Engine
) -> None:
    restaurant_id, lone = menu_at_the_bound(session)
    key = bearer(add_key(session, restaurant_id))
    url = f"/restaurant/{restaurant_id}/item"
    assert nested_objects(client.get(f"{url}?all=true").get_json()) == MAX_MENU_OBJECTS
    before = snapshot(engine)

    body = assert_problem(client.post(url, json={"name": "One more"}, headers=key), 422)
    assert (body["item_objects"], body["menu_objects"]) == (405, MAX_MENU_OBJECTS + 1)
    assert snapshot(engine) == before

    assert client.delete(f"{url}/{lone[0]}", headers=key).status_code == 204
    assert client.post(url, json={"name": "One more"}, headers=key).status_code == 201


def test_a_graph_from_plain_sql_is_refused_by_the_renderer(
    client: FlaskClient,
    session: Session,
    engine: Engine,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = add_restaurant(session, "Other")
    (soup,) = add_items(session, other, ["Soup"])
    session.commit()
    restaurant_id = layered_menu(session, levels=9, per_level=10, fan_out=10)
    top, bottom = min_max_items(client, restaurant_id)
    url = f"/restaurant/{restaurant_id}/item"

    for call in (url, f"{url}?all=true", f"{url}?available=true", f"{url}/{top}"):
        body = assert_problem(client.get(call), 500)
        assert body["max_menu_objects"] == MAX_MENU_OBJECTS
        assert "shape=normalized" in body["detail"]
    menu = assert_problem(client.get(url), 500)
    assert (menu["item"], menu["item_objects"]) == (top, TOP_OF_NINE_LAYERS)
    assert menu["menu_objects"] == 10 * TOP_OF_NINE_LAYERS
    # Each item once: the normalized shape still serves, and so does a small subtree.
    normalized = client.get(f"{url}?shape=normalized&all=true")
    assert normalized.status_code == 200 and len(normalized.get_json()["items"]) == 90
    assert client.get(f"{url}/{bottom}").get_json()["modifiers"] == []
    assert client.get(f"/restaurant/{other}/item").get_json()[0]["id"] == soup
    # Publishing every menu skips it and publishes the others.
    assert publish_menus(make_sessionmaker(engine), [restaurant_id, other]) == 1
    assert main(["menus", "publish", "--database-url", db_url]) == 0
    assert capsys.readouterr().out == "published 1 menu\n"


def min_max_items(client: FlaskClient, restaurant_id: int) -> tuple[int, int]:
    """The first and last item ids of a restaurant, from its normalized menu."""
    items = client.get(f"/restaurant/{restaurant_id}/item?shape=normalized&all=true").get_json()
    ids = [item["id"] for item in items["items"]]
    return min(ids), max(ids)


def test_writes_can_shrink_a_menu_past_the_bound(
    client: FlaskClient, session: Session, engine: Engine
) -> None:
    restaurant_id = layered_menu(session, levels=9, per_level=10, fan_out=10)
    key = bearer(add_key(session, restaurant_id))
    top, _ = min_max_items(client, restaurant_id)
    url = f"/restaurant/{restaurant_id}/item"
    before = snapshot(engine)
    # Still past the bound after the write: refused, nothing changed.
    body = assert_problem(client.put(f"{url}/{top}/modifiers", json=[], headers=key), 422)
    assert body["menu_objects"] == ALL_OF_NINE_LAYERS - TOP_OF_NINE_LAYERS + 1
    assert snapshot(engine) == before
    # An item nesting past it cannot be answered, so its change is not made either.
    patched = assert_problem(client.patch(f"{url}/{top}", json={"price": 1}, headers=key), 500)
    assert patched["item_objects"] == TOP_OF_NINE_LAYERS
    assert snapshot(engine) == before
    assert client.patch(f"{url}/{top + 89}", json={"price": 1}, headers=key).status_code == 200
    # Deleting shrinks it (the menu, too large to publish, is left unpublished): without
    # layers 0 to 4, layers 5 to 8 remain.
    for item in range(top, top + 50):
        assert client.delete(f"{url}/{item}", headers=key).status_code == 204
    menu = client.get(f"{url}?all=true")
    assert menu.status_code == 200
    assert nested_objects(menu.get_json()) == 10 * (1_111 + 111 + 11 + 1)


@pytest.mark.e2e
@pytest.mark.slow
def test_a_server_holding_such_a_graph_serves_everyone_else(db_url: str, tmp_path: Path) -> None:
    with running_presto(db_url, tmp_path) as presto:
        address, server = presto.address, presto.server
        engine = make_engine(db_url, pool_size=1)
        with make_sessionmaker(engine)() as session:
            restaurant_id = layered_menu(session, levels=9, per_level=10, fan_out=10)
            key = bearer(add_key(session, restaurant_id))
        engine.dispose()
        assert_served_except(address, restaurant_id)
        # A write hands the menu to the publisher process, which leaves it unpublished.
        items = request(address, "GET", f"/restaurant/{restaurant_id}/item?shape=normalized")
        bottom = max(item["id"] for item in items.json()["items"])
        patch = request(
            address, "PATCH", f"/restaurant/{restaurant_id}/item/{bottom}", {"price": 5}, key
        )
        assert patch.status == 200
        server.wait_for_line(f"restaurant {restaurant_id}: not rendered")
        assert_served_except(address, restaurant_id)
        assert server.process.poll() is None
        assert "Traceback" not in server.output
    # Started again, it publishes every other menu and serves.
    with running_presto(db_url, tmp_path, reset_db=False) as again:
        assert_served_except(again.address, restaurant_id)
        assert "Traceback" not in again.server.output


def assert_served_except(address: tuple[str, int], restaurant_id: int) -> None:
    """The demo menus answer 200; the restaurant past the bound a small problem, fast."""
    for demo_id in (1, 2, 3):
        assert request(address, "GET", f"/restaurant/{demo_id}/item").status == 200
    for _ in range(2):
        started = time.monotonic()
        answer = request(address, "GET", f"/restaurant/{restaurant_id}/item")
        assert time.monotonic() - started < 5
        assert answer.status == 500
        assert answer.headers["content-type"] == "application/problem+json"
        assert len(answer.body) < 2000
        assert answer.json()["item_objects"] == TOP_OF_NINE_LAYERS
