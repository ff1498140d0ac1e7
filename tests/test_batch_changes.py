"""Batch changes: `PATCH /restaurant/<id>/items`, all or nothing, one version, one publish."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.services.limits import MAX_BATCH_CHANGES
from presto.storage.models import Item, Restaurant
from tests.helpers.data import snapshot
from tests.helpers.problems import assert_problem


def add_catalog(session: Session, restaurant_id: int, count: int) -> list[int]:
    """`count` items priced 100, each with external id `SKU-<n>`; their ids."""
    items = [
        Item(restaurant_id=restaurant_id, name=f"Item {n}", price=100, position=n,
             external_id=f"SKU-{n}")
        for n in range(count)
    ]  # fmt: skip
    session.add_all(items)
    session.commit()
    return [item.id for item in items]


def menu_version(session: Session, restaurant_id: int) -> int:
    session.expire_all()
    restaurant = session.get(Restaurant, restaurant_id)
    assert restaurant is not None
    return restaurant.menu_version


def prices(engine: Engine, restaurant_id: int) -> list[int]:
    with engine.connect() as connection:
        return list(
            connection.scalars(
                sa.select(Item.price).where(Item.restaurant_id == restaurant_id).order_by(Item.id)
            )
        )


def batch(client: FlaskClient, restaurant_id: int, changes: list[Any], key: dict[str, str]) -> Any:
    return client.patch(f"/restaurant/{restaurant_id}/items", json={"items": changes}, headers=key)


class Counter:
    """Counts commits and writes of published menus on an engine while it is attached."""

    def __init__(self, engine: Engine) -> None:
        self.commits = 0
        self.publishes = 0
        sa.event.listen(engine, "commit", self._commit)
        sa.event.listen(engine, "before_cursor_execute", self._statement)

    def _commit(self, *_args: Any) -> None:
        self.commits += 1

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO PUBLISHED_MENU"):
            self.publishes += 1


def test_300_price_changes_are_one_transaction_one_version_and_one_publish(
    client: FlaskClient, session: Session, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    ids = add_catalog(session, diner, 300)
    client.get(f"/restaurant/{diner}/item")  # published once, as after any write
    version = menu_version(session, diner)
    # Half by id, half by external id.
    changes = [
        {"id": item_id, "price": 200 + n}
        if n % 2
        else {"external_id": f"SKU-{n}", "price": 200 + n}
        for n, item_id in enumerate(ids)
    ]
    counter = Counter(engine)

    response = batch(client, diner, changes, key)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["updated"], body["unchanged"], body["menu_version"]) == (300, 0, version + 1)
    assert [entry["id"] for entry in body["items"]] == ids
    assert body["items"][0] == {"id": ids[0], "external_id": "SKU-0", "version": 2, "changed": True}
    assert response.headers["ETag"] == f'"m{version + 1}"'
    assert (counter.commits, counter.publishes) == (1, 1)
    assert menu_version(session, diner) == version + 1
    assert prices(engine, diner) == [200 + n for n in range(300)]
    menu = client.get(f"/restaurant/{diner}/item").get_json()
    assert [item["price"] for item in menu] == [200 + n for n in range(300)]


def test_one_bad_entry_leaves_the_database_unchanged(
    client: FlaskClient, session: Session, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    ids = add_catalog(session, diner, 300)
    before = snapshot(engine)
    changes: list[dict[str, Any]] = [{"id": item_id, "price": 999} for item_id in ids]
    changes[299] = {"external_id": "SKU-missing", "price": 999}

    refused = batch(client, diner, changes, key)

    body = assert_problem(refused, 422)
    message = f"Restaurant {diner} has no item with external_id 'SKU-missing'."
    assert body["detail"] == f"Entry 299: {message}"
    assert body["index"] == 299
    assert body["errors"] == {"items": {"299": {"external_id": [message]}}}
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"price": -1}, "price"),
        ({"price": "300"}, "price"),
        ({"colour": "red"}, "colour"),
        ({"min_choices": 3, "max_choices": 1}, "max_choices"),
        ({"sold_out_until": "soon"}, "sold_out_until"),
    ],
)
def test_an_invalid_entry_is_422_by_its_index(
    client: FlaskClient,
    session: Session,
    engine: Engine,
    diner: int,
    key: dict[str, str],
    bad: dict[str, Any],
    field: str,
) -> None:
    ids = add_catalog(session, diner, 10)
    before = snapshot(engine)
    changes: list[dict[str, Any]] = [{"id": item_id, "price": 5} for item_id in ids]
    changes[7] = {"id": ids[7], **bad}

    body = assert_problem(batch(client, diner, changes, key), 422)

    assert list(body["errors"]["items"]) == ["7"]
    assert field in body["errors"]["items"]["7"]
    assert snapshot(engine) == before


def test_entries_that_name_no_item_or_one_twice_are_422(
    client: FlaskClient, session: Session, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    ids = add_catalog(session, diner, 3)
    before = snapshot(engine)

    unnamed = assert_problem(batch(client, diner, [{"id": ids[0]}, {"price": 5}], key), 422)
    assert unnamed["errors"] == {
        "items": {"1": {"id": ["Name the item by `id` or `external_id`."]}}
    }
    twice = batch(client, diner, [{"id": ids[0], "price": 1}, {"external_id": "SKU-0"}], key)
    assert assert_problem(twice, 422)["detail"] == (
        f"Entry 1: Item {ids[0]} is changed by an earlier entry."
    )
    unknown = batch(client, diner, [{"id": ids[0], "price": 1}, {"id": 999_999, "price": 1}], key)
    assert assert_problem(unknown, 422)["detail"] == (
        f"Entry 1: Restaurant {diner} has no item 999999."
    )
    # The body is an object with `items`, holding at least one change.
    assert_problem(client.patch(f"/restaurant/{diner}/items", json=[], headers=key), 422)
    assert_problem(batch(client, diner, [], key), 422)
    assert snapshot(engine) == before


def test_more_than_the_limit_is_422(
    client: FlaskClient, session: Session, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    ids = add_catalog(session, diner, 1)
    before = snapshot(engine)
    changes = [{"id": ids[0], "price": 1}] * (MAX_BATCH_CHANGES + 1)
    body = assert_problem(batch(client, diner, changes, key), 422)
    assert "items" in body["errors"]
    assert snapshot(engine) == before


def test_an_external_id_another_item_has_is_409_naming_the_entry(
    client: FlaskClient, session: Session, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    ids = add_catalog(session, diner, 3)
    before = snapshot(engine)

    conflict = batch(
        client, diner, [{"id": ids[0], "price": 1}, {"id": ids[1], "external_id": "SKU-2"}], key
    )

    body = assert_problem(conflict, 409)
    assert (body["index"], body["item_id"]) == (1, ids[2])
    assert snapshot(engine) == before
    # Moving an external id freed by an earlier entry of the same batch is fine.
    moved = batch(
        client,
        diner,
        [{"id": ids[2], "external_id": "SKU-new"}, {"id": ids[1], "external_id": "SKU-2"}],
        key,
    )
    assert moved.status_code == 200, moved.get_json()
    found = client.get(f"/restaurant/{diner}/item/external/SKU-2").get_json()
    assert found["id"] == ids[1]


def test_a_batch_that_changes_nothing_keeps_the_version(
    client: FlaskClient, session: Session, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    ids = add_catalog(session, diner, 5)
    version = menu_version(session, diner)
    before = snapshot(engine)

    same = batch(client, diner, [{"id": item_id, "price": 100} for item_id in ids], key)

    assert (same.get_json()["updated"], same.get_json()["unchanged"]) == (0, 5)
    assert same.get_json()["menu_version"] == version
    assert snapshot(engine) == before


def test_if_match_takes_the_menu_tag(
    client: FlaskClient, session: Session, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    ids = add_catalog(session, diner, 2)
    tag = client.get(f"/restaurant/{diner}/menu").headers["ETag"]
    before = snapshot(engine)
    stale = client.patch(
        f"/restaurant/{diner}/items",
        json={"items": [{"id": ids[0], "price": 7}]},
        headers={**key, "If-Match": '"m999"'},
    )
    assert_problem(stale, 412)
    assert snapshot(engine) == before
    current = client.patch(
        f"/restaurant/{diner}/items",
        json={"items": [{"id": ids[0], "price": 7}]},
        headers={**key, "If-Match": tag},
    )
    assert current.status_code == 200
    assert client.get(f"/restaurant/{diner}/menu").headers["ETag"] == current.headers["ETag"]


def test_a_batch_sets_any_item_field(
    client: FlaskClient, session: Session, diner: int, key: dict[str, str]
) -> None:
    ids = add_catalog(session, diner, 2)
    response = batch(
        client,
        diner,
        [
            {"external_id": "SKU-0", "sold_out_until": "2999-01-01T00:00:00Z", "name": "Salmon"},
            {"id": ids[1], "available": False, "tags": ["vegan"]},
        ],
        key,
    )
    assert response.status_code == 200
    menu = {item["id"]: item for item in client.get(f"/restaurant/{diner}/item").get_json()}
    assert (menu[ids[0]]["name"], menu[ids[0]]["sold_out"]) == ("Salmon", True)
    assert (menu[ids[1]]["available"], menu[ids[1]]["tags"]) == (False, ["vegan"])


def test_a_batch_needs_the_restaurants_key(
    client: FlaskClient, session: Session, diner: int
) -> None:
    ids = add_catalog(session, diner, 1)
    assert_problem(
        client.patch(f"/restaurant/{diner}/items", json={"items": [{"id": ids[0], "price": 1}]}),
        401,
    )
    assert_problem(
        client.patch("/restaurant/999/items", json={"items": [{"id": 1, "price": 1}]}), 401
    )
