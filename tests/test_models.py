"""The database enforces the menu's shape: links, cascades, prices and choice rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from presto.storage.models import MAX_PRICE, ApiKey, Item, Restaurant, item_modifier
from tests.helpers.data import add_items, add_restaurant, link


def count_links(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(item_modifier)) or 0


def test_item_defaults(session: Session) -> None:
    restaurant_id = add_restaurant(session)
    (item_id,) = add_items(session, restaurant_id, ["Soup"])
    session.commit()
    item = session.get(Item, item_id)
    assert item is not None
    assert (item.price, item.available, item.standalone) == (0, True, True)
    assert (item.min_choices, item.max_choices, item.description) == (0, None, "")


def test_deleting_an_item_removes_its_links_both_ways(session: Session) -> None:
    restaurant_id = add_restaurant(session)
    burger, ketchup, fries = add_items(session, restaurant_id, ["Burger", "Ketchup", "Fries"])
    link(session, restaurant_id, burger, [ketchup, fries])
    link(session, restaurant_id, fries, [ketchup])
    session.commit()
    assert count_links(session) == 3

    session.execute(sa.delete(Item).where(Item.id == ketchup))
    session.commit()
    assert count_links(session) == 1

    session.execute(sa.delete(Item).where(Item.id == burger))
    session.commit()
    assert count_links(session) == 0


def test_deleting_a_restaurant_removes_its_items_and_links(session: Session) -> None:
    restaurant_id = add_restaurant(session)
    other_id = add_restaurant(session, "Other")
    a, b = add_items(session, restaurant_id, ["A", "B"])
    (c,) = add_items(session, other_id, ["C"])
    link(session, restaurant_id, a, [b])
    session.commit()

    session.execute(sa.delete(Restaurant).where(Restaurant.id == restaurant_id))
    session.commit()
    assert session.scalars(sa.select(Item.id)).all() == [c]
    assert count_links(session) == 0


def test_an_item_cannot_be_its_own_modifier(session: Session) -> None:
    restaurant_id = add_restaurant(session)
    (item,) = add_items(session, restaurant_id, ["Loop"])
    session.commit()
    with pytest.raises(IntegrityError):
        link(session, restaurant_id, item, [item])
        session.flush()
    session.rollback()
    assert count_links(session) == 0


def test_a_modifier_cannot_come_from_another_restaurant(session: Session) -> None:
    ours = add_restaurant(session)
    theirs = add_restaurant(session, "Elsewhere")
    (burger,) = add_items(session, ours, ["Burger"])
    (sauce,) = add_items(session, theirs, ["Their sauce"])
    session.commit()
    for restaurant_id in (ours, theirs):
        with pytest.raises(IntegrityError):
            link(session, restaurant_id, burger, [sauce])
            session.flush()
        session.rollback()
    assert count_links(session) == 0


def test_the_same_link_cannot_exist_twice(session: Session) -> None:
    restaurant_id = add_restaurant(session)
    burger, ketchup = add_items(session, restaurant_id, ["Burger", "Ketchup"])
    link(session, restaurant_id, burger, [ketchup])
    session.commit()
    with pytest.raises(IntegrityError):
        link(session, restaurant_id, burger, [ketchup])
        session.flush()
    session.rollback()
    assert count_links(session) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"price": -1},
        {"min_choices": -1},
        {"min_choices": 2, "max_choices": 1},
        {"price": MAX_PRICE + 1},
        {"version": 0},
    ],
    ids=["negative-price", "negative-min", "max-below-min", "price-above-max", "version-zero"],
)
def test_item_checks(session: Session, fields: dict[str, int]) -> None:
    restaurant_id = add_restaurant(session)
    session.commit()
    with pytest.raises(IntegrityError):
        add_items(session, restaurant_id, ["Bad"], **fields)
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(Item)) == 0


def test_currency_must_be_three_letters(session: Session) -> None:
    # SQLite checks the length constraint; PostgreSQL's VARCHAR(3) refuses it first.
    with pytest.raises((IntegrityError, DataError)):
        add_restaurant(session, currency="EURO")
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(Restaurant)) == 0


@pytest.mark.parametrize(
    ("admin", "with_restaurant"), [(True, True), (False, False)], ids=["admin-of-one", "nobody"]
)
def test_a_key_is_admin_or_for_one_restaurant(
    session: Session, admin: bool, with_restaurant: bool
) -> None:
    restaurant_id = add_restaurant(session)
    session.commit()
    session.add(
        ApiKey(
            prefix="presto_x",
            key_hash="0" * 64,
            admin=admin,
            restaurant_id=restaurant_id if with_restaurant else None,
            created_at=datetime.now(UTC),
        )
    )
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_ids_are_never_reused(session: Session) -> None:
    first = add_restaurant(session)
    (item,) = add_items(session, first, ["Soup"])
    session.commit()
    session.execute(sa.delete(Restaurant))
    session.commit()
    second = add_restaurant(session)
    (new_item,) = add_items(session, second, ["Soup"])
    assert second > first and new_item > item
