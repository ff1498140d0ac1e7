"""A sync import: `PUT /restaurant/<id>/menu?match=external_id` keeps ids, counts what it
did, and changes nothing when the document matches the stored menu."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.helpers.data import add_key, bearer, snapshot
from tests.helpers.problems import assert_problem

SYNC = "/restaurant/{}/menu?match=external_id"


class Publishes:
    """Counts statements that store a published menu while attached."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._statement)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO PUBLISHED_MENU"):
            self.count += 1


def counts(response: Any) -> tuple[int, int, int, int]:
    body = response.get_json()
    return body["created"], body["updated"], body["deleted"], body["unchanged"]


@pytest.fixture
def burger_bar(demo: None, session: Session, client: FlaskClient) -> dict[str, str]:
    """The demo's restaurant 1, every item re-keyed by a POS id `POS-<id>` with a batch;
    its key."""
    key = bearer(add_key(session, 1))
    items = client.get("/restaurant/1/menu").get_json()["items"]
    changes = [{"id": item["id"], "external_id": f"POS-{item['id']}"} for item in items]
    response = client.patch("/restaurant/1/items", json={"items": changes}, headers=key)
    assert response.status_code == 200, response.get_json()
    return key


def test_the_demo_synced_twice_changes_nothing(
    client: FlaskClient, engine: Engine, burger_bar: dict[str, str]
) -> None:
    exported = client.get("/restaurant/1/menu")
    document = exported.get_json()
    before = snapshot(engine)
    publishes = Publishes(engine)

    for _ in range(2):
        synced = client.put(SYNC.format(1), json=document, headers=burger_bar)
        assert synced.status_code == 200, synced.get_json()
        assert counts(synced) == (0, 0, 0, 57)
        assert synced.headers["ETag"] == exported.headers["ETag"]
        assert synced.get_json()["items"] == document["items"]

    assert snapshot(engine) == before
    assert publishes.count == 0


def test_three_prices_and_one_removal_are_three_updated_and_one_deleted(
    client: FlaskClient, engine: Engine, session: Session, burger_bar: dict[str, str]
) -> None:
    exported = client.get("/restaurant/1/menu")
    document = exported.get_json()
    version = int(exported.headers["ETag"].strip('"m'))
    referenced = {
        link if isinstance(link, int) else link["id"]
        for item in document["items"]
        for link in item["modifiers"]
    }
    removed = next(item for item in document["items"] if item["id"] not in referenced)
    changed = [item for item in document["items"] if item["price"] > 0 and item != removed][:3]
    for item in changed:
        item["price"] += 100
    document["items"].remove(removed)

    synced = client.put(SYNC.format(1), json=document, headers=burger_bar)

    assert counts(synced) == (0, 3, 1, 53)
    assert synced.headers["ETag"] == f'"m{version + 1}"'
    stored = {item["id"]: item for item in synced.get_json()["items"]}
    assert set(stored) == {item["id"] for item in document["items"]}
    assert [stored[item["id"]]["price"] for item in changed] == [item["price"] for item in changed]
    assert_problem(client.get(f"/restaurant/1/item/{removed['id']}"), 404)
    again = client.put(SYNC.format(1), json=document, headers=burger_bar)
    assert counts(again) == (0, 0, 0, 56)
    assert again.headers["ETag"] == f'"m{version + 1}"'


def test_a_first_sync_creates_and_replaces_and_the_second_keeps_the_ids(
    client: FlaskClient, demo: None, session: Session
) -> None:
    key = bearer(add_key(session, 1))
    document = client.get("/restaurant/1/menu").get_json()
    for item in document["items"]:
        item["external_id"] = f"SKU-{item['id']}"

    first = client.put(SYNC.format(1), json=document, headers=key)
    second = client.put(SYNC.format(1), json=document, headers=key)

    assert counts(first) == (57, 0, 57, 0)
    assert counts(second) == (0, 0, 0, 57)
    assert [item["id"] for item in second.get_json()["items"]] == [
        item["id"] for item in first.get_json()["items"]
    ]
    original = {item["id"] for item in document["items"]}
    assert original.isdisjoint(item["id"] for item in first.get_json()["items"])


def test_prune_false_keeps_items_the_document_leaves_out(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    for name, external_id in [("Burger", "A"), ("Fries", "B"), ("Soup", None)]:
        client.post(
            f"/restaurant/{diner}/item",
            json={"name": name, "external_id": external_id},
            headers=key,
        )
    document = {"items": [{"id": 1, "name": "Burger", "external_id": "A", "price": 5}]}

    kept = client.put(f"{SYNC.format(diner)}&prune=false", json=document, headers=key)

    assert counts(kept) == (0, 1, 0, 0)
    assert [item["name"] for item in kept.get_json()["items"]] == ["Burger", "Fries", "Soup"]
    pruned = client.put(SYNC.format(diner), json=document, headers=key)
    assert counts(pruned) == (0, 0, 2, 1)
    assert [item["name"] for item in pruned.get_json()["items"]] == ["Burger"]


def test_a_field_left_out_keeps_its_stored_value(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    client.post(
        f"/restaurant/{diner}/item",
        json={"name": "Salmon", "external_id": "S", "description": "Wild", "price": 900,
              "sold_out_until": "2999-01-01T00:00:00Z"},
        headers=key,
    )  # fmt: skip
    document = {"items": [{"id": 1, "name": "Salmon", "external_id": "S", "price": 950}]}

    synced = client.put(SYNC.format(diner), json=document, headers=key)

    item = synced.get_json()["items"][0]
    assert (item["description"], item["price"], item["sold_out_until"]) == (
        "Wild",
        950,
        "2999-01-01T00:00:00+00:00",
    )


def test_a_new_item_and_new_links_take_their_places(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    document: dict[str, Any] = {
        "items": [
            {"id": 1, "name": "Burger", "external_id": "A", "modifiers": [2]},
            {"id": 2, "name": "Bacon", "external_id": "B", "standalone": False},
            {"id": 3, "name": "Soup", "external_id": "C"},
        ]
    }
    first = client.put(SYNC.format(diner), json=document, headers=key).get_json()
    ids = [item["id"] for item in first["items"]]
    changed = copy.deepcopy(document)
    changed["items"].insert(1, {"id": 4, "name": "Cheese", "external_id": "D", "price": 50,
                                "standalone": False})  # fmt: skip
    changed["items"][0]["modifiers"] = [{"id": 4, "price": 40}, 2]

    synced = client.put(SYNC.format(diner), json=changed, headers=key)

    assert counts(synced) == (1, 1, 0, 2)
    items = synced.get_json()["items"]
    assert [item["name"] for item in items] == ["Burger", "Cheese", "Bacon", "Soup"]
    assert [items[0]["id"], items[2]["id"], items[3]["id"]] == ids
    cheese = items[1]["id"]
    assert items[0]["modifiers"] == [{"id": cheese, "price": 40, "is_default": False}, ids[1]]
    burger = client.get(f"/restaurant/{diner}/item/{ids[0]}").get_json()
    assert [modifier["price"] for modifier in burger["modifiers"]] == [40, 0]


@pytest.mark.parametrize(
    ("query", "document", "field"),
    [
        ("?match=external_id", {"items": [{"id": 1, "name": "No key"}]}, "items"),
        ("?match=name", {"items": []}, "match"),
        ("?prune=false", {"items": []}, "prune"),
        ("?match=external_id&prune=maybe", {"items": []}, "prune"),
    ],
)
def test_a_bad_sync_is_422_and_changes_nothing(
    client: FlaskClient,
    diner: int,
    key: dict[str, str],
    engine: Engine,
    query: str,
    document: dict[str, Any],
    field: str,
) -> None:
    client.post(f"/restaurant/{diner}/item", json={"name": "Soup"}, headers=key)
    before = snapshot(engine)
    refused = client.put(f"/restaurant/{diner}/menu{query}", json=document, headers=key)
    assert field in assert_problem(refused, 422)["errors"]
    assert snapshot(engine) == before


def test_a_cycle_through_a_kept_item_is_409_and_changes_nothing(
    client: FlaskClient, diner: int, key: dict[str, str], engine: Engine
) -> None:
    document: dict[str, Any] = {
        "items": [
            {"id": 1, "name": "A", "external_id": "A", "modifiers": [2]},
            {"id": 2, "name": "B", "external_id": "B"},
        ]
    }
    ids = [item["id"] for item in client.put(SYNC.format(diner), json=document,
                                             headers=key).get_json()["items"]]  # fmt: skip
    before = snapshot(engine)
    # B's stored modifiers are kept (left out); giving B A closes B -> A -> B.
    closing = {"items": [{"id": 1, "name": "A", "external_id": "A"},
                         {"id": 2, "name": "B", "external_id": "B", "modifiers": [1]}]}  # fmt: skip
    assert_problem(client.put(SYNC.format(diner), json=closing, headers=key), 409)
    assert snapshot(engine) == before
    assert ids


def test_kept_items_count_against_the_limit(
    client: FlaskClient,
    diner: int,
    key: dict[str, str],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("presto.services.menu_sync.MAX_ITEMS_PER_RESTAURANT", 3)
    for name in ("A", "B"):
        client.post(
            f"/restaurant/{diner}/item", json={"name": name, "external_id": name}, headers=key
        )
    before = snapshot(engine)
    document = {"items": [{"id": n, "name": name, "external_id": name}
                          for n, name in enumerate(["C", "D"])]}  # fmt: skip

    kept = client.put(f"{SYNC.format(diner)}&prune=false", json=document, headers=key)

    assert "2 kept ones would be more than 3" in assert_problem(kept, 409)["detail"]
    assert snapshot(engine) == before
    assert counts(client.put(SYNC.format(diner), json=document, headers=key)) == (2, 0, 2, 0)
