"""Rows of the `item_modifier` link table: the one place that writes and reads them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from presto.storage.models import item_modifier


def link_rows(
    restaurant_id: int, item_id: int, modifier_ids: Iterable[int]
) -> list[dict[str, Any]]:
    """The link rows that make `modifier_ids` the modifiers of `item_id`, in this order."""
    return [
        {
            "restaurant_id": restaurant_id,
            "item_id": item_id,
            "modifier_id": modifier_id,
            "position": position,
        }
        for position, modifier_id in enumerate(modifier_ids)
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


def replace_links(
    session: Session, restaurant_id: int, item_id: int, modifier_ids: Iterable[int]
) -> None:
    """Make `modifier_ids` the modifiers of `item_id`, in this order, in place of its own."""
    session.execute(item_modifier.delete().where(item_modifier.c.item_id == item_id))
    insert_links(session, link_rows(restaurant_id, item_id, modifier_ids))
