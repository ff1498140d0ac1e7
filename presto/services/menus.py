"""The menu service: reading a restaurant's items with their modifier graph.

Loading a menu takes three statements whatever its size or depth: the restaurant, its
items, and its modifier links (with the menu version read again, so that a write
committed in between is noticed and the menu read again). The links are attached to the
already loaded `Item` objects in memory, so an item shared by many parents (ketchup) is
one object.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from presto.errors import RetryLaterError
from presto.services.menu_view import MenuFilter, attach_views, select_entries
from presto.services.restaurants import get_restaurant, restaurant_not_found
from presto.storage.links import ModifierLink, select_versioned_link_terms
from presto.storage.models import Item, Restaurant

# Reads of a menu that a write may interleave with before one is left to the client.
CONSISTENT_READ_ATTEMPTS = 5


@dataclass(frozen=True)
class Menu:
    """A restaurant and the items of its menu call, modifiers attached, as shown at
    `moment`; `valid_until` is when that view next changes with time (None: never)."""

    restaurant: Restaurant
    items: list[Item]
    moment: datetime
    valid_until: datetime | None = None


def load_menu(
    session: Session,
    restaurant_id: int,
    *,
    include_all: bool = False,
    menu_filter: MenuFilter | None = None,
    at: datetime | None = None,
) -> Menu:
    """The restaurant's items in menu order, each with `modifiers` filled in, as shown at
    `at` (default: now).

    Menu order is `position`, then `id`; modifiers are in link `position` order, then
    by id. Only standalone items (menu entries) come back unless `include_all`; given a
    `menu_filter` (the menu call's filters, `include_all` among them), only the items
    that match (their modifiers are kept).
    """
    # From `time.time`, the clock the warm path's expiry reads too.
    moment = datetime.fromtimestamp(time.time(), UTC) if at is None else at
    if menu_filter is None:
        menu_filter = MenuFilter(include_all)
    restaurant, items, links = read_consistent(session, restaurant_id)
    terms = attach_modifiers(restaurant, items, links)
    valid_until = attach_views(restaurant, items, terms, moment)
    return Menu(restaurant, select_entries(items, menu_filter), moment, valid_until)


def read_consistent(
    session: Session, restaurant_id: int
) -> tuple[Restaurant, Sequence[Item], list[tuple[int, int, int | None, bool]]]:
    """The restaurant, its items and its links, all of one menu version.

    Each statement of a read committed transaction (PostgreSQL's default, and SQLite's
    reads outside a write) sees what was committed when it began, so a write committed
    between them would mix two menus: links to an item the item read missed, or a body
    labelled with a version it does not show. Every menu write bumps the version, so
    the version read again with the links (the last statement) tells whether anything
    changed since the restaurant was read; if so, the menu is read again.
    """
    restaurant = get_restaurant(session, restaurant_id)
    for attempt in range(CONSISTENT_READ_ATTEMPTS):
        if attempt:
            fresh = session.get(Restaurant, restaurant_id, populate_existing=True)
            if fresh is None:
                raise restaurant_not_found(restaurant_id)
            restaurant = fresh
        items = session.scalars(
            sa.select(Item)
            .where(Item.restaurant_id == restaurant_id)
            .order_by(Item.position, Item.id)
            .execution_options(populate_existing=attempt > 0)
        ).all()
        rows = session.execute(select_versioned_link_terms(restaurant_id)).all()
        if rows and rows[0][0] == restaurant.menu_version:
            links = [(a, b, c, d) for _, a, b, c, d in rows if a is not None]
            return restaurant, items, cast(list[tuple[int, int, int | None, bool]], links)
    raise RetryLaterError("The menu changed during every attempt to read it; try again.")


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


def modifier_graph(entries: Sequence[Item]) -> dict[int, list[int]]:
    """The entries and every item reachable from them, each mapped to its modifiers' ids
    in order (from the attached `modifiers`, no query): what `presto.services.graph`
    counts."""
    links: dict[int, list[int]] = {}
    stack = list(entries)
    while stack:
        item = stack.pop()
        if item.id not in links:
            links[item.id] = [modifier.id for modifier in item.modifiers]
            stack.extend(item.modifiers)
    return links


def attach_modifiers(
    restaurant: Restaurant,
    items: Sequence[Item],
    links: Iterable[tuple[int, int, int | None, bool]],
) -> dict[int, dict[int, ModifierLink]]:
    """Fill each item's `restaurant` and `modifiers` (from `(item_id, modifier_id, price,
    is_default)` rows, in row order) without further queries; return each parent's link
    terms by modifier id."""
    by_id = {item.id: item for item in items}
    modifiers: defaultdict[int, list[Item]] = defaultdict(list)
    terms: defaultdict[int, dict[int, ModifierLink]] = defaultdict(dict)
    for parent_id, modifier_id, price, is_default in links:
        modifiers[parent_id].append(by_id[modifier_id])
        if price is not None or is_default:
            terms[parent_id][modifier_id] = ModifierLink(modifier_id, price, is_default)
    for item in items:
        set_committed_value(item, "restaurant", restaurant)
        set_committed_value(item, "modifiers", modifiers.get(item.id, []))
    return terms
