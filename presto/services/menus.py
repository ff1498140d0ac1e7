"""The menu service: reading a restaurant's items with their modifier graph.

Loading a menu takes three statements whatever its size or depth: the restaurant, its
items, and its modifier links. The links are attached to the already loaded `Item`
objects in memory, so an item shared by many parents (ketchup) is one object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from presto.services.restaurants import get_restaurant
from presto.storage.links import select_links
from presto.storage.models import Item, Restaurant


@dataclass(frozen=True)
class Menu:
    """A restaurant and the items of its menu call, modifiers attached."""

    restaurant: Restaurant
    items: list[Item]


def load_menu(
    session: Session,
    restaurant_id: int,
    *,
    include_all: bool = False,
    available: bool | None = None,
    category: str | None = None,
) -> Menu:
    """The restaurant's items in menu order, each with `modifiers` filled in.

    Menu order is `position`, then `id`; modifiers are in link `position` order, then
    by id. Only standalone items (menu entries) come back unless `include_all`; given
    `available` or `category`, only the items that match (their modifiers are kept).
    """
    restaurant = get_restaurant(session, restaurant_id)
    items = session.scalars(
        sa.select(Item).where(Item.restaurant_id == restaurant_id).order_by(Item.position, Item.id)
    ).all()
    links = session.execute(select_links(restaurant_id)).all()
    attach_modifiers(restaurant, items, links)
    return Menu(
        restaurant,
        [
            item
            for item in items
            if (include_all or item.standalone)
            and (available is None or item.available == available)
            and (category is None or item.category == category)
        ],
    )


def reachable_items(entries: Sequence[Item]) -> list[Item]:
    """The entries and every item reachable from them through modifiers, each once, in
    menu order."""
    found = {item.id: item for item in entries}
    stack = list(entries)
    while stack:
        for modifier in stack.pop().modifiers:
            if modifier.id not in found:
                found[modifier.id] = modifier
                stack.append(modifier)
    return sorted(found.values(), key=lambda item: (item.position, item.id))


def attach_modifiers(
    restaurant: Restaurant, items: Sequence[Item], links: Iterable[Sequence[int]]
) -> None:
    """Fill each item's `restaurant` and `modifiers` (from (item_id, modifier_id) rows,
    in row order) without further queries."""
    by_id = {item.id: item for item in items}
    modifiers: defaultdict[int, list[Item]] = defaultdict(list)
    for parent_id, modifier_id in links:
        modifiers[parent_id].append(by_id[modifier_id])
    for item in items:
        set_committed_value(item, "restaurant", restaurant)
        set_committed_value(item, "modifiers", modifiers.get(item.id, []))
