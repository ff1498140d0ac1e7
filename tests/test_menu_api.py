"""GET /restaurant/<id>/item through the Flask test client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.errors import NotFoundError
from presto.services import restaurants
from presto.storage.engine import CHANGED_MENUS
from presto.storage.models import Restaurant
from tests.helpers.data import add_items, add_restaurant, layered_menu, link
from tests.helpers.problems import assert_problem


@contextmanager
def count_statements(engine: Engine) -> Iterator[list[str]]:
    """Collect the SQL statements run on `engine` inside the block."""
    statements: list[str] = []

    def before_cursor_execute(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in items]


@pytest.mark.usefixtures("demo")
def test_menu_of_the_demo_burger_bar(client: FlaskClient) -> None:
    response = client.get("/restaurant/1/item")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    items = response.get_json()
    assert names(items)[:3] == ["Classic Burger", "Cheeseburger", "Bacon BBQ Burger"]
    assert all(item["standalone"] for item in items)
    assert {item["currency"] for item in items} == {"USD"}
    classic = items[0]
    assert classic["price"] == 1299
    assert names(classic["modifiers"]) == [
        "Cook temperature",
        "Choose your side",
        "Extra toppings",
        "Ketchup",
        "Mustard",
    ]
    # Burger -> side choice -> side salad -> dressing -> blue cheese -> crumble -> extra.
    side_choice = classic["modifiers"][1]
    assert (side_choice["min_choices"], side_choice["max_choices"]) == (1, 1)
    salad = side_choice["modifiers"][3]
    dressing = salad["modifiers"][0]
    blue_cheese = dressing["modifiers"][2]
    crumble = blue_cheese["modifiers"][0]
    assert names([salad, dressing, blue_cheese, crumble]) == [
        "Side Salad",
        "Dressing",
        "Blue cheese",
        "Blue cheese crumble",
    ]
    assert names(crumble["modifiers"]) == ["Light crumble", "Extra crumble"]
    assert crumble["modifiers"][1]["price"] == 75
    cheesecake = next(item for item in items if item["name"] == "New York Cheesecake")
    assert cheesecake["available"] is False


@pytest.mark.usefixtures("demo")
def test_all_flag_adds_modifier_only_items(client: FlaskClient) -> None:
    standalone = client.get("/restaurant/1/item").get_json()
    everything = client.get("/restaurant/1/item?all=true").get_json()

    assert "Ketchup" not in names(standalone)
    assert "Ketchup" in names(everything)
    assert [i for i in everything if i["standalone"]] == standalone
    assert client.get("/restaurant/1/item?all=false").get_json() == standalone


@pytest.mark.usefixtures("demo")
def test_menus_of_other_restaurants_are_their_own(client: FlaskClient) -> None:
    sushi = client.get("/restaurant/3/item").get_json()
    assert names(sushi)[0] == "Salmon Nigiri"
    assert {item["currency"] for item in sushi} == {"JPY"}
    assert "Classic Burger" not in names(client.get("/restaurant/2/item?all=1").get_json())


def test_an_empty_menu_is_an_empty_array(client: FlaskClient, session: Session) -> None:
    restaurant_id = add_restaurant(session)
    session.commit()
    response = client.get(f"/restaurant/{restaurant_id}/item")
    assert response.status_code == 200
    assert response.get_json() == []


def test_menu_order_is_position_then_id(client: FlaskClient, session: Session) -> None:
    restaurant_id = add_restaurant(session)
    first, second, third = add_items(session, restaurant_id, ["B", "A", "C"])
    session.commit()
    session.execute(
        sa.text("UPDATE item SET position = 0 WHERE id IN (:a, :b, :c)"),
        {"a": first, "b": second, "c": third},
    )
    session.commit()
    assert names(client.get(f"/restaurant/{restaurant_id}/item").get_json()) == ["B", "A", "C"]


def test_unknown_restaurant_is_404(client: FlaskClient) -> None:
    body = assert_problem(client.get("/restaurant/999/item"), 404)
    assert body["detail"] == "Restaurant 999 does not exist."
    assert body["instance"] == "/restaurant/999/item"


# `/` is the landing document (tests/test_health.py).
@pytest.mark.parametrize(
    "path", ["/index.html", "/restaurants", "/restaurant/abc/item", "/nope.html"]
)
def test_unknown_route_is_404(client: FlaskClient, path: str) -> None:
    assert_problem(client.get(path), 404)


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_wrong_method_is_405_with_allow(client: FlaskClient, method: str) -> None:
    response = client.open("/restaurant/1/item", method=method)
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


@pytest.mark.usefixtures("demo")
@pytest.mark.parametrize(
    ("query", "field"),
    [("all=maybe", "all"), ("colour=red", "colour")],
)
def test_bad_query_is_422_naming_the_field(client: FlaskClient, query: str, field: str) -> None:
    body = assert_problem(client.get(f"/restaurant/1/item?{query}"), 422)
    assert list(body["errors"]) == [field]


@pytest.mark.usefixtures("demo")
def test_unexpected_error_is_a_500_problem_without_traceback(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("database exploded: secret details")

    monkeypatch.setattr("presto.services.menus.load_menu", broken)
    response = client.get("/restaurant/1/item")
    body = assert_problem(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert body["detail"] == "The server failed to answer this request."


def test_statement_count_is_constant(client: FlaskClient, session: Session, engine: Engine) -> None:
    small = add_restaurant(session, "Small")
    burger, fries, ketchup = add_items(session, small, ["Burger", "Fries", "Ketchup"])
    link(session, small, burger, [fries, ketchup])
    session.commit()
    # 1,000 items in five layers: modifiers nested 4 deep, each shared by three parents.
    large = layered_menu(session, levels=5, per_level=200, fan_out=3)

    with count_statements(engine) as small_statements:
        small_menu = client.get(f"/restaurant/{small}/item?all=true").get_json()
    with count_statements(engine) as large_statements:
        large_menu = client.get(f"/restaurant/{large}/item?all=true").get_json()

    assert len(small_menu) == 3
    assert len(large_menu) == 1000
    node = large_menu[0]
    for _ in range(4):
        assert len(node["modifiers"]) == 3
        node = node["modifiers"][0]
    assert node["modifiers"] == []
    # Not yet published: the published read, the restaurant, its items, its links, the store.
    assert len(small_statements) == len(large_statements) == 5

    with count_statements(engine) as small_statements:
        again = client.get(f"/restaurant/{small}/item?all=true").get_json()
    with count_statements(engine) as large_statements:
        large_again = client.get(f"/restaurant/{large}/item?all=true").get_json()

    # Published: one indexed read of ready bytes, whatever the menu's size.
    assert (again, large_again) == (small_menu, large_menu)
    assert len(small_statements) == len(large_statements) == 1


def test_a_cycle_in_the_data_does_not_hang_the_call(client: FlaskClient, session: Session) -> None:
    restaurant_id = add_restaurant(session)
    a, b = add_items(session, restaurant_id, ["A", "B"])
    # Inserted by hand, around any write-side check: A -> B -> A.
    link(session, restaurant_id, a, [b])
    link(session, restaurant_id, b, [a])
    session.commit()

    items = client.get(f"/restaurant/{restaurant_id}/item").get_json()

    assert names(items) == ["A", "B"]
    assert names(items[0]["modifiers"]) == ["B"]
    assert items[0]["modifiers"][0]["modifiers"] == []
    assert names(items[1]["modifiers"]) == ["A"]
    assert items[1]["modifiers"][0]["modifiers"] == []


def test_bump_menu_version(session: Session) -> None:
    restaurant_id = add_restaurant(session)
    session.commit()

    assert restaurants.bump_menu_version(session, restaurant_id) == 2
    assert restaurants.bump_menu_version(session, restaurant_id) == 3
    assert session.info[CHANGED_MENUS] == {restaurant_id}
    session.commit()
    assert session.scalar(sa.select(Restaurant.menu_version)) == 3
    with pytest.raises(NotFoundError):
        restaurants.bump_menu_version(session, 999)


@pytest.mark.usefixtures("demo")
def test_normalized_shape_lists_each_item_once(client: FlaskClient) -> None:
    nested = client.get("/restaurant/1/item").get_json()
    response = client.get("/restaurant/1/item?shape=normalized")

    assert response.status_code == 200
    normalized = response.get_json()
    assert list(normalized) == ["entries", "items"]
    assert normalized["entries"] == [item["id"] for item in nested]
    items = {item["id"]: item for item in normalized["items"]}
    assert len(items) == len(normalized["items"])

    def expand(item_id: int) -> dict[str, Any]:
        item = dict(items[item_id])
        terms = {link["id"]: link for link in item.pop("modifier_terms")}
        item["modifiers"] = [
            in_context(expand(modifier_id), terms.get(modifier_id))
            for modifier_id in item["modifiers"]
        ]
        return item

    def in_context(item: dict[str, Any], terms: dict[str, Any] | None) -> dict[str, Any]:
        if terms is None:
            return item
        return {**item, "price": terms["price"], "is_default": terms["is_default"]}

    # Expanding the references (with each link's price and default) gives back the nested
    # shape exactly.
    assert [expand(item_id) for item_id in normalized["entries"]] == nested
    ketchup = [item for item in normalized["items"] if item["name"] == "Ketchup"]
    assert len(ketchup) == 1
    # Every item reachable from the entries is there, nothing else (no unlinked items).
    everything = client.get("/restaurant/1/item?all=true&shape=normalized").get_json()
    assert len(everything["items"]) >= len(normalized["items"])
    assert response.headers["ETag"] == client.get("/restaurant/1/item").headers["ETag"]


@pytest.mark.usefixtures("demo")
def test_unknown_shape_is_422(client: FlaskClient) -> None:
    body = assert_problem(client.get("/restaurant/1/item?shape=flat"), 422)
    assert list(body["errors"]) == ["shape"]


def test_a_write_committed_between_the_menu_reads_is_not_mixed_in(
    client: FlaskClient, session: Session, engine: Engine
) -> None:
    """A write that commits after the items were read and before the links are gets
    the menu read again: never links to an item the body lacks (a 500 once), never a
    body labelled with a version it does not show."""
    restaurant_id = add_restaurant(session)
    (burger,) = add_items(session, restaurant_id, ["Burger"], standalone=True)
    session.commit()
    interleaved: list[int] = []
    writing: list[bool] = []

    def write_once(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("SELECT") or "item_modifier" not in statement or writing:
            return
        writing.append(True)
        with Session(engine) as writer, writer.begin():
            (cheese,) = add_items(writer, restaurant_id, ["Cheese"], standalone=False)
            link(writer, restaurant_id, burger, [cheese])
            interleaved.append(restaurants.bump_menu_version(writer, restaurant_id))

    event.listen(engine, "before_cursor_execute", write_once)
    try:
        response = client.get(f"/restaurant/{restaurant_id}/item?at=2026-12-01T12:00:00Z")
    finally:
        event.remove(engine, "before_cursor_execute", write_once)

    assert interleaved == [2]
    assert response.status_code == 200, response.get_json()
    assert response.headers["ETag"].startswith(f'"m{interleaved[0]}')
    [item] = response.get_json()
    assert [modifier["name"] for modifier in item["modifiers"]] == ["Cheese"]
