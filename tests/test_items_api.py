"""Items through the API: create, read with the tree, change, link, delete."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.services import limits
from presto.services.limits import MAX_MODIFIER_DEPTH
from tests.helpers.data import add_items, add_key, add_restaurant, bearer, link, snapshot
from tests.helpers.items import create
from tests.helpers.problems import assert_problem


def put_modifiers(
    client: FlaskClient, restaurant_id: int, item_id: int, ids: list[int], key: dict[str, str]
) -> Any:
    return client.put(
        f"/restaurant/{restaurant_id}/item/{item_id}/modifiers", json=ids, headers=key
    )


def test_create_item(client: FlaskClient, diner: int, key: dict[str, str]) -> None:
    response = client.post(
        f"/restaurant/{diner}/item",
        json={"name": "Burger", "price": 1299, "category": "Burgers"},
        headers=key,
    )

    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/restaurant/{diner}/item/{body['id']}"
    assert response.headers["ETag"].startswith('"i1-')
    assert body == {
        "id": body["id"],
        "name": "Burger",
        "description": "",
        "category": "Burgers",
        "price": 1299,
        "currency": "USD",
        "is_default": False,
        "available": True,
        "standalone": True,
        "min_choices": 0,
        "max_choices": None,
        "schedule": [],
        "image_url": None,
        "tags": [],
        "allergens": [],
        "calories": None,
        "external_id": None,
        "sold_out": False,
        "sold_out_until": None,
        "modifiers": [],
        "position": 0,
    }
    fetched = client.get(response.headers["Location"])
    assert fetched.get_json() == body
    assert fetched.headers["ETag"] == response.headers["ETag"]


def test_new_items_go_last_in_menu_order(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    first = create(client, diner, key, name="First", position=5)
    second = create(client, diner, key, name="Second")
    third = create(client, diner, key, name="Third", position=0)

    menu = client.get(f"/restaurant/{diner}/item").get_json()
    assert [item["id"] for item in menu] == [third, first, second]
    assert client.get(f"/restaurant/{diner}/item/{second}").get_json()["position"] == 6


def test_two_levels_of_modifiers_show_in_the_menu_call(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    burger = create(client, diner, key, name="Burger", price=1299)
    sauce = create(client, diner, key, name="Sauce", standalone=False, max_choices=1)
    ketchup = create(client, diner, key, name="Ketchup", standalone=False)

    assert put_modifiers(client, diner, sauce, [ketchup], key).status_code == 200
    response = put_modifiers(client, diner, burger, [sauce], key)

    assert response.status_code == 200
    assert response.get_json()["modifiers"][0]["modifiers"][0]["name"] == "Ketchup"
    menu = client.get(f"/restaurant/{diner}/item").get_json()
    assert [item["name"] for item in menu] == ["Burger"]
    (sauce_json,) = menu[0]["modifiers"]
    assert (sauce_json["name"], sauce_json["max_choices"]) == ("Sauce", 1)
    assert [modifier["name"] for modifier in sauce_json["modifiers"]] == ["Ketchup"]


def test_put_modifiers_sets_the_order_and_replaces(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    burger = create(client, diner, key, name="Burger")
    a, b, c = (create(client, diner, key, name=name) for name in "ABC")

    put_modifiers(client, diner, burger, [c, a, b], key)
    assert names(client.get(f"/restaurant/{diner}/item/{burger}")) == ["C", "A", "B"]
    put_modifiers(client, diner, burger, [b], key)
    assert names(client.get(f"/restaurant/{diner}/item/{burger}")) == ["B"]
    put_modifiers(client, diner, burger, [], key)
    assert names(client.get(f"/restaurant/{diner}/item/{burger}")) == []


def names(response: Any) -> list[str]:
    return [modifier["name"] for modifier in response.get_json()["modifiers"]]


def test_a_link_that_closes_a_cycle_is_409_naming_it(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    a, b, c = (create(client, diner, key, name=name) for name in "ABC")
    put_modifiers(client, diner, a, [b], key)
    put_modifiers(client, diner, b, [c], key)
    before = snapshot(engine)

    body = assert_problem(put_modifiers(client, diner, c, [a], key), 409)

    assert body["cycle"] == [c, a, b, c]
    assert f"{c} -> {a} -> {b} -> {c}" in body["detail"]
    assert snapshot(engine) == before


def test_an_item_cannot_be_its_own_modifier(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    a = create(client, diner, key, name="A")
    before = snapshot(engine)
    body = assert_problem(put_modifiers(client, diner, a, [a], key), 409)
    assert body["cycle"] == [a, a]
    assert snapshot(engine) == before


def test_nesting_deeper_than_the_cap_is_409(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    chain = [create(client, diner, key, name=f"Level {n}") for n in range(MAX_MODIFIER_DEPTH + 2)]
    for parent, child in itertools.pairwise(chain[1:]):
        assert put_modifiers(client, diner, parent, [child], key).status_code == 200
    before = snapshot(engine)

    body = assert_problem(put_modifiers(client, diner, chain[0], [chain[1]], key), 409)

    assert body["path"] == chain
    assert snapshot(engine) == before


def test_a_modifier_of_another_restaurant_is_refused(
    client: FlaskClient, session: Session, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    other = add_restaurant(session, "Other")
    (foreign,) = add_items(session, other, ["Foreign"])
    session.commit()
    burger = create(client, diner, key, name="Burger")
    before = snapshot(engine)

    body = assert_problem(put_modifiers(client, diner, burger, [foreign, 99999], key), 422)

    assert body["errors"] == {
        "modifiers": {
            "0": [f"Item {foreign} is not an item of restaurant {diner}."],
            "1": [f"Item 99999 is not an item of restaurant {diner}."],
        }
    }
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"modifiers": [1]}, "The body must be a JSON array of item ids."),
        ([1, 1], "1 appears more than once."),
        (["one"], None),
    ],
)
def test_modifier_list_must_be_an_array_of_distinct_ids(
    client: FlaskClient, diner: int, key: dict[str, str], body: Any, message: str | None
) -> None:
    burger = create(client, diner, key, name="Burger")
    problem = assert_problem(put_modifiers(client, diner, burger, body, key), 422)
    assert list(problem["errors"]) == ["modifiers"]
    if message:
        assert message in str(problem["errors"]["modifiers"])


def test_too_many_modifiers_is_422(
    client: FlaskClient, session: Session, diner: int, key: dict[str, str]
) -> None:
    ids = add_items(session, diner, [f"M{n}" for n in range(limits.MAX_MODIFIERS_PER_ITEM + 2)])
    session.commit()
    body = assert_problem(put_modifiers(client, diner, ids[0], ids[1:], key), 422)
    assert list(body["errors"]) == ["modifiers"]
    # Exactly the limit is fine.
    response = put_modifiers(client, diner, ids[0], ids[1:-1], key)
    assert response.status_code == 200
    assert len(response.get_json()["modifiers"]) == limits.MAX_MODIFIERS_PER_ITEM


def test_items_per_restaurant_are_limited(
    client: FlaskClient,
    session: Session,
    engine: Engine,
    diner: int,
    key: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("presto.services.items.MAX_ITEMS_PER_RESTAURANT", 3)
    for name in "ABC":
        create(client, diner, key, name=name)
    before = snapshot(engine)
    body = assert_problem(
        client.post(f"/restaurant/{diner}/item", json={"name": "D"}, headers=key), 409
    )
    assert "3 items" in body["detail"]
    assert snapshot(engine) == before


def test_patch_changes_only_the_given_fields(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    burger = create(client, diner, key, name="Burger", price=1299, category="Burgers")
    response = client.patch(
        f"/restaurant/{diner}/item/{burger}",
        json={"price": 1399, "available": False, "category": None},
        headers=key,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["name"], body["price"], body["available"], body["category"]) == (
        "Burger",
        1399,
        False,
        None,
    )
    assert response.headers["ETag"].startswith('"i2-')


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": None}, "name"),
        ({"price": -1}, "price"),
        ({"price": 100_000_001}, "price"),
        ({"price": 12.5}, "price"),
        ({"price": "12"}, "price"),
        ({"description": "x" * 2001}, "description"),
        ({"min_choices": 3, "max_choices": 2}, "max_choices"),
        ({"min_choices": -1}, "min_choices"),
        ({"id": 5}, "id"),
        ({"modifiers": []}, "modifiers"),
        ({"currency": "EUR"}, "currency"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    client: FlaskClient,
    engine: Engine,
    diner: int,
    key: dict[str, str],
    fields: dict[str, Any],
    field: str,
) -> None:
    burger = create(client, diner, key, name="Burger")
    before = snapshot(engine)
    created = client.post(f"/restaurant/{diner}/item", json={"name": "Ok", **fields}, headers=key)
    patched = client.patch(f"/restaurant/{diner}/item/{burger}", json=fields, headers=key)
    assert list(assert_problem(created, 422)["errors"]) == [field]
    assert list(assert_problem(patched, 422)["errors"]) == [field]
    assert snapshot(engine) == before


def test_patch_keeps_min_choices_within_the_stored_max(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    group = create(client, diner, key, name="Sauce", min_choices=1, max_choices=2)
    before = snapshot(engine)
    body = assert_problem(
        client.patch(f"/restaurant/{diner}/item/{group}", json={"min_choices": 3}, headers=key),
        422,
    )
    assert list(body["errors"]) == ["min_choices"]
    assert snapshot(engine) == before


def test_name_is_required_on_create(client: FlaskClient, diner: int, key: dict[str, str]) -> None:
    body = assert_problem(client.post(f"/restaurant/{diner}/item", json={}, headers=key), 422)
    assert body["errors"] == {"name": ["Missing data for required field."]}


def test_delete_takes_the_item_out_of_every_parent(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    burger = create(client, diner, key, name="Burger")
    fries = create(client, diner, key, name="Fries")
    ketchup = create(client, diner, key, name="Ketchup", standalone=False)
    mayo = create(client, diner, key, name="Mayo", standalone=False)
    put_modifiers(client, diner, burger, [ketchup, mayo], key)
    put_modifiers(client, diner, fries, [mayo, ketchup], key)
    burger_tag = client.get(f"/restaurant/{diner}/item/{burger}").headers["ETag"]

    response = client.delete(f"/restaurant/{diner}/item/{ketchup}", headers=key)

    assert response.status_code == 204
    assert response.get_data() == b""
    assert_problem(client.get(f"/restaurant/{diner}/item/{ketchup}"), 404)
    menu = client.get(f"/restaurant/{diner}/item").get_json()
    assert [[m["name"] for m in item["modifiers"]] for item in menu] == [["Mayo"], ["Mayo"]]
    assert client.get(f"/restaurant/{diner}/item/{burger}").headers["ETag"] != burger_tag


def test_unknown_items_and_restaurants_are_404(
    client: FlaskClient, session: Session, diner: int, key: dict[str, str]
) -> None:
    other = add_restaurant(session, "Other")
    (foreign,) = add_items(session, other, ["Foreign"])
    session.commit()
    admin = bearer(add_key(session))

    assert_problem(client.get(f"/restaurant/{diner}/item/{foreign}"), 404)
    assert_problem(client.get(f"/restaurant/999/item/{foreign}"), 404)
    assert_problem(client.patch(f"/restaurant/{diner}/item/{foreign}", json={}, headers=key), 404)
    assert_problem(client.delete(f"/restaurant/{diner}/item/{foreign}", headers=key), 404)
    assert_problem(put_modifiers(client, diner, foreign, [], key), 404)
    assert_problem(client.post("/restaurant/999/item", json={"name": "A"}, headers=admin), 404)


def test_etag_changes_when_anything_in_the_tree_changes(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    burger = create(client, diner, key, name="Burger")
    sauce = create(client, diner, key, name="Sauce")
    ketchup = create(client, diner, key, name="Ketchup")
    put_modifiers(client, diner, sauce, [ketchup], key)
    put_modifiers(client, diner, burger, [sauce], key)
    url = f"/restaurant/{diner}/item/{burger}"
    tag = client.get(url).headers["ETag"]

    not_modified = client.get(url, headers={"If-None-Match": tag})
    assert not_modified.status_code == 304
    assert not_modified.headers["ETag"] == tag
    assert not_modified.get_data() == b""

    client.patch(f"/restaurant/{diner}/item/{ketchup}", json={"price": 10}, headers=key)
    changed = client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != tag
    assert changed.get_json()["modifiers"][0]["modifiers"][0]["price"] == 10


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "PUT"])
def test_if_match_with_an_old_tag_is_412(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str], method: str
) -> None:
    burger = create(client, diner, key, name="Burger")
    url = f"/restaurant/{diner}/item/{burger}"
    old_tag = client.get(url).headers["ETag"]
    client.patch(url, json={"price": 1}, headers=key)
    current_tag = client.get(url).headers["ETag"]
    before = snapshot(engine)
    target, body = (url + "/modifiers", []) if method == "PUT" else (url, {"price": 2})

    stale = client.open(target, method=method, json=body, headers={**key, "If-Match": old_tag})
    problem = assert_problem(stale, 412)
    assert problem["etag"] == current_tag
    assert snapshot(engine) == before

    fresh = client.open(target, method=method, json=body, headers={**key, "If-Match": current_tag})
    assert fresh.status_code in {200, 204}
    assert client.open(target, method=method, json=body, headers={**key, "If-Match": "*"})


def test_writes_bump_the_menu_version(
    client: FlaskClient, session: Session, diner: int, key: dict[str, str]
) -> None:
    from presto.storage.models import Restaurant

    def menu_version() -> int:
        session.expire_all()
        restaurant = session.get(Restaurant, diner)
        assert restaurant is not None
        return restaurant.menu_version

    versions = [menu_version()]
    burger = create(client, diner, key, name="Burger")
    versions.append(menu_version())
    ketchup = create(client, diner, key, name="Ketchup")
    put_modifiers(client, diner, burger, [ketchup], key)
    versions.append(menu_version())
    client.patch(f"/restaurant/{diner}/item/{ketchup}", json={"price": 5}, headers=key)
    versions.append(menu_version())
    client.delete(f"/restaurant/{diner}/item/{ketchup}", headers=key)
    versions.append(menu_version())
    assert versions == sorted(set(versions))
    # A write that changes nothing leaves it alone.
    client.patch(f"/restaurant/{diner}/item/{burger}", json={"name": "Burger"}, headers=key)
    assert menu_version() == versions[-1]


def test_menu_call_filters(client: FlaskClient, session: Session, diner: int) -> None:
    soup, salad, pie = add_items(session, diner, ["Soup", "Salad", "Pie"])
    session.commit()
    admin = bearer(add_key(session))
    client.patch(f"/restaurant/{diner}/item/{soup}", json={"category": "Starters"}, headers=admin)
    client.patch(
        f"/restaurant/{diner}/item/{salad}",
        json={"category": "Starters", "available": False},
        headers=admin,
    )
    link(session, diner, pie, [soup])
    session.commit()

    def menu_names(query: str) -> list[str]:
        response = client.get(f"/restaurant/{diner}/item{query}")
        assert response.status_code == 200
        return [item["name"] for item in response.get_json()]

    assert menu_names("") == ["Soup", "Salad", "Pie"]
    assert menu_names("?available=true") == ["Soup", "Pie"]
    assert menu_names("?available=false") == ["Salad"]
    assert menu_names("?category=Starters") == ["Soup", "Salad"]
    assert menu_names("?category=Starters&available=true") == ["Soup"]
    assert menu_names("?category=Mains") == []
    body = assert_problem(client.get(f"/restaurant/{diner}/item?category="), 422)
    assert list(body["errors"]) == ["category"]
