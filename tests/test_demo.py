"""The demo menus are realistic: several restaurants, nested and shared modifiers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from presto.demo.loading import demo_restaurants, load_demo
from presto.services.menus import load_menu
from presto.storage.models import Item


def chain_depth(item: Item, seen: frozenset[int] = frozenset()) -> int:
    return 1 + max(
        (chain_depth(m, seen | {item.id}) for m in item.modifiers if m.id not in seen),
        default=-1,
    )


def test_demo_menus(session: Session) -> None:
    restaurants = load_demo(session)
    session.commit()

    assert len(restaurants) >= 3
    assert [r.currency for r in restaurants] == ["USD", "EUR", "JPY"]
    burger_bar = restaurants[0].id
    items = load_menu(session, burger_bar, include_all=True).items
    assert len(items) >= 25
    assert len({item.category for item in items if item.standalone}) >= 4
    assert max(chain_depth(item) for item in items) >= 3
    assert any(not item.available for item in items)
    ketchup = next(item for item in items if item.name == "Ketchup")
    parents = {item.name for item in items if ketchup in item.modifiers}
    assert {"Classic Burger", "Fries"} <= parents
    assert session.scalar(sa.select(sa.func.count()).select_from(Item)) == sum(
        len(load_menu(session, r.id, include_all=True).items) for r in restaurants
    )


@pytest.mark.usefixtures("demo")
def test_the_demo_database_is_the_shipped_documents(client: FlaskClient) -> None:
    """Each demo restaurant, exported, is its shipped menu document, ids and all, at the
    menu version a new restaurant starts with; its fields are the shipped ones."""
    shipped = demo_restaurants()
    listed = client.get("/restaurant").get_json()
    assert [restaurant["id"] for restaurant in listed] == list(range(1, len(shipped) + 1))
    for restaurant_id, demo in enumerate(shipped, start=1):
        fields = client.get(f"/restaurant/{restaurant_id}").get_json()
        assert {name: fields[name] for name in demo.restaurant} == demo.restaurant
        exported = client.get(f"/restaurant/{restaurant_id}/menu")
        assert exported.headers["ETag"] == '"m1"'
        assert exported.get_json() == demo.menu
