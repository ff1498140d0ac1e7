"""Export and import of a whole menu: GET|PUT /restaurant/<id>/menu."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.services.limits import MAX_ITEMS_PER_RESTAURANT, MAX_MODIFIER_DEPTH
from presto.storage.models import Restaurant
from tests.helpers.clock import FakeClock
from tests.helpers.data import add_key, add_restaurant, bearer, snapshot
from tests.helpers.problems import assert_problem


def without_ids(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The document's items with ids replaced by positions in the document."""
    index = {item["id"]: n for n, item in enumerate(document["items"])}
    return [
        {
            **{k: v for k, v in item.items() if k != "id"},
            "modifiers": [
                index[m] if isinstance(m, int) else {**m, "id": index[m["id"]]}
                for m in item["modifiers"]
            ],
        }
        for item in document["items"]
    ]


@pytest.mark.usefixtures("demo")
def test_export_import_export_gives_the_same_document(
    client: FlaskClient, session: Session
) -> None:
    exported = client.get("/restaurant/1/menu")
    assert exported.status_code == 200
    assert exported.headers["ETag"] == '"m1"'
    document = exported.get_json()
    assert len(document["items"]) == 57
    # The copy keeps the original's time zone, so both show the same `available` at any hour.
    empty = add_restaurant(session, "Copy", timezone=demo_timezone(session))
    session.commit()
    key = bearer(add_key(session, empty))

    imported = client.put(f"/restaurant/{empty}/menu", json=document, headers=key)

    assert imported.status_code == 200, imported.get_json()
    assert imported.headers["ETag"] == '"m2"'
    again = client.get(f"/restaurant/{empty}/menu").get_json()
    assert imported.get_json() == {
        **again,
        "created": 57,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
    }
    assert without_ids(again) == without_ids(document)
    assert {item["id"] for item in again["items"]}.isdisjoint(
        item["id"] for item in document["items"]
    )
    original_menu = client.get("/restaurant/1/item").get_json()
    copied_menu = client.get(f"/restaurant/{empty}/item").get_json()
    assert strip_ids(copied_menu) == strip_ids(original_menu)


def demo_timezone(session: Session) -> str:
    """The time zone of the first demo restaurant."""
    return session.scalars(sa.select(Restaurant.timezone).where(Restaurant.id == 1)).one()


@pytest.mark.usefixtures("demo")
def test_a_copied_menu_matches_the_original_at_every_hour_of_a_day(
    client: FlaskClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export-import comparison holds whatever the hour: schedules in the copy's time
    zone open and close with the original's."""
    clock = FakeClock(datetime(2026, 11, 20, tzinfo=UTC), monkeypatch)
    document = client.get("/restaurant/1/menu").get_json()
    copy = add_restaurant(session, "Copy", timezone=demo_timezone(session))
    session.commit()
    imported = client.put(
        f"/restaurant/{copy}/menu", json=document, headers=bearer(add_key(session, copy))
    )
    assert imported.status_code == 200, imported.get_json()

    shown: set[bool] = set()
    for hour in range(24):
        clock.set(datetime(2026, 11, 20, hour, 30, tzinfo=UTC))
        original = client.get("/restaurant/1/item").get_json()
        copied = client.get(f"/restaurant/{copy}/item").get_json()
        assert strip_ids(copied) == strip_ids(original), f"{hour:02}:30 UTC"
        shown.update(item["available"] for item in original)
    # The day really crossed a schedule boundary: some hours show an item closed.
    assert shown == {True, False}


def strip_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**{k: v for k, v in item.items() if k != "id"}, "modifiers": strip_ids(item["modifiers"])}
        for item in items
    ]


def test_import_replaces_the_menu(client: FlaskClient, session: Session) -> None:
    restaurant_id = add_restaurant(session)
    session.commit()
    key = bearer(add_key(session, restaurant_id))
    first = {
        "items": [
            {"id": 1, "name": "Burger", "price": 1299, "modifiers": [2]},
            {"id": 2, "name": "Ketchup", "standalone": False},
        ]
    }
    second = {"items": [{"id": 7, "name": "Soup", "category": "Starters"}]}

    client.put(f"/restaurant/{restaurant_id}/menu", json=first, headers=key)
    menu = client.get(f"/restaurant/{restaurant_id}/item").get_json()
    assert [(i["name"], [m["name"] for m in i["modifiers"]]) for i in menu] == [
        ("Burger", ["Ketchup"])
    ]
    client.put(f"/restaurant/{restaurant_id}/menu", json=second, headers=key)
    menu = client.get(f"/restaurant/{restaurant_id}/item?all=true").get_json()
    assert [(i["name"], i["category"]) for i in menu] == [("Soup", "Starters")]


@pytest.mark.parametrize(
    ("items", "status", "check"),
    [
        (
            [{"id": 1, "name": "A", "modifiers": [2]}, {"id": 2, "name": "B", "modifiers": [1]}],
            409,
            {"cycle": [1, 2, 1]},
        ),
        ([{"id": 1, "name": "A", "modifiers": [1]}], 409, {"cycle": [1, 1]}),
        (
            [
                {"id": n, "name": f"L{n}", "modifiers": [n + 1]}
                for n in range(MAX_MODIFIER_DEPTH + 1)
            ]
            + [{"id": MAX_MODIFIER_DEPTH + 1, "name": "Last"}],
            409,
            {"path": list(range(MAX_MODIFIER_DEPTH + 2))},
        ),
        (
            [{"id": 1, "name": "A", "modifiers": [3]}],
            422,
            {
                "errors": {
                    "items": {"0": {"modifiers": {"0": ["No item of this document has id 3."]}}}
                }
            },
        ),
        (
            [{"id": 1, "name": "A"}, {"id": 1, "name": "B"}],
            422,
            {"errors": {"items": {"1": {"id": ["Id 1 appears more than once."]}}}},
        ),
        (
            [{"id": 1, "name": "A"}, {"id": 2, "name": "B", "modifiers": [1, 1]}],
            422,
            {"errors": {"items": {"1": {"modifiers": ["1 appears more than once."]}}}},
        ),
        (
            [{"id": 1, "name": "A", "position": 3}],
            422,
            {"errors": {"items": {"0": {"position": ["Unknown field."]}}}},
        ),
        (
            [{"id": 1, "name": "", "price": -5}],
            422,
            {
                "errors": {
                    "items": {
                        "0": {
                            "name": ["Length must be between 1 and 200.", "Must not be blank."],
                            "price": [
                                "Must be greater than or equal to 0 and less than or "
                                "equal to 100000000."
                            ],
                        }
                    }
                }
            },
        ),
    ],
)
def test_a_bad_document_changes_nothing(
    client: FlaskClient,
    session: Session,
    engine: Engine,
    items: list[dict[str, Any]],
    status: int,
    check: dict[str, Any],
) -> None:
    restaurant_id = add_restaurant(session)
    session.commit()
    key = bearer(add_key(session, restaurant_id))
    client.put(
        f"/restaurant/{restaurant_id}/menu",
        json={"items": [{"id": 1, "name": "Kept"}]},
        headers=key,
    )
    before = snapshot(engine)

    response = client.put(f"/restaurant/{restaurant_id}/menu", json={"items": items}, headers=key)

    body = assert_problem(response, status)
    assert {k: body[k] for k in check} == check
    assert snapshot(engine) == before


def test_import_honours_if_match(client: FlaskClient, session: Session, engine: Engine) -> None:
    restaurant_id = add_restaurant(session)
    session.commit()
    key = bearer(add_key(session, restaurant_id))
    url = f"/restaurant/{restaurant_id}/menu"
    assert client.get(url, headers={"If-None-Match": '"m1"'}).status_code == 304
    client.post(f"/restaurant/{restaurant_id}/item", json={"name": "Soup"}, headers=key)
    assert client.get(url, headers={"If-None-Match": '"m1"'}).status_code == 200
    before = snapshot(engine)
    stale = client.put(url, json={"items": []}, headers={**key, "If-Match": '"m1"'})
    assert assert_problem(stale, 412)["etag"] == '"m2"'
    assert snapshot(engine) == before
    fresh = client.put(url, json={"items": []}, headers={**key, "If-Match": '"m2"'})
    assert fresh.status_code == 200
    assert fresh.get_json() == {
        "items": [],
        "created": 0,
        "updated": 0,
        "deleted": 1,
        "unchanged": 0,
    }


def test_too_many_items_is_422(client: FlaskClient, session: Session) -> None:
    restaurant_id = add_restaurant(session)
    session.commit()
    key = bearer(add_key(session, restaurant_id))
    items = [{"id": n, "name": f"I{n}"} for n in range(MAX_ITEMS_PER_RESTAURANT + 1)]
    body = assert_problem(
        client.put(f"/restaurant/{restaurant_id}/menu", json={"items": items}, headers=key), 422
    )
    assert list(body["errors"]) == ["items"]
