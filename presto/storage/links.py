"""Rows of the `item_modifier` link table: the one place that writes and reads them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from presto.storage.models import Restaurant, item_modifier


@dataclass(frozen=True)
class ModifierLink:
    """A modifier in its parent: a price there (None: its own) and whether it is a
    pre-selected choice."""

    modifier_id: int
    price: int | None = None
    is_default: bool = False


def as_link(modifier: int | ModifierLink) -> ModifierLink:
    """A bare modifier id as a link with no price override, not a default."""
    return modifier if isinstance(modifier, ModifierLink) else ModifierLink(modifier)


def link_rows(
    restaurant_id: int, item_id: int, modifiers: Iterable[int | ModifierLink]
) -> list[dict[str, Any]]:
    """The link rows that make `modifiers` the modifiers of `item_id`, in this order."""
    return [
        {
            "restaurant_id": restaurant_id,
            "item_id": item_id,
            "modifier_id": link.modifier_id,
            "position": position,
            "price": link.price,
            "is_default": link.is_default,
        }
        for position, link in enumerate(map(as_link, modifiers))
    ]


def insert_links(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert link rows made by `link_rows` (nothing when there are none)."""
    if rows:
        session.execute(item_modifier.insert(), list(rows))


def select_links(restaurant_id: int) -> sa.Select[int, int]:
    """The restaurant's `(item_id, modifier_id)` links, each item's in modifier order."""
    return (
        sa.select(item_modifier.c.item_id, item_modifier.c.modifier_id)
        .where(item_modifier.c.restaurant_id == restaurant_id)
        .order_by(item_modifier.c.item_id, item_modifier.c.position, item_modifier.c.modifier_id)
    )


def select_versioned_link_terms(
    restaurant_id: int,
) -> sa.Select[int, int | None, int | None, int | None, bool | None]:
    """`(menu_version, item_id, modifier_id, price, is_default)`: the restaurant's menu
    version beside each of its links (each item's in modifier order) as one statement
    sees them; one row of version and NULLs when it has no links, none when it does not exist."""
    return (
        sa.select(
            Restaurant.menu_version,
            item_modifier.c.item_id,
            item_modifier.c.modifier_id,
            item_modifier.c.price,
            item_modifier.c.is_default,
        )
        .select_from(Restaurant)
        .outerjoin(item_modifier, item_modifier.c.restaurant_id == Restaurant.id)
        .where(Restaurant.id == restaurant_id)
        .order_by(item_modifier.c.item_id, item_modifier.c.position, item_modifier.c.modifier_id)
    )


def replace_links(
    session: Session, restaurant_id: int, item_id: int, modifiers: Iterable[int | ModifierLink]
) -> None:
    """Make `modifiers` the modifiers of `item_id`, in this order, in place of its own."""
    session.execute(item_modifier.delete().where(item_modifier.c.item_id == item_id))
    insert_links(session, link_rows(restaurant_id, item_id, modifiers))
