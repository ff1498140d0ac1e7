"""External ids: an integrator's own key of an item (unique per restaurant) and of a
restaurant (unique overall), written, shown and looked up through the API."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.helpers.data import add_key, add_restaurant, bearer, snapshot
from tests.helpers.items import create
from tests.helpers.problems import assert_problem


@pytest.fixture
def admin(session: Session) -> dict[str, str]:
    return bearer(add_key(session))


def test_an_item_is_written_shown_and_found_by_its_external_id(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    response = client.post(
        f"/restaurant/{diner}/item",
        json={"name": "Burger", "price": 1299, "external_id": "PLU-1001"},
        headers=key,
    )
    assert response.status_code == 201
    burger = response.get_json()
    assert burger["external_id"] == "PLU-1001"
    create(client, diner, key, name="Fries", external_id="PLU-1002")

    found = client.get(f"/restaurant/{diner}/item/external/PLU-1001")
    assert found.status_code == 200
    assert found.get_json() == burger
    assert found.headers["ETag"] == response.headers["ETag"]
    listed = client.get(f"/restaurant/{diner}/item?external_id=PLU-1002").get_json()
    assert [(item["name"], item["external_id"]) for item in listed] == [("Fries", "PLU-1002")]
    menu = client.get(f"/restaurant/{diner}/item").get_json()
    assert [item["external_id"] for item in menu] == ["PLU-1001", "PLU-1002"]
    normalized = client.get(f"/restaurant/{diner}/item?shape=normalized").get_json()
    assert [item["external_id"] for item in normalized["items"]] == ["PLU-1001", "PLU-1002"]


def test_a_patch_sets_and_clears_the_external_id(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    item_id = create(client, diner, key, name="Burger")
    url = f"/restaurant/{diner}/item/{item_id}"

    assert client.patch(url, json={"external_id": "A 1/x"}, headers=key).status_code == 200
    assert client.get(url).get_json()["external_id"] == "A 1/x"
    assert client.get(f"/restaurant/{diner}/item?external_id=A 1/x").get_json()[0]["id"] == item_id
    assert client.patch(url, json={"external_id": None}, headers=key).status_code == 200
    assert client.get(url).get_json()["external_id"] is None
    assert client.get(f"/restaurant/{diner}/item?external_id=A 1/x").get_json() == []


def test_a_duplicate_external_id_is_a_409_naming_the_other_item(
    client: FlaskClient, diner: int, key: dict[str, str], engine: Engine
) -> None:
    first = create(client, diner, key, name="Burger", external_id="PLU-1")
    second = create(client, diner, key, name="Fries", external_id="PLU-2")
    before = snapshot(engine)

    created = client.post(
        f"/restaurant/{diner}/item", json={"name": "Copy", "external_id": "PLU-1"}, headers=key
    )
    body = assert_problem(created, 409)
    assert body["item_id"] == first
    assert "PLU-1" in body["detail"] and f"Item {first}" in body["detail"]
    patched = client.patch(
        f"/restaurant/{diner}/item/{second}", json={"external_id": "PLU-1"}, headers=key
    )
    assert assert_problem(patched, 409)["item_id"] == first
    assert snapshot(engine) == before
    # An item keeps its own external id; another restaurant may use the same one.
    same = client.patch(
        f"/restaurant/{diner}/item/{first}", json={"external_id": "PLU-1"}, headers=key
    )
    assert same.status_code == 200


def test_another_restaurant_may_use_the_same_external_id(
    client: FlaskClient, session: Session, diner: int, key: dict[str, str]
) -> None:
    other = add_restaurant(session, "Other")
    other_key = bearer(add_key(session, other))
    session.commit()
    mine = create(client, diner, key, name="Burger", external_id="PLU-1")
    theirs = create(client, other, other_key, name="Burger", external_id="PLU-1")

    assert client.get(f"/restaurant/{diner}/item/external/PLU-1").get_json()["id"] == mine
    assert client.get(f"/restaurant/{other}/item/external/PLU-1").get_json()["id"] == theirs


def test_an_unknown_external_id_is_404(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    create(client, diner, key, name="Burger", external_id="PLU-1")

    missing = assert_problem(client.get(f"/restaurant/{diner}/item/external/PLU-9"), 404)
    assert missing["detail"] == f"Restaurant {diner} has no item with external_id 'PLU-9'."
    no_restaurant = assert_problem(client.get("/restaurant/999/item/external/PLU-1"), 404)
    assert no_restaurant["detail"] == "Restaurant 999 does not exist."
    assert client.get(f"/restaurant/{diner}/item?external_id=PLU-9").get_json() == []


@pytest.mark.parametrize(
    "external_id",
    ["", "   ", "tab\there", "bell\x07", "x" * 256, 17, ["PLU-1"]],
)
def test_a_bad_external_id_is_422_and_changes_nothing(
    client: FlaskClient, diner: int, key: dict[str, str], engine: Engine, external_id: Any
) -> None:
    item_id = create(client, diner, key, name="Burger")
    before = snapshot(engine)

    created = client.post(
        f"/restaurant/{diner}/item", json={"name": "X", "external_id": external_id}, headers=key
    )
    assert "external_id" in assert_problem(created, 422)["errors"]
    patched = client.patch(
        f"/restaurant/{diner}/item/{item_id}", json={"external_id": external_id}, headers=key
    )
    assert "external_id" in assert_problem(patched, 422)["errors"]
    assert snapshot(engine) == before


def test_the_longest_external_id_is_kept(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    longest = "é" * 255
    item_id = create(client, diner, key, name="Burger", external_id=longest)
    assert client.get(f"/restaurant/{diner}/item/{item_id}").get_json()["external_id"] == longest


def test_a_restaurant_has_an_external_id_unique_overall(
    client: FlaskClient, admin: dict[str, str], engine: Engine
) -> None:
    created = client.post(
        "/restaurant", json={"name": "Diner", "external_id": "loc-1"}, headers=admin
    )
    assert created.status_code == 201
    first = created.get_json()
    assert first["external_id"] == "loc-1"
    assert client.get(f"/restaurant/{first['id']}").get_json()["external_id"] == "loc-1"
    second = client.post("/restaurant", json={"name": "Cafe"}, headers=admin).get_json()
    before = snapshot(engine)

    duplicate = client.post(
        "/restaurant", json={"name": "Copy", "external_id": "loc-1"}, headers=admin
    )
    assert assert_problem(duplicate, 409)["restaurant_id"] == first["id"]
    patched = client.patch(
        f"/restaurant/{second['id']}", json={"external_id": "loc-1"}, headers=admin
    )
    body = assert_problem(patched, 409)
    assert body["restaurant_id"] == first["id"]
    assert body["detail"] == f"Restaurant {first['id']} already has external_id 'loc-1'."
    assert snapshot(engine) == before

    renamed = client.patch(
        f"/restaurant/{second['id']}", json={"external_id": "loc-2"}, headers=admin
    )
    assert renamed.get_json()["external_id"] == "loc-2"
    listed = client.get("/restaurant").get_json()
    assert [restaurant["external_id"] for restaurant in listed] == ["loc-1", "loc-2"]


def test_the_menu_document_carries_external_ids(
    client: FlaskClient, diner: int, key: dict[str, str], engine: Engine
) -> None:
    create(client, diner, key, name="Burger", external_id="PLU-1")
    create(client, diner, key, name="Fries")
    document = client.get(f"/restaurant/{diner}/menu").get_json()
    assert [item["external_id"] for item in document["items"]] == ["PLU-1", None]

    imported = client.put(f"/restaurant/{diner}/menu", json=document, headers=key)
    assert imported.status_code == 200
    assert [item["external_id"] for item in imported.get_json()["items"]] == ["PLU-1", None]
    before = snapshot(engine)

    duplicated = {
        "items": [
            {"id": 1, "name": "A", "external_id": "PLU-1"},
            {"id": 2, "name": "B", "external_id": "PLU-1"},
        ]
    }
    refused = client.put(f"/restaurant/{diner}/menu", json=duplicated, headers=key)
    errors = assert_problem(refused, 422)["errors"]
    assert errors == {
        "items": {"1": {"external_id": ["External id 'PLU-1' appears more than once."]}}
    }
    assert snapshot(engine) == before
