"""Helpers that build test menus and keys straight in the database, and compare it."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.services import keys
from presto.storage.links import insert_links, link_rows
from presto.storage.models import Base, Item, Restaurant


def add_restaurant(
    session: Session, name: str = "Test Diner", currency: str = "USD", timezone: str = "UTC"
) -> int:
    """Insert a restaurant and return its id."""
    restaurant = Restaurant(name=name, currency=currency, timezone=timezone)
    session.add(restaurant)
    session.flush()
    return restaurant.id


def add_items(
    session: Session, restaurant_id: int, names: Iterable[str], **fields: object
) -> list[int]:
    """Insert items named `names` in menu order and return their ids."""
    items = [
        Item(restaurant_id=restaurant_id, name=name, position=position, **fields)
        for position, name in enumerate(names)
    ]
    session.add_all(items)
    session.flush()
    return [item.id for item in items]


def link(session: Session, restaurant_id: int, parent: int, modifiers: Sequence[int]) -> None:
    """Make `modifiers` the ordered modifiers of `parent`."""
    insert_links(session, link_rows(restaurant_id, parent, modifiers))


def layered_menu(session: Session, *, levels: int, per_level: int, fan_out: int) -> int:
    """A restaurant whose items form `levels` layers; each links to `fan_out` items of
    the next layer (so modifiers are shared and nest `levels - 1` deep). Only the first
    layer is standalone. Returns the restaurant id."""
    restaurant_id = add_restaurant(session)
    layers = []
    for level in range(levels):
        names = [f"L{level} item {n}" for n in range(per_level)]
        layers.append(add_items(session, restaurant_id, names, standalone=level == 0))
    for upper, lower in itertools.pairwise(layers):
        for n, parent in enumerate(upper):
            children = [lower[(n + k) % per_level] for k in range(fan_out)]
            link(session, restaurant_id, parent, children)
    session.commit()
    return restaurant_id


def add_key(session: Session, restaurant_id: int | None = None) -> str:
    """Make an API key (an admin's when `restaurant_id` is None) and return its secret."""
    return keys.create_key(session, restaurant_id=restaurant_id).secret


def bearer(key: str) -> dict[str, str]:
    """The Authorization header of a request made with `key`."""
    return {"Authorization": f"Bearer {key}"}


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every presto table, in a stable order: compare before and after."""
    with engine.connect() as connection:
        return {
            table.name: sorted(
                (tuple(row) for row in connection.execute(sa.select(table))), key=repr
            )
            for table in Base.metadata.sorted_tables
        }
